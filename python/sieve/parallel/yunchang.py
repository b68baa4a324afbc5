"""sieve behind yunchang's LongContextAttention interface.

yunchang (PyPI `yunchang`) makes the Ulysses and ring process groups with
set_seq_parallel_pg(ulysses_degree, ring_degree, rank, world_size,
use_ulysses_low=True) and keeps them in yunchang.globals.PROCESS_GROUP.
LongContextAttention here takes them from there and has yunchang's
forward(query, key, value, dropout_p, softmax_scale, causal, ...) on
[B, S / P, H, D] shards, so a model that builds yunchang's module can
build this one instead. The ring step and the local attention are
sieve's: chunk pairs need their global token offsets, which yunchang's
ring functions do not pass to the attention they call.

Token shards must be the ones sieve.parallel.USP.bounds gives; for a
sequence that divides evenly into block-aligned chunks they are
yunchang's own even split.
"""
import torch

from .usp import USP


class LongContextAttention(torch.nn.Module):
    """pattern: a sieve.Pattern; grid, text, text_after: the whole
    sequence's geometry; layer: this attention's layer index (the step is
    `self.step`, or the `step` argument of forward)."""

    def __init__(self, pattern, grid=None, text=0, text_after=False, layer=0, local=None,
                 scatter_idx=2, gather_idx=1, **_yunchang_kw):
        super().__init__()
        from yunchang.globals import PROCESS_GROUP  # only when used
        if (scatter_idx, gather_idx) != (2, 1):
            raise ValueError("sieve runs yunchang's [B, S, H, D] layout only (scatter_idx=2, gather_idx=1)")
        self.usp = USP(pattern, grid=grid, text=text, text_after=text_after,
                       ulysses_group=PROCESS_GROUP.ULYSSES_PG, ring_group=PROCESS_GROUP.RING_PG,
                       local=local, layout="bshd")
        self.layer, self.step = layer, 0

    def forward(self, query, key, value, dropout_p=0.0, softmax_scale=None, causal=False,
                window_size=(-1, -1), softcap=0.0, alibi_slopes=None, deterministic=False,
                return_attn_probs=False, *args, step=None):
        for bad, what in ((dropout_p, "dropout_p"), (causal, "causal"), (softcap, "softcap"),
                          (alibi_slopes is not None, "alibi_slopes"),
                          (tuple(window_size) != (-1, -1), "window_size"),
                          (return_attn_probs, "return_attn_probs")):
            if bad:
                raise ValueError("sieve's LongContextAttention: %s is not supported (the pattern "
                                 "decides the mask)" % what)
        return self.usp(query, key, value, step=self.step if step is None else step,
                        layer=self.layer, scale=softmax_scale)
