"""sieve.parallel: sequence parallelism over torch.distributed with sieve as
the local attention.

    Ulysses  all-to-all over heads (each rank: all tokens, H / P heads);
    Ring     query chunks stay, key/value chunks go round, partial outputs
             merge by their LSE;
    USP      both: Ulysses inside groups of consecutive ranks, ring across.

Every head keeps the class the pattern gives its global index, and ring
chunk pairs are cut from the whole sequence's block tables at their global
token offsets; pairs with no block to visit are skipped. Adapters for
yunchang (sieve.parallel.yunchang) and xDiT (sieve.parallel.xdit) import
those packages only when used.

On GPUs call sieve.parallel.init() (or setup_env() before your own
init_process_group): it keeps NVLink multicast off for NCCL, torch's
symmetric memory and NVSHMEM.
"""
from ._env import NVLS_OFF, init, setup_env
from ._parts import Chunk, chunk_tables, chunk_visits, heads_pattern
from ._shard import ring_bounds, shard_bounds

__all__ = ["USP", "Ulysses", "Ring", "SieveLocal", "ReferenceLocal", "merge_lse", "Chunk",
           "chunk_tables", "chunk_visits", "heads_pattern", "ring_bounds", "shard_bounds", "init",
           "setup_env", "NVLS_OFF"]

_TORCH = {"USP": "usp", "Ulysses": "usp", "Ring": "usp", "SieveLocal": "local",
          "ReferenceLocal": "local", "merge_lse": "_merge"}


def __getattr__(name):
    # torch is imported when a torch-side name is first used, so the
    # ctypes helpers above work without it.
    if name in _TORCH:
        import importlib
        return getattr(importlib.import_module("." + _TORCH[name], __name__), name)
    if name in ("yunchang", "xdit"):
        import importlib
        return importlib.import_module("." + name, __name__)
    raise AttributeError("module 'sieve.parallel' has no attribute %r" % name)
