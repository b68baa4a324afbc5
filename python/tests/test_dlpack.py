"""The core binding's DLPack reader and raw-pointer tensors (no torch): a
DLPack capsule is built here by hand, as a producer would."""
import ctypes as C

import pytest

from sieve import _dlpack, core

_new = C.pythonapi.PyCapsule_New
_new.restype, _new.argtypes = C.py_object, [C.c_void_p, C.c_char_p, C.c_void_p]


class _Managed(C.Structure):
    _fields_ = [("t", _dlpack._DLTensor), ("ctx", C.c_void_p), ("deleter", C.c_void_p)]


class Producer:
    """A 4-D tensor description exported through __dlpack__ (no memory behind it)."""

    def __init__(self, shape, strides, code=4, bits=16, device=2, ptr=0x7F0000000000, offset=0):
        n = len(shape)
        self.shape = (C.c_int64 * n)(*shape)
        self.strides = (C.c_int64 * n)(*strides) if strides else None
        self.m = _Managed()
        t = self.m.t
        t.data, t.ndim, t.byte_offset = ptr, n, offset
        t.device.device_type, t.device.device_id = device, 0
        t.dtype.code, t.dtype.bits, t.dtype.lanes = code, bits, 1
        t.shape = C.cast(self.shape, C.POINTER(C.c_int64))
        t.strides = C.cast(self.strides, C.POINTER(C.c_int64)) if strides else None

    def __dlpack__(self, stream=None):
        return _new(C.addressof(self.m), b"dltensor", None)


def test_bshd_view_strides():
    B, S, H, D = 2, 300, 4, 128
    x = Producer((B, H, S, D), (S * H * D, D, H * D, 1), offset=256)
    t = core.tensor(x)
    assert t.ptr == 0x7F0000000000 + 256
    assert (t.stride_b, t.stride_h, t.stride_s) == (S * H * D, D, H * D)


def test_compact_when_strides_are_null():
    t = core.tensor(Producer((1, 2, 3, 64), None))
    assert (t.stride_b, t.stride_h, t.stride_s) == (384, 192, 64)


@pytest.mark.parametrize("kw, word", [
    (dict(shape=(2, 3, 64), strides=(192, 64, 1)), "4 dims"),
    (dict(shape=(1, 1, 4, 64), strides=(512, 512, 128, 2)), "contiguous"),
    (dict(shape=(1, 1, 4, 64), strides=(256, 256, 64, 1), device=1), "CUDA"),
    (dict(shape=(1, 1, 4, 64), strides=(256, 256, 64, 1), code=2, bits=32), "dtype"),
])
def test_bad_tensors_are_value_errors(kw, word):
    with pytest.raises(ValueError, match=word):
        core.tensor(Producer(**kw))


def test_raw_pointer():
    t = core.tensor(ptr=4096, strides=(1, 2, 3))
    assert (t.ptr, t.stride_b, t.stride_h, t.stride_s) == (4096, 1, 2, 3)
