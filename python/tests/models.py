"""Small random-initialised transformers of the three families, from their
config classes: few layers, the real head dims, real patchify."""
import torch


def wan(layers=2, heads=2):
    from diffusers import WanTransformer3DModel
    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=128,
                                 in_channels=16, out_channels=16, text_dim=64, freq_dim=64, ffn_dim=256,
                                 num_layers=layers, rope_max_seq_len=1024)


def wan_inputs(frames=4, height=32, width=32, batch=1, text=12, **dev):
    return dict(hidden_states=torch.randn(batch, 16, frames, height, width, **dev),
                timestep=torch.tensor([500] * batch, **_long(dev)),
                encoder_hidden_states=torch.randn(batch, text, 64, **dev), return_dict=False)


def hunyuan(layers=1, single=1, heads=2):
    from diffusers import HunyuanVideoTransformer3DModel
    return HunyuanVideoTransformer3DModel(in_channels=16, out_channels=16, num_attention_heads=heads,
                                          attention_head_dim=128, num_layers=layers, num_single_layers=single,
                                          num_refiner_layers=1, text_embed_dim=64, pooled_projection_dim=32,
                                          rope_axes_dim=(16, 56, 56))


def hunyuan_inputs(frames=4, height=32, width=32, batch=1, text=16, **dev):
    return dict(hidden_states=torch.randn(batch, 16, frames, height, width, **dev),
                timestep=torch.tensor([500] * batch, **_long(dev)),
                encoder_hidden_states=torch.randn(batch, text, 64, **dev),
                encoder_attention_mask=torch.ones(batch, text, **_long(dev)),
                pooled_projections=torch.randn(batch, 32, **dev),
                guidance=torch.tensor([6000.0] * batch, **_f32(dev)), return_dict=False)


def cogvideox(layers=2, heads=2):
    from diffusers import CogVideoXTransformer3DModel
    return CogVideoXTransformer3DModel(num_attention_heads=heads, attention_head_dim=64, in_channels=16,
                                       out_channels=16, text_embed_dim=64, time_embed_dim=64, num_layers=layers,
                                       sample_width=32, sample_height=32, sample_frames=13,
                                       max_text_seq_length=16, use_rotary_positional_embeddings=True)


def cogvideox_inputs(frames=4, height=32, width=32, batch=1, text=16, **dev):
    return dict(hidden_states=torch.randn(batch, frames, 16, height, width, **dev),
                encoder_hidden_states=torch.randn(batch, text, 64, **dev),
                timestep=torch.tensor([500] * batch, **_long(dev)), return_dict=False)


def _long(dev):
    return {k: v for k, v in dev.items() if k == "device"} | {"dtype": torch.long}


def _f32(dev):
    return {k: v for k, v in dev.items() if k == "device"} | {"dtype": torch.float32}
