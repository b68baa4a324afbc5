"""sieve as diffusers attention processors.

    handle = sieve.diffusers.apply(pipe.transformer, pattern="lvsa", window=2)

routes every self-attention of a WanTransformer3DModel,
HunyuanVideoTransformer3DModel or CogVideoXTransformer3DModel through
sieve, with the model's token geometry (latent grid after patchify; text
before the video in CogVideoX, after it in HunyuanVideo, none in Wan's
self-attention) and each layer's index. Cross-attention stays dense.
"""
from ._common import Handle

__all__ = ["apply", "Handle"]


def _families():
    from . import cogvideox, hunyuan, wan
    return {
        "WanTransformer3DModel": wan.install,
        "HunyuanVideoTransformer3DModel": hunyuan.install,
        "CogVideoXTransformer3DModel": cogvideox.install,
    }


def apply(transformer, pattern="lvsa", calls_per_step=1, **params):
    """Installs sieve processors on `transformer`; returns the Handle.

    pattern: a shipped name, a script path or a sieve.Pattern; params go to
    the script. calls_per_step: transformer calls per denoising step (2
    when the pipeline runs classifier-free guidance as two calls)."""
    install = _families().get(type(transformer).__name__)
    if install is None:
        raise ValueError("transformer: sieve has processors for %s, not %s"
                         % (", ".join(sorted(_families())), type(transformer).__name__))
    h = Handle(transformer, pattern, params, calls_per_step)
    install(h, transformer)
    return h
