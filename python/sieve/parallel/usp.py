"""Unified sequence parallelism (USP): Ulysses over heads inside groups of
consecutive ranks, ring attention over query chunks across the groups.
Ulysses alone is ring degree 1, ring alone Ulysses degree 1.

Each rank starts with its tokens (_shard.shard_bounds) for all heads:
  1. Ulysses all-to-all: the group's tokens together (its ring chunk) for
     H / U heads, global heads [u * H/U, (u + 1) * H/U);
  2. ring: K/V chunks passed to the next ring rank R - 1 times; each chunk
     pair runs the local attention with the chunk's global token offsets,
     pairs whose tables visit no block are skipped, and the partial outputs
     merge by their LSE;
  3. all-to-all back: the rank's own tokens for all heads.
The local attention sees the pattern from the rank's first head, so every
head keeps the class of its global index.
"""
import torch
import torch.distributed as dist

from ._merge import Accumulator
from ._parts import Chunk, chunk_visits, heads_pattern
from ._shard import shard_bounds


def _ranks(group):
    return dist.get_process_group_ranks(group) if group is not None else list(range(dist.get_world_size()))


class USP:
    """Sequence-parallel attention with sieve as the local attention.

    pattern: a sieve.Pattern; grid (frames, height, width) and text /
    text_after: the token geometry of the whole sequence (grid None: the
    pattern's own). ulysses_group, ring_group: process groups (None: every
    rank in that dimension, the other being 1). local: the local backend
    (sieve.parallel.SieveLocal on GPUs; ReferenceLocal on CPUs).
    """

    def __init__(self, pattern, grid=None, text=0, text_after=False, ulysses_group=None,
                 ring_group=None, local=None, layout="bshd"):
        if layout not in ("bshd", "bhsd"):
            raise ValueError("layout must be 'bshd' or 'bhsd', not %r" % (layout,))
        if ulysses_group is None and ring_group is None:
            ulysses_group = dist.group.WORLD
        self.pattern, self.grid, self.text, self.text_after = pattern, grid, text, bool(text_after)
        self.layout = layout
        self.ug, self.rg = ulysses_group, ring_group
        self.U = dist.get_world_size(ulysses_group) if ulysses_group is not None else 1
        self.R = dist.get_world_size(ring_group) if ring_group is not None else 1
        self.u = dist.get_rank(ulysses_group) if ulysses_group is not None else 0
        self.r = dist.get_rank(ring_group) if ring_group is not None else 0
        self._check_groups()
        if local is None:
            from .local import SieveLocal
            local = SieveLocal()
        self.local = local
        self.skipped = 0   # chunk pairs skipped as empty, over all calls
        self.computed = 0
        self._visits = {}

    def _check_groups(self):
        """Token shards follow r * U + u, so a Ulysses group must be
        consecutive ranks and a ring group every U-th one (the sequence-
        parallel ranks may be a part of the world: xDiT's CFG parallelism)."""
        me = dist.get_rank()
        ul = _ranks(self.ug) if self.ug is not None else [me]
        rg = _ranks(self.rg) if self.rg is not None else [me]
        if ul != list(range(ul[0], ul[0] + self.U)) or rg != [rg[0] + j * self.U for j in range(self.R)]:
            raise ValueError("Ulysses group %s and ring group %s: Ulysses groups must be consecutive "
                             "ranks (yunchang's use_ulysses_low=True), ring groups every %d-th"
                             % (ul, rg, self.U))

    # ------------------------------------------------------------- shapes

    def shape(self, B, H, D, heads=None):
        g = self.grid or (0, 0, 0)
        return self.pattern.shape(batch=B, heads=heads or H, head_dim=D, frames=g[0], height=g[1],
                                  width=g[2], text=self.text, text_after=self.text_after)

    def bounds(self, tokens):
        """[begin, end) of the tokens of sequence-parallel rank r * U + u,
        for each."""
        align = max(self._blocks())
        return shard_bounds(tokens, self.U, self.R, align)

    # A pattern that leaves its blocks to the kernels says block q=0 k=0;
    # chunks of it are cut from tables of 128-token blocks
    # (sieve_tables_build_chunk, cg_part.c).
    CHUNK_BLOCK = 128

    def _blocks(self):
        for line in self.pattern.ir.splitlines():
            if line.startswith("block "):
                kv = dict(x.split("=") for x in line.split()[1:])
                return int(kv["q"]) or self.CHUNK_BLOCK, int(kv["k"]) or self.CHUNK_BLOCK
        raise ValueError("pattern %s has no block sizes in its IR" % self.pattern.name)

    # -------------------------------------------------------- collectives

    def _seq_to_heads(self, x, sizes):
        """[B, s_me, H, D] -> [B, sum(sizes), H/U, D]: the group's tokens for
        this rank's heads (all_to_all_single with the members' token counts)."""
        if self.U == 1:
            return x
        B, s, H, D = x.shape
        send = x.reshape(B, s, self.U, H // self.U, D).permute(2, 0, 1, 3, 4).contiguous()
        recv = x.new_empty((B * sum(sizes), H // self.U, D))
        dist.all_to_all_single(recv, send.reshape(self.U * B * s, H // self.U, D),
                               output_split_sizes=[B * n for n in sizes],
                               input_split_sizes=[B * s] * self.U, group=self.ug)
        parts = torch.split(recv, [B * n for n in sizes])
        return torch.cat([p.reshape(B, n, H // self.U, D) for p, n in zip(parts, sizes)], dim=1)

    def _heads_to_seq(self, x, sizes):
        """[B, sum(sizes), H/U, D] -> [B, sizes[u], H, D]: the inverse."""
        if self.U == 1:
            return x
        B, _, Hl, D = x.shape
        me = sizes[self.u]
        send = torch.cat([p.reshape(B * p.shape[1], Hl, D) for p in torch.split(x, sizes, dim=1)])
        recv = x.new_empty((self.U * B * me, Hl, D))
        dist.all_to_all_single(recv, send.contiguous(), output_split_sizes=[B * me] * self.U,
                               input_split_sizes=[B * n for n in sizes], group=self.ug)
        return recv.reshape(self.U, B, me, Hl, D).permute(1, 2, 0, 3, 4).reshape(B, me, self.U * Hl, D)

    def _ring_pass(self, kv, recv_len):
        """Starts sending kv to the next ring rank and receiving the previous
        rank's chunk of recv_len tokens; returns (requests, buffers)."""
        ranks = _ranks(self.rg)
        nxt, prv = ranks[(self.r + 1) % self.R], ranks[(self.r - 1) % self.R]
        bufs = []
        ops = []
        for t in kv:
            b = t.new_empty(t.shape[:2] + (recv_len,) + t.shape[3:])
            bufs.append(b)
            ops.append(dist.P2POp(dist.isend, t.contiguous(), nxt, self.rg))
            ops.append(dist.P2POp(dist.irecv, b, prv, self.rg))
        return dist.batch_isend_irecv(ops), bufs

    # ------------------------------------------------------------ forward

    def _visit_count(self, pat, shape, chunk, step, layer):
        key = (id(pat), shape.astuple(), chunk.astuple(), step, layer)
        n = self._visits.get(key)
        if n is None:
            n = self._visits[key] = chunk_visits(pat, shape, chunk, step, layer)
        return n

    def __call__(self, q, k, v, step=0, layer=0, scale=None, return_lse=False):
        """q, k, v: this rank's tokens for all heads, [B, s, H, D] ('bshd') or
        [B, H, s, D] ('bhsd'). Returns O the same way (and the LSE
        [B, H, s] when return_lse)."""
        if self.layout == "bhsd":
            q, k, v = (x.transpose(1, 2) for x in (q, k, v))
        B, s, H, D = q.shape
        if H % self.U:
            raise ValueError("%d heads do not split over Ulysses degree %d" % (H, self.U))
        Hl = H // self.U
        whole = self.shape(B, H, D)
        S = whole.tokens
        bounds = self.bounds(S)
        me = self.r * self.U + self.u
        if bounds[me][1] - bounds[me][0] != s:
            raise ValueError("rank %d holds %d tokens; sieve.parallel shards %d tokens as %s "
                             "(USP.bounds)" % (me, s, S, bounds))
        group = bounds[self.r * self.U:(self.r + 1) * self.U]
        sizes = [e - b for b, e in group]
        qh, kh, vh = (self._seq_to_heads(x, sizes).transpose(1, 2) for x in (q, k, v))
        pat = heads_pattern(self.pattern, self.u * Hl)
        local_shape = self.shape(B, H, D, heads=Hl)
        q0, q1 = group[0][0], group[-1][1]
        ring = [(bounds[j * self.U][0], bounds[j * self.U + self.U - 1][1]) for j in range(self.R)]

        acc = Accumulator()
        kv = (kh, vh)
        for i in range(self.R):
            src = (self.r - i) % self.R
            reqs = None
            if i + 1 < self.R:
                nb, ne = ring[(self.r - i - 1) % self.R]
                reqs, bufs = self._ring_pass(kv, ne - nb)
            k0, k1 = ring[src]
            chunk = Chunk(q0, q1, k0, k1)
            if self.R > 1 and self._visit_count(pat, local_shape, chunk, step, layer) == 0:
                self.skipped += 1
            else:
                self.computed += 1
                o, lse = self.local(pat, local_shape, qh, kv[0], kv[1], chunk if self.R > 1 else None,
                                    step, layer, scale)
                acc.add(o, lse)
            if reqs is not None:
                for w in reqs:
                    w.wait()
                kv = tuple(bufs)
        o, lse = acc.result(qh, qh[..., 0].float())
        out = self._heads_to_seq(o.to(q.dtype).transpose(1, 2), sizes)
        if self.layout == "bhsd":
            out = out.transpose(1, 2)
        if not return_lse:
            return out
        lse_full = self._heads_to_seq(lse.unsqueeze(-1).transpose(1, 2), sizes)[..., 0].transpose(1, 2)
        return out, lse_full


def Ulysses(pattern, group=None, **kw):
    """Ulysses alone: all-to-all over heads in `group` (default: every rank)."""
    return USP(pattern, ulysses_group=group or dist.group.WORLD, ring_group=None, **kw)


def Ring(pattern, group=None, **kw):
    """Ring attention alone over `group` (default: every rank)."""
    return USP(pattern, ulysses_group=None, ring_group=group or dist.group.WORLD, **kw)
