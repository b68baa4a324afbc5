"""libsieve's entry points for parts of an attention call (include/sieve.h,
"sequence parallelism"), through ctypes: a pattern seen from another first
head, the tables of a chunk pair, and the float64 reference of a part."""
import ctypes as C
import threading

from .._lib import Shape, lib
from .. import core


class Chunk(C.Structure):
    """Query tokens [q_begin, q_end) against key tokens [k_begin, k_end);
    an end of 0 means the sequence's end."""
    _fields_ = [(n, C.c_int64) for n in ("q_begin", "q_end", "k_begin", "k_end")]

    def astuple(self):
        return (self.q_begin, self.q_end, self.k_begin, self.k_end)

    def __repr__(self):
        return "Chunk(q=[%d, %d), k=[%d, %d))" % self.astuple()


_ready = False
_lock = threading.Lock()
_heads = {}


def _L():
    global _ready
    L = lib()
    if not _ready:
        P, I, D = C.c_void_p, C.c_int, C.POINTER(C.c_double)
        f = L.L.sieve_pattern_heads
        f.restype, f.argtypes = I, [P, P, I, C.POINTER(P)]
        f = L.L.sieve_tables_build_chunk
        f.restype, f.argtypes = I, [P, P, C.POINTER(Shape), I, I, C.POINTER(Chunk), C.POINTER(P)]
        f = L.L.sieve_tables_visits
        f.restype, f.argtypes = C.c_int64, [P]
        f = L.L.sieve_reference
        f.restype, f.argtypes = I, [P, P, C.POINTER(Shape), I, I, C.POINTER(Chunk), D, D, D,
                                    C.c_double, D, D]
        _ready = True
    return L


def heads_pattern(pattern, head0):
    """`pattern` seen from global head `head0` on: local head i gets the class
    and mask of head head0 + i. Cached per (pattern, head0)."""
    if head0 == 0:
        return pattern
    key = (id(pattern), pattern.hash, head0)
    hit = _heads.get(key)
    if hit is not None and hit[0] is pattern:
        return hit[1]
    L = _L()
    out = C.c_void_p()
    with L.lock:
        L.check(L.L.sieve_pattern_heads(L.ctx, pattern._p, head0, C.byref(out)),
                "heads of %s from %d" % (pattern.name, head0))
    p = core.Pattern.__new__(core.Pattern)
    p.path, p.params, p._p = pattern.path, dict(pattern.params), out
    p._read_ir()
    with _lock:
        _heads[key] = (pattern, p)  # the source is kept so its id is not reused
    return p


def chunk_visits(pattern, shape, chunk, step=0, layer=0):
    """Key blocks the chunk pair's tables visit over all heads (0: skip the
    pair). Raises ValueError when the chunk cannot be cut (the reason)."""
    L = _L()
    t = C.c_void_p()
    with L.lock:
        L.check(L.L.sieve_tables_build_chunk(L.ctx, pattern._p, C.byref(shape), step, layer,
                                             C.byref(chunk), C.byref(t)), "chunk tables")
    try:
        return L.L.sieve_tables_visits(t)
    finally:
        L.L.sieve_tables_free(t)


def chunk_tables(pattern, shape, chunk, step=0, layer=0):
    """The chunk pair's tables as sieve.core.Tables (views chunk-relative)."""
    L = _L()
    t = core.Tables.__new__(core.Tables)
    t._t = C.c_void_p()
    with L.lock:
        L.check(L.L.sieve_tables_build_chunk(L.ctx, pattern._p, C.byref(shape), step, layer,
                                             C.byref(chunk), C.byref(t._t)), "chunk tables")
    from .._lib import TablesInfo
    t.info = TablesInfo()
    L.L.sieve_tables_info_get(t._t, C.byref(t.info))
    t.head_table = [L.L.sieve_tables_head_table(t._t, h) for h in range(t.info.heads)]
    t.visits = L.L.sieve_tables_visits(t._t)
    return t


def reference_raw(pattern, shape, step, layer, chunk, q, k, v, scale, o, lse):
    """sieve_reference over raw double pointers (contiguous arrays)."""
    L = _L()
    D = C.POINTER(C.c_double)
    cast = lambda a: C.cast(C.c_void_p(a), D)  # noqa: E731
    st = L.L.sieve_reference(L.ctx, pattern._p, C.byref(shape), step, layer,
                             C.byref(chunk) if chunk is not None else None,
                             cast(q), cast(k), cast(v), scale, cast(o), cast(lse))
    L.check(st, "reference")
