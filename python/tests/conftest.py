"""pytest set-up for the Python package's tests.

SIEVE_TEST_NO_TORCH=1 makes `import torch` fail, so the core binding is
proven to work without it; SIEVE_TEST_TORCH=1 makes a missing torch an
error instead of a skip (CI's torch stage)."""
import importlib.abc
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("torch is blocked by SIEVE_TEST_NO_TORCH", name=name)
        return None


if os.environ.get("SIEVE_TEST_NO_TORCH") == "1":
    sys.meta_path.insert(0, _NoTorch())


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs torch (the fake op, torch.compile tracing)")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU")


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        have_torch, have_gpu = True, torch.cuda.is_available()
    except ImportError:
        have_torch = have_gpu = False
    if not have_torch and os.environ.get("SIEVE_TEST_TORCH") == "1":
        raise pytest.UsageError("SIEVE_TEST_TORCH=1 but torch does not import")
    for item in items:
        if "torch" in item.keywords and not have_torch:
            item.add_marker(pytest.mark.skip(reason="torch is not installed"))
        if "gpu" in item.keywords and not have_gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU"))
