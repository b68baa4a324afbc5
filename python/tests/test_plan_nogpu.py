"""Without a GPU, making a plan is an exception, not a crash (no torch)."""
import ctypes as C

import pytest

import sieve
from sieve import core
from sieve._lib import lib


def _gpus():
    n = C.c_int()
    return 0 if lib().L.sieve_device_count(lib().ctx, C.byref(n)) else n.value


@pytest.mark.skipif(_gpus() > 0, reason="a GPU is present")
@pytest.mark.parametrize("name", ["dense", "adaspa"])
def test_plan_without_gpu_raises(name):
    p = sieve.Pattern(name)
    s = p.shape(heads=2, head_dim=64, frames=2, height=8, width=8)
    make = core.DynPlan if p.dynamic else core.Plan
    with pytest.raises(sieve.SieveError) as ei:
        make(p, s)
    assert ei.value.status in ("no_driver", "no_gpu", "cuda")
