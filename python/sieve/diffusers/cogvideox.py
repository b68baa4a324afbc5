"""CogVideoXTransformer3DModel: the joint attention of every block through
sieve, text tokens before the video.

Follows diffusers' CogVideoXAttnProcessor2_0: text and video concatenated,
QK LayerNorm per head, rotary embedding on the video tokens only. q, k, v go
to sieve as [B, S, H, D] views, so the output reshapes to [B, S, H*D] free."""
import torch

from ._common import arg, note_geometry


class CogVideoXSieveProcessor:
    def __init__(self, state):
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states, attention_mask=None,
                 image_rotary_emb=None):
        if attention_mask is not None:
            raise ValueError("attention_mask: sieve's CogVideoX processor runs with no mask")
        text_seq_length = encoder_hidden_states.size(1)
        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        batch_size = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if image_rotary_emb is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            query[:, :, text_seq_length:] = apply_rotary_emb(query[:, :, text_seq_length:], image_rotary_emb)
            if not attn.is_cross_attention:
                key[:, :, text_seq_length:] = apply_rotary_emb(key[:, :, text_seq_length:], image_rotary_emb)
        hidden_states = self.state(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2))
        hidden_states = hidden_states.reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        encoder_hidden_states, hidden_states = hidden_states.split(
            [text_seq_length, hidden_states.size(1) - text_seq_length], dim=1)
        return hidden_states, encoder_hidden_states


def install(handle, transformer):
    p, p_t = transformer.config.patch_size, transformer.config.patch_size_t

    def hook(module, args, kwargs):
        _, f, _, h, w = arg(args, kwargs, "hidden_states", 0).shape  # [B, F, C, H, W]
        text = arg(args, kwargs, "encoder_hidden_states", 1).shape[1]
        note_geometry(handle.geometry, (f if p_t is None else f // p_t, h // p, w // p), text, False)

    for i, block in enumerate(transformer.transformer_blocks):
        handle.install(block.attn1, CogVideoXSieveProcessor(handle.state(i, "bshd")))
    handle.hook(hook)
