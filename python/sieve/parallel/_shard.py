"""Which global tokens each rank holds.

Ranks r * U + u (U = Ulysses degree) form Ulysses group r: consecutive
ranks, as yunchang's set_seq_parallel_pg(use_ulysses_low=True) and
xDiT's defaults make them. Ring rank r holds query chunk r, and after the
Ulysses all-to-all the members of its group hold it together, each for
H / U heads. Ring chunks start on the pattern's key and query block
boundaries (sieve cuts block tables there); inside a ring chunk tokens
are split over the Ulysses group as evenly as possible.
"""
import math


def ring_bounds(tokens, ring, align):
    """[begin, end) of each ring chunk: equal multiples of `align`, the last
    one shorter."""
    if ring == 1:
        return [(0, tokens)]
    c = math.ceil(tokens / ring / align) * align
    out = [(min(j * c, tokens), min((j + 1) * c, tokens)) for j in range(ring)]
    if any(b >= e for b, e in out):
        raise ValueError("%d tokens do not fill %d ring chunks of whole %d-token blocks; "
                         "use a smaller ring degree" % (tokens, ring, align))
    return out


def split_even(begin, end, n):
    L = end - begin
    if L < n:
        raise ValueError("%d tokens cannot be shared by %d ranks" % (L, n))
    base, extra = divmod(L, n)
    out, b = [], begin
    for i in range(n):
        e = b + base + (i < extra)
        out.append((b, e))
        b = e
    return out


def shard_bounds(tokens, ulysses, ring, align):
    """[begin, end) of the tokens global rank r * ulysses + u holds before
    the Ulysses all-to-all, for every rank."""
    out = []
    for b, e in ring_bounds(tokens, ring, align):
        out.extend(split_even(b, e, ulysses))
    return out
