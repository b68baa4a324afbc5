"""Merging partial attention outputs by their log-sum-exp.

Two partials over disjoint key sets, (o1, lse1) and (o2, lse2), combine to
the attention over their union: lse = log(e^lse1 + e^lse2) and
o = (e^lse1 o1 + e^lse2 o2) / e^lse. Computed around m = max(lse1, lse2)
so nothing overflows, and rows where a side saw no key (lse = -inf,
o = 0) take the other side unchanged; rows where neither did stay
o = 0, lse = -inf, as sieve's kernel writes them.
"""
import torch


def merge_lse(o1, lse1, o2, lse2):
    """o: [..., S, D], lse: [..., S]; returns (o, lse) in float32 (float64
    when an input is), the LSE in natural log."""
    dt = torch.float64 if torch.float64 in (o1.dtype, o2.dtype, lse1.dtype, lse2.dtype) else torch.float32
    o1, o2, lse1, lse2 = o1.to(dt), o2.to(dt), lse1.to(dt), lse2.to(dt)
    m = torch.maximum(lse1, lse2)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # both -inf: weights 0 below
    w1, w2 = torch.exp(lse1 - m), torch.exp(lse2 - m)
    s = w1 + w2
    lse = m + torch.log(s)                                      # s == 0 gives -inf
    s = torch.where(s > 0, s, torch.ones_like(s))
    o = (o1 * (w1 / s).unsqueeze(-1)) + (o2 * (w2 / s).unsqueeze(-1))
    return o, lse


class Accumulator:
    """Folds partials in as they come, starting from 'no key seen'."""

    def __init__(self):
        self.o = self.lse = None

    def add(self, o, lse):
        if self.o is None:
            self.o, self.lse = o, lse
        else:
            self.o, self.lse = merge_lse(self.o, self.lse, o, lse)

    def result(self, like_o, like_lse):
        """The merged (o, lse); zeros and -inf shaped like the given ones
        when every partial was skipped."""
        if self.o is None:
            return (torch.zeros_like(like_o), torch.full_like(like_lse, float("-inf")))
        return self.o, self.lse
