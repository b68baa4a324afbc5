"""ctypes binding of libsieve's public API, for benchmarks beside torch.

Only what the benchmarks need: load a pattern, read its block tables, make a
plan and run attention on torch tensors on torch's current stream.
"""
import ctypes as C
import os

HERE = os.path.dirname(os.path.abspath(__file__))


class Shape(C.Structure):
    _fields_ = [(n, C.c_int) for n in (
        "batch", "heads", "head_dim", "frames", "height", "width", "text", "text_after")]

    @property
    def tokens(self):
        return self.text + self.frames * self.height * self.width


class Config(C.Structure):
    _fields_ = [(n, C.c_int) for n in ("block_m", "block_n", "warps", "stages")]


class Tensor(C.Structure):
    _fields_ = [("ptr", C.c_uint64), ("stride_b", C.c_int64),
                ("stride_h", C.c_int64), ("stride_s", C.c_int64)]


class TablesInfo(C.Structure):
    _fields_ = [("heads", C.c_int), ("tables", C.c_int), ("q_blocks", C.c_int),
                ("k_blocks", C.c_int), ("block_q", C.c_int), ("block_k", C.c_int),
                ("build_ms", C.c_double)] + [(n, C.c_int64) for n in (
                    "interval_full", "interval_empty", "interval_undecided",
                    "refined_full", "refined_empty", "refined_partial", "bytes", "max_bytes")]


class TableView(C.Structure):
    _fields_ = [("q_blocks", C.c_int)] + [(n, C.POINTER(C.c_int32)) for n in (
        "full_ptr", "full_idx", "part_ptr", "part_idx")] + [
        ("full_blocks", C.c_int64), ("partial_blocks", C.c_int64), ("empty_blocks", C.c_int64),
        ("density", C.c_double), ("layout", C.c_char_p), ("klass", C.c_char_p),
        ("estimated_blocks", C.c_int64), ("bytes", C.c_int64), ("layout_choice", C.c_char_p)]


class SieveError(RuntimeError):
    pass


class Sieve:
    def __init__(self, libdir=None):
        libdir = libdir or os.environ.get("SIEVE_LIB_DIR") or os.path.join(HERE, "..", "build")
        self.lib = L = C.CDLL(os.path.join(libdir, "libsieve.so"))
        P = C.c_void_p
        L.sieve_errmsg.restype = C.c_char_p
        L.sieve_errmsg.argtypes = [P]
        L.sieve_strerror.restype = C.c_char_p
        L.sieve_open.argtypes = [C.POINTER(P)]
        L.sieve_pattern_load.argtypes = [P, C.c_char_p, C.POINTER(C.c_char_p), C.POINTER(P)]
        L.sieve_shape_preset.argtypes = [C.c_char_p, C.POINTER(Shape)]
        L.sieve_tables_build.argtypes = [P, P, C.POINTER(Shape), C.c_int, C.c_int, C.POINTER(P)]
        L.sieve_tables_info_get.argtypes = [P, C.POINTER(TablesInfo)]
        L.sieve_tables_head_table.argtypes = [P, C.c_int]
        L.sieve_tables_view.argtypes = [P, C.c_int, C.POINTER(TableView)]
        L.sieve_tables_free.argtypes = [P]
        L.sieve_plan_create.argtypes = [P, P, C.POINTER(Shape), C.c_int, C.POINTER(Config), C.POINTER(P)]
        L.sieve_plan_config.argtypes = [P, C.POINTER(Config)]
        L.sieve_plan_density.argtypes = [P]
        L.sieve_plan_density.restype = C.c_double
        L.sieve_plan_set_step.argtypes = [P, C.c_int, C.c_int]
        L.sieve_attention.argtypes = [P] + [C.POINTER(Tensor)] * 4 + [C.c_uint64, C.c_float, P]
        L.sieve_plan_free.argtypes = [P]
        L.sieve_pattern_free.argtypes = [P]
        self.ctx = P()
        self._check(L.sieve_open(C.byref(self.ctx)))

    def _check(self, st):
        if st != 0:
            raise SieveError("%s: %s" % (self.lib.sieve_strerror(st).decode(),
                                         self.lib.sieve_errmsg(self.ctx).decode()))

    def shape(self, name, **kw):
        s = Shape()
        self._check(self.lib.sieve_shape_preset(name.encode(), C.byref(s)))
        for k, v in kw.items():
            setattr(s, k, v)
        return s

    def pattern(self, path, **params):
        ov = [("%s=%s" % kv).encode() for kv in params.items()]
        arr = (C.c_char_p * (len(ov) + 1))(*ov, None)
        p = C.c_void_p()
        self._check(self.lib.sieve_pattern_load(self.ctx, path.encode(), arr, C.byref(p)))
        return p

    def tables(self, pattern, shape, step=0, layer=0):
        """Per head: (kv_num, kv_idx, full_num, full_idx) lists over query blocks."""
        t = C.c_void_p()
        self._check(self.lib.sieve_tables_build(self.ctx, pattern, C.byref(shape), step, layer, C.byref(t)))
        info = TablesInfo()
        self.lib.sieve_tables_info_get(t, C.byref(info))
        views = []
        for i in range(info.tables):
            v = TableView()
            self._check(self.lib.sieve_tables_view(t, i, C.byref(v)))
            nq = v.q_blocks
            fp = [v.full_ptr[j] for j in range(nq + 1)]
            pp = [v.part_ptr[j] for j in range(nq + 1)]
            full = [[v.full_idx[j] for j in range(fp[q], fp[q + 1])] for q in range(nq)]
            part = [[v.part_idx[j] for j in range(pp[q], pp[q + 1])] for q in range(nq)]
            views.append((full, part, v.density))
        heads = [self.lib.sieve_tables_head_table(t, h) for h in range(shape.heads)]
        self.lib.sieve_tables_free(t)
        return info, views, heads

    def plan(self, pattern, shape, dtype, cfg=None):
        p = C.c_void_p()
        c = Config(*(cfg or (0, 0, 0, 0)))
        self._check(self.lib.sieve_plan_create(self.ctx, pattern, C.byref(shape), dtype, C.byref(c), C.byref(p)))
        return p

    def plan_config(self, plan):
        c = Config()
        self.lib.sieve_plan_config(plan, C.byref(c))
        return (c.block_m, c.block_n, c.warps, c.stages)

    def attention(self, plan, q, k, v, o, lse, stream, scale=0.0):
        """q, k, v, o: torch tensors [B, H, S, D] (any strides, last dim contiguous)."""
        def tens(x):
            sb, sh, ss, sd = x.stride()
            assert sd == 1
            return Tensor(x.data_ptr(), sb, sh, ss)
        self._check(self.lib.sieve_attention(plan, C.byref(tens(q)), C.byref(tens(k)), C.byref(tens(v)),
                                             C.byref(tens(o)), lse.data_ptr(), scale, C.c_void_p(stream)))
