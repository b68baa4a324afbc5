"""sieve: JIT-generated block-sparse attention for video diffusion transformers.

The core (sieve.core: patterns, block tables, plans over raw device
pointers or DLPack) needs no torch. The torch layer (sieve.attention,
sieve.Attention, the sieve::attention custom op) and sieve.diffusers load
torch when first touched.
"""
from ._lib import ScriptError, SieveError, SieveValueError
from .core import Pattern, Shape, shape_preset, shape_presets, shipped_patterns, version

__all__ = ["Pattern", "Shape", "Attention", "Clock", "attention", "shape_preset", "shape_presets",
           "shipped_patterns", "version", "SieveError", "ScriptError", "SieveValueError"]

_TORCH = {"attention", "Attention", "Clock", "clear_plan_cache"}


def __getattr__(name):
    if name in _TORCH:
        from . import _torch
        return getattr(_torch, name)
    if name == "diffusers":
        import importlib
        return importlib.import_module(".diffusers", __name__)
    raise AttributeError("module 'sieve' has no attribute %r" % name)
