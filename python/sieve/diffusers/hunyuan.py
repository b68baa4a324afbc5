"""HunyuanVideoTransformer3DModel: the joint attention of the dual-stream
and the single-stream blocks through sieve, text tokens after the video.
Layers are numbered through both kinds of block, dual-stream first.

Follows diffusers' HunyuanVideoAttnProcessor2_0: QK RMSNorm, rotary
embedding on the video tokens, then the text's own projections appended
(dual-stream) or the text already concatenated (single-stream).

The model masks prompt padding with a key mask; sieve masks it by the
valid text length, a kernel argument, read off the mask once per eager
forward. Under torch.compile or CUDA graph capture the mask cannot be read
without a host sync: the lengths the last eager forward read stay in force
(set handle.geometry.text_len yourself when prompts change there)."""
import torch

from ._common import arg, note_geometry


class HunyuanVideoSieveProcessor:
    def __init__(self, state):
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 image_rotary_emb=None):
        # attention_mask is the prompt-padding key mask: the forward hook has
        # read its lengths, and sieve masks the padding by them.
        if attn.add_q_proj is None and encoder_hidden_states is not None:
            hidden_states = torch.cat([hidden_states, encoder_hidden_states], dim=1)
        query, key, value = _project(hidden_states, attn.heads, attn.to_q, attn.to_k, attn.to_v,
                                     attn.norm_q, attn.norm_k)
        if image_rotary_emb is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            if attn.add_q_proj is None and encoder_hidden_states is not None:
                n = encoder_hidden_states.shape[1]
                query = torch.cat([apply_rotary_emb(query[:, :-n], image_rotary_emb, sequence_dim=1),
                                   query[:, -n:]], dim=1)
                key = torch.cat([apply_rotary_emb(key[:, :-n], image_rotary_emb, sequence_dim=1),
                                 key[:, -n:]], dim=1)
            else:
                query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
                key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
        if attn.add_q_proj is not None and encoder_hidden_states is not None:
            eq, ek, ev = _project(encoder_hidden_states, attn.heads, attn.add_q_proj, attn.add_k_proj,
                                  attn.add_v_proj, attn.norm_added_q, attn.norm_added_k)
            query = torch.cat([query, eq], dim=1)
            key = torch.cat([key, ek], dim=1)
            value = torch.cat([value, ev], dim=1)
        hidden_states = self.state(query, key, value)
        hidden_states = hidden_states.flatten(2, 3).to(query.dtype)
        if encoder_hidden_states is not None:
            n = encoder_hidden_states.shape[1]
            hidden_states, encoder_hidden_states = hidden_states[:, :-n], hidden_states[:, -n:]
            if getattr(attn, "to_out", None) is not None:
                hidden_states = attn.to_out[0](hidden_states)
                hidden_states = attn.to_out[1](hidden_states)
            if getattr(attn, "to_add_out", None) is not None:
                encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        return hidden_states, encoder_hidden_states


def _project(x, heads, to_q, to_k, to_v, norm_q, norm_k):
    """[B, S, H, D] query, key and value, with the QK RMSNorm where the block has one."""
    q, k, v = (f(x).unflatten(2, (heads, -1)) for f in (to_q, to_k, to_v))
    return (q if norm_q is None else norm_q(q)), (k if norm_k is None else norm_k(k)), v


def _note_text_len(geom, mask):
    """Valid prompt tokens per batch element, from the [B, N] mask: one host
    read per forward, skipped where none can happen (torch.compile tracing,
    CUDA graph capture)."""
    if mask is None or torch.compiler.is_compiling() or mask.is_meta:
        return
    if mask.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    lens = tuple(int(n) for n in mask.sum(dim=1).tolist())
    geom.text_len = None if all(n == mask.shape[1] for n in lens) else lens


def install(handle, transformer):
    p, p_t = transformer.config.patch_size, transformer.config.patch_size_t

    def hook(module, args, kwargs):
        _, _, f, h, w = arg(args, kwargs, "hidden_states", 0).shape  # [B, C, F, H, W]
        text = arg(args, kwargs, "encoder_hidden_states", 2).shape[1]
        _note_text_len(handle.geometry, arg(args, kwargs, "encoder_attention_mask", 3))
        note_geometry(handle.geometry, (f // p_t, h // p, w // p), text, True)

    blocks = list(transformer.transformer_blocks) + list(transformer.single_transformer_blocks)
    for i, block in enumerate(blocks):
        handle.install(block.attn, HunyuanVideoSieveProcessor(handle.state(i, "bshd")))
    handle.hook(hook)
