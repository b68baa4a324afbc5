"""Process set-up for multi-GPU runs.

NVLink multicast (NVLS) is kept off: NCCL's NVLS algorithms, torch's
symmetric-memory multicast and NVSHMEM's all reserve multicast objects
that some hosts do not grant (or lend per job), and a collective that
falls back mid-run is harder to diagnose than one that never tried.
They must be set before the first communicator is made, so before
torch.distributed.init_process_group.
"""
import os

NVLS_OFF = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}


def setup_env(env=None):
    """Sets NVLS_OFF in `env` (os.environ by default) where not already set;
    returns the names it set."""
    env = os.environ if env is None else env
    done = []
    for k, v in NVLS_OFF.items():
        if k not in env:
            env[k] = v
            done.append(k)
    return done


def init(backend=None, **kw):
    """torch.distributed.init_process_group with NVLS off first: NCCL when
    CUDA is there (each rank on GPU LOCAL_RANK), else gloo."""
    setup_env()
    import torch
    import torch.distributed as dist
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend, **kw)
    return backend
