"""Reads a device pointer and strides out of a DLPack capsule, so the core
binding takes CuPy, JAX or torch arrays without importing any of them.

The capsule is only read, never consumed: its destructor still releases the
producer's tensor, and the caller keeps the producer alive across the call.
"""
import ctypes as C


class _Device(C.Structure):
    _fields_ = [("device_type", C.c_int32), ("device_id", C.c_int32)]


class _DType(C.Structure):
    _fields_ = [("code", C.c_uint8), ("bits", C.c_uint8), ("lanes", C.c_uint16)]


class _DLTensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("device", _Device), ("ndim", C.c_int32),
                ("dtype", _DType), ("shape", C.POINTER(C.c_int64)),
                ("strides", C.POINTER(C.c_int64)), ("byte_offset", C.c_uint64)]


_CUDA, _CUDA_MANAGED = 2, 13
_BFLOAT, _FLOAT = 4, 2
DTYPES = {(_BFLOAT, 16): "bfloat16", (_FLOAT, 16): "float16"}

_get = C.pythonapi.PyCapsule_GetPointer
_get.restype, _get.argtypes = C.c_void_p, [C.py_object, C.c_char_p]


def describe(x):
    """(ptr, shape, strides in elements, dtype name, (device type, id)) of x."""
    try:
        cap = x.__dlpack__(stream=-1)  # -1: the caller orders the streams itself
    except TypeError:
        cap = x.__dlpack__()
    t = _DLTensor.from_address(_get(cap, b"dltensor"))
    n = t.ndim
    shape = tuple(t.shape[i] for i in range(n))
    if t.strides:
        strides = tuple(t.strides[i] for i in range(n))
    else:  # NULL strides mean compact row-major
        strides, acc = [], 1
        for d in reversed(shape):
            strides.insert(0, acc)
            acc *= d
        strides = tuple(strides)
    dtype = DTYPES.get((t.dtype.code, t.dtype.bits), "code%d/%d" % (t.dtype.code, t.dtype.bits))
    ptr = (t.data or 0) + t.byte_offset
    return ptr, shape, strides, dtype, (t.device.device_type, t.device.device_id)


def pointer_and_strides(x, name="tensor"):
    ptr, shape, strides, dtype, dev = describe(x)
    if len(shape) != 4:
        raise ValueError("%s: expected 4 dims [B, H, S, D], got shape %s" % (name, shape))
    if strides[3] != 1:
        raise ValueError("%s: the last dim must be contiguous (stride 1), got strides %s" % (name, strides))
    if dev[0] not in (_CUDA, _CUDA_MANAGED):
        raise ValueError("%s: must be on a CUDA device (DLPack device type %d)" % (name, dev[0]))
    if dtype not in ("bfloat16", "float16"):
        raise ValueError("%s: dtype must be bfloat16 or float16, got %s" % (name, dtype))
    return ptr, strides[:3]
