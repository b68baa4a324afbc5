"""The GPU tests' models: the three families at a few thousand tokens on
the GPU in bf16, seeded, with inputs of the same size."""
import torch

import models

# latent grid (frames, height, width) before patchify: 8 x 48 x 48 latents
# give 8 x 24 x 24 = 4608 video tokens after the 2x2 patch.
LATENT = dict(frames=8, height=48, width=48)
TEXT = 32


def build(family, seed=0):
    torch.manual_seed(seed)
    kw = dict(layers=1, single=1, heads=4) if family == "hunyuan" else dict(layers=2, heads=4)
    m = getattr(models, family)(**kw).to(device="cuda", dtype=torch.bfloat16).eval()
    torch.manual_seed(seed + 1)
    inputs = getattr(models, family + "_inputs")(text=TEXT, device="cuda", dtype=torch.bfloat16, **LATENT)
    if family == "cogvideox":
        inputs["image_rotary_emb"] = rotary(8 * 24 * 24, 64)
    return m, inputs


def rotary(tokens, dim):
    """cos, sin [S, D] with interleaved pairs, as diffusers' apply_rotary_emb takes them."""
    ang = torch.rand(tokens, dim // 2, device="cuda") * 6.28
    return torch.cos(ang).repeat_interleave(2, -1), torch.sin(ang).repeat_interleave(2, -1)


def rel_err(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm()).item()
