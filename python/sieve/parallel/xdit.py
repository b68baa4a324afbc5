"""sieve as the attention of xDiT's USP (xfuser.model_executor.layers.usp).

xDiT's transformers call USP(query, key, value, joint_query=...,
joint_key=..., joint_value=..., joint_strategy=...) on [B, H, S / P, D]
shards, with the text of joint attention ('front' or 'rear', HunyuanVideo's
after the video) replicated on every rank. install() puts sieve's USP in
its place; it runs on xDiT's process groups (yunchang's PROCESS_GROUP,
which xDiT sets up).

The sequence sieve sees is the whole one, text where the strategy puts
it, so the pattern's text rows and columns are the model's. The text's
output is computed once per head on the rank that holds the head and
gathered over the Ulysses group, where xDiT's own USP computes it on every
rank. Ring degree > 1 is refused for now: sieve's kernel runs whole
sequences (see sieve.parallel.local.SieveLocal).

The step and layer: attention_kwargs may carry "sieve_step" and
"sieve_layer"; otherwise calls are counted, `layers` calls to a step.
"""
import sys

import torch
import torch.distributed as dist

from ._parts import heads_pattern
from .usp import USP as _USP


class SieveUSP:
    """A callable with xfuser's USP signature. grid: the latent grid after
    patchify (frames, height, width) of the video part."""

    def __init__(self, pattern, grid, layers=1, local=None):
        from yunchang.globals import PROCESS_GROUP  # only when used
        if PROCESS_GROUP.RING_PG is not None and dist.get_world_size(PROCESS_GROUP.RING_PG) > 1:
            raise NotImplementedError("sieve under xDiT runs Ulysses only (ring degree 1) for now")
        self.pattern, self.grid, self.layers, self.calls = pattern, tuple(grid), layers, 0
        self._usp = {}
        self._group = PROCESS_GROUP.ULYSSES_PG
        self._local = local

    def _for(self, text, text_after):
        key = (text, text_after)
        if key not in self._usp:
            self._usp[key] = _USP(self.pattern, grid=self.grid, text=text, text_after=text_after,
                                  ulysses_group=self._group, ring_group=None, local=self._local,
                                  layout="bshd")
        return self._usp[key]

    def __call__(self, query, key, value, dropout_p=0.0, is_causal=False, joint_query=None,
                 joint_key=None, joint_value=None, joint_strategy=None, attn_layer=None,
                 combine_qkv_a2a=None, backend=None, attention_kwargs=None, head_balance_layer=None):
        if dropout_p or is_causal:
            raise ValueError("sieve's USP: dropout_p and is_causal are not supported")
        if attn_layer is not None:
            raise NotImplementedError("sieve's USP: the KV cache of PipeFusion (attn_layer) is not supported")
        kw = attention_kwargs or {}
        step = kw.get("sieve_step", self.calls // self.layers)
        layer = kw.get("sieve_layer", self.calls % self.layers)
        self.calls += 1
        T = joint_query.shape[2] if joint_strategy else 0
        usp = self._for(T, joint_strategy == "rear")
        B, H, s, D = query.shape
        Hl = H // usp.U
        sizes = [s] * usp.U
        # Video: all-to-all to every token of this rank's heads.
        qh, kh, vh = (usp._seq_to_heads(x.transpose(1, 2), sizes) for x in (query, key, value))
        if T:
            heads = slice(usp.u * Hl, (usp.u + 1) * Hl)
            j = [x[:, heads].transpose(1, 2) for x in (joint_query, joint_key, joint_value)]
            cat = (lambda a, b: torch.cat([a, b], 1)) if joint_strategy == "rear" else (lambda a, b: torch.cat([b, a], 1))
            qh, kh, vh = cat(qh, j[0]), cat(kh, j[1]), cat(vh, j[2])
        whole = usp.shape(B, H, D, heads=Hl)
        if whole.tokens != qh.shape[1]:
            raise ValueError("grid %s with %d text tokens is %d tokens; the call has %d"
                             % (self.grid, T, whole.tokens, qh.shape[1]))
        o, _ = usp.local(heads_pattern(self.pattern, usp.u * Hl), whole, qh.transpose(1, 2),
                         kh.transpose(1, 2), vh.transpose(1, 2), None, step, layer, None)
        o = o.to(query.dtype).transpose(1, 2)                      # [B, S, Hl, D]
        Sv = s * usp.U
        ov, ot = (o[:, :Sv], o[:, Sv:]) if joint_strategy != "front" else (o[:, T:], o[:, :T])
        out = usp._heads_to_seq(ov, sizes)                          # [B, s, H, D]
        if T:
            parts = [torch.empty_like(ot) for _ in range(usp.U)]
            dist.all_gather(parts, ot.contiguous(), group=self._group)
            ot = torch.cat(parts, dim=2)                            # [B, T, H, D]
            out = torch.cat([out, ot] if joint_strategy == "rear" else [ot, out], dim=1)
        return out.transpose(1, 2)


def install(pattern, grid, layers=1, local=None):
    """Routes xDiT's USP through sieve: replaces
    xfuser.model_executor.layers.usp.USP and every module's imported name
    for it. Returns the SieveUSP (its `calls` counter is the clock)."""
    from xfuser.model_executor.layers import usp as xusp  # only when used
    ours = SieveUSP(pattern, grid, layers=layers, local=local)
    theirs = xusp.USP
    for mod in list(sys.modules.values()):
        if mod is not None and getattr(mod, "USP", None) is theirs:
            mod.USP = ours
    return ours
