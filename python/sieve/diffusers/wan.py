"""WanTransformer3DModel: self-attention (attn1) of every block through
sieve; cross-attention (attn2, text and image) stays dense.

Follows diffusers' WanAttnProcessor: QK RMSNorm over all heads, then the
interleaved rotary embedding, on [B, S, H, D] tensors. Wan's self-attention
has no text tokens: the text goes through cross-attention."""
import torch
from diffusers.models.transformers.transformer_wan import _get_qkv_projections

from ._common import arg, note_geometry


def _rotary(x, freqs_cos, freqs_sin):
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


class WanSieveProcessor:
    def __init__(self, state):
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 rotary_emb=None):
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("attention_mask: sieve's Wan processor serves self-attention with no mask")
        query, key, value = _get_qkv_projections(attn, hidden_states, None)
        query = attn.norm_q(query)
        key = attn.norm_k(key)
        query = query.unflatten(2, (attn.heads, -1))
        key = key.unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            query = _rotary(query, *rotary_emb)
            key = _rotary(key, *rotary_emb)
        hidden_states = self.state(query, key, value)
        hidden_states = hidden_states.flatten(2, 3).type_as(query)
        hidden_states = attn.to_out[0](hidden_states)
        return attn.to_out[1](hidden_states)


def install(handle, transformer):
    p_t, p_h, p_w = transformer.config.patch_size

    def hook(module, args, kwargs):
        x = arg(args, kwargs, "hidden_states", 0)  # [B, C, F, H, W]
        _, _, f, h, w = x.shape
        note_geometry(handle.geometry, (f // p_t, h // p_h, w // p_w), 0, False)

    for i, block in enumerate(transformer.blocks):
        handle.install(block.attn1, WanSieveProcessor(handle.state(i, "bshd")))
    handle.hook(hook)
