"""libsieve through ctypes: the C structs, the prototypes, status -> exception.

ctypes rather than a compiled extension: the wheel then carries only
libsieve and its Lua library, and the binding imports with no torch and no
compiler. The one hot call (a launch) costs about a microsecond this way.
"""
import ctypes as C
import os
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))


class Shape(C.Structure):
    _fields_ = [(n, C.c_int) for n in (
        "batch", "heads", "head_dim", "frames", "height", "width", "text", "text_after")]

    def astuple(self):
        return tuple(getattr(self, n) for n, _ in self._fields_)

    @property
    def tokens(self):
        return self.text + self.frames * self.height * self.width

    def __repr__(self):
        return "Shape(%s)" % ", ".join("%s=%d" % (n, getattr(self, n)) for n, _ in self._fields_)


class Config(C.Structure):
    _fields_ = [(n, C.c_int) for n in ("block_m", "block_n", "warps", "stages", "sched")]


class Tensor(C.Structure):
    _fields_ = [("ptr", C.c_uint64), ("stride_b", C.c_int64),
                ("stride_h", C.c_int64), ("stride_s", C.c_int64)]


class TablesInfo(C.Structure):
    _fields_ = [("heads", C.c_int), ("tables", C.c_int), ("q_blocks", C.c_int),
                ("k_blocks", C.c_int), ("block_q", C.c_int), ("block_k", C.c_int),
                ("build_ms", C.c_double)] + [(n, C.c_int64) for n in (
                    "interval_full", "interval_empty", "interval_undecided",
                    "refined_full", "refined_empty", "refined_partial", "bytes", "max_bytes",
                    "bitmask_bytes")]


class TableView(C.Structure):
    _fields_ = [("q_blocks", C.c_int)] + [(n, C.POINTER(C.c_int32)) for n in (
        "full_ptr", "full_idx", "part_ptr", "part_idx")] + [
        ("full_blocks", C.c_int64), ("partial_blocks", C.c_int64), ("empty_blocks", C.c_int64),
        ("density", C.c_double), ("layout", C.c_char_p), ("klass", C.c_char_p),
        ("estimated_blocks", C.c_int64), ("bytes", C.c_int64), ("layout_choice", C.c_char_p),
        ("bitmask", C.c_int), ("pair_ops", C.c_int), ("bitmasks", C.c_int64), ("bitmask_bytes", C.c_int64)]


class DynPlanInfo(C.Structure):
    _fields_ = [(n, C.c_int) for n in (
        "kind", "batch", "heads", "q_blocks", "k_blocks", "block_q", "block_k", "classes", "samples",
        "chosen")]


class DeviceInfo(C.Structure):
    _fields_ = [("ordinal", C.c_int), ("name", C.c_char * 256), ("sm_major", C.c_int),
                ("sm_minor", C.c_int), ("sm_count", C.c_int), ("smem_per_block", C.c_int),
                ("driver_version", C.c_int)]


# sieve_status, in include/sieve.h's order.
STATUS = ("ok", "arg", "script", "limit", "shape", "nomem", "io", "codegen",
          "no_driver", "no_gpu", "cuda", "cache", "unsupported")


class SieveError(RuntimeError):
    """A failed libsieve call; `status` is the sieve_status name ("cuda", ...)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ScriptError(SieveError):
    """A pattern script failed or ran past its limits; the message has file:line."""


class SieveValueError(SieveError, ValueError):
    """libsieve refused an argument or a shape."""


def _error_class(status, loading):
    # SIEVE_ERR_LIMIT is a script's instruction or memory limit while it
    # loads, and the block tables' device-memory bound when a plan is made.
    if status == "script" or (status == "limit" and loading):
        return ScriptError
    if status in ("arg", "shape", "unsupported"):
        return SieveValueError
    return SieveError


def _find_library():
    """The wheel keeps libsieve in sieve/_lib; $SIEVE_LIB_DIR points elsewhere
    (a build tree, or the binaries copied to a GPU machine)."""
    dirs = [os.environ.get("SIEVE_LIB_DIR"), os.path.join(_HERE, "_lib")]
    for d in dirs:
        if d and os.path.exists(os.path.join(d, "libsieve.so")):
            return os.path.join(d, "libsieve.so")
    raise ImportError("libsieve.so not found in %s; install the package with pip, or set SIEVE_LIB_DIR"
                      % " or ".join(d for d in dirs if d))


def _prototypes(L):
    P, I, S = C.c_void_p, C.c_int, C.c_char_p
    PP = C.POINTER(P)
    protos = {
        "sieve_strerror": (S, [I]),
        "sieve_version": (S, []),
        "sieve_open": (I, [PP]),
        "sieve_close": (None, [P]),
        "sieve_errmsg": (S, [P]),
        "sieve_shape_preset": (I, [S, C.POINTER(Shape)]),
        "sieve_shape_preset_name": (S, [I]),
        "sieve_shape_check": (I, [P, C.POINTER(Shape)]),
        "sieve_pattern_load": (I, [P, S, C.POINTER(S), PP]),
        "sieve_pattern_load_string": (I, [P, S, S, C.POINTER(S), PP]),
        "sieve_pattern_free": (None, [P]),
        "sieve_pattern_name": (S, [P]),
        "sieve_pattern_ir": (S, [P]),
        "sieve_pattern_hash": (C.c_uint64, [P]),
        "sieve_pattern_shape": (None, [P, C.POINTER(Shape), C.POINTER(Shape)]),
        "sieve_tables_build": (I, [P, P, C.POINTER(Shape), I, I, PP]),
        "sieve_tables_free": (None, [P]),
        "sieve_tables_info_get": (None, [P, C.POINTER(TablesInfo)]),
        "sieve_tables_head_table": (I, [P, I]),
        "sieve_tables_view": (I, [P, I, C.POINTER(TableView)]),
        "sieve_device_count": (I, [P, C.POINTER(I)]),
        "sieve_device_query": (I, [P, I, C.POINTER(DeviceInfo)]),
        "sieve_plan_create": (I, [P, P, C.POINTER(Shape), I, C.POINTER(Config), PP]),
        "sieve_plan_set_step": (I, [P, I, I]),
        "sieve_plan_set_text_len": (I, [P, C.POINTER(I), I]),
        "sieve_dynplan_set_text_len": (I, [P, C.POINTER(I), I]),
        "sieve_plan_config": (None, [P, C.POINTER(Config)]),
        "sieve_plan_density": (C.c_double, [P]),
        "sieve_attention": (I, [P] + [C.POINTER(Tensor)] * 4 + [C.c_uint64, C.c_float, P]),
        "sieve_plan_free": (None, [P]),
        "sieve_dynplan_create": (I, [P, P, C.POINTER(Shape), I, PP]),
        "sieve_dynplan_step": (I, [P, I, I] + [C.POINTER(Tensor)] * 4
                               + [C.c_uint64, C.c_float, P, C.POINTER(I)]),
        "sieve_dynplan_density": (I, [P, C.POINTER(C.c_double)]),
        "sieve_dynplan_save_search": (I, [P, C.c_char_p]),
        "sieve_dynplan_free": (None, [P]),
        "sieve_dynplan_info_get": (I, [P, C.POINTER(DynPlanInfo)]),
        "sieve_dynplan_blocks": (I, [P, P, P, P]),
        "sieve_dynplan_classes": (I, [P, P, P, P]),
        "sieve_dynplan_class_name": (S, [P, I]),
    }
    for name, (res, args) in protos.items():
        f = getattr(L, name)
        f.restype, f.argtypes = res, args


class _Lib:
    """The loaded library and one sieve_ctx for the process.

    A sieve_ctx belongs to one thread at a time: calls that load, build or
    create hold `lock`; launches do not (they touch only their plan, and the
    context only to record a failure)."""

    def __init__(self):
        self.path = _find_library()
        self.L = C.CDLL(self.path)
        _prototypes(self.L)
        self.lock = threading.RLock()
        self.ctx = C.c_void_p()
        st = self.L.sieve_open(C.byref(self.ctx))
        if st:
            raise SieveError(STATUS[st], "sieve_open: %s" % self.L.sieve_strerror(st).decode())

    def error(self, st, what=None, loading=False):
        """The exception for status `st`, with the context's message."""
        name = STATUS[st] if 0 <= st < len(STATUS) else str(st)
        msg = (self.L.sieve_errmsg(self.ctx) or b"").decode(errors="replace")
        if not msg:
            msg = self.L.sieve_strerror(st).decode()
        if what:
            msg = "%s: %s" % (what, msg)
        return _error_class(name, loading)(name, msg)

    def check(self, st, what=None, loading=False):
        if st:
            raise self.error(st, what, loading)


_lib = None
_lib_lock = threading.Lock()


def lib():
    """The process's libsieve, loaded at first use."""
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib = _Lib()
    return _lib
