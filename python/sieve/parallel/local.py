"""Local attention for one part: what each rank runs between communications.

A local backend is called as
    backend(pattern, shape, q, k, v, chunk, step, layer, scale) -> (o, lse)
with `pattern` already seen from the rank's first head (heads_pattern),
`shape` the whole sequence with the rank's heads, q [B, Hl, Sq, D] and k, v
[B, Hl, Sk, D] for the chunk pair (BHSD views), o like q and lse [B, Hl, Sq]
(natural log; -inf for rows with no allowed key).
"""
import torch

from ._parts import Chunk, reference_raw


class ReferenceLocal:
    """sieve's float64 CPU reference for the part (sieve_reference): the
    mask at global token indices, the head classes of global heads, only
    pairs inside the chunk's block tables. Stands in for the kernel where
    there is no GPU, so the offsets and head mapping are the library's."""

    def __call__(self, pattern, shape, q, k, v, chunk, step, layer, scale):
        q, k, v = (x.detach().to("cpu", torch.float64).contiguous() for x in (q, k, v))
        B, H, Sq, D = q.shape
        o = torch.empty_like(q)
        lse = torch.empty((B, H, Sq), dtype=torch.float64)
        reference_raw(pattern, shape, step, layer, chunk, q.data_ptr(), k.data_ptr(), v.data_ptr(),
                      scale or 0.0, o.data_ptr(), lse.data_ptr())
        return o, lse


class SieveLocal:
    """sieve's kernel, through sieve.Attention states (one per pattern and
    layer, so dynamic plans keep their per-head choice for this rank's heads
    across steps). Whole sequences only: the kernel reads query positions
    from 0, so ring chunk pairs need its token offsets first."""

    def __init__(self):
        self._states = {}

    def state(self, pattern, shape, layer, scale=None):
        from .. import _torch
        key = (id(pattern), pattern.hash, layer, scale)
        st = self._states.get(key)
        if st is None:
            # The source pattern is kept with the state so its id stays its own.
            st = self._states[key] = (pattern, _torch.Attention(
                pattern, grid=(shape.frames, shape.height, shape.width), text=shape.text,
                text_after=bool(shape.text_after), layout="bhsd", layer=layer, scale=scale))
        return st[1]

    def __call__(self, pattern, shape, q, k, v, chunk, step, layer, scale):
        S = shape.tokens
        if chunk is not None and chunk.astuple() not in ((0, S, 0, S), (0, 0, 0, 0)):
            raise NotImplementedError(
                "sieve's kernel runs whole sequences; ring chunk pairs (%r) need query and key "
                "token offsets in the kernel. Use ring degree 1 (Ulysses) on GPUs for now." % (chunk,))
        o, lse = self.state(pattern, shape, layer, scale).run(q, k, v, step, return_lse=True)
        return o, lse


def whole(shape):
    return Chunk(0, shape.tokens, 0, shape.tokens)
