"""libsieve for benchmarks beside torch, over the Python package's binding.

Only what the benchmarks need: load a pattern, read its block tables, make a
plan and run attention on torch tensors on torch's current stream. The
structs and prototypes are the package's (python/sieve/_lib.py), so a change
to include/sieve.h is mirrored in one place.
"""
import ctypes as C
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from sieve._lib import Config, Shape, SieveError, TablesInfo, TableView, Tensor  # noqa: E402,F401 (re-exported)


class Sieve:
    def __init__(self, libdir=None):
        # The package finds libsieve through $SIEVE_LIB_DIR; a benchmark run
        # from a build tree defaults to ../build.
        libdir = libdir or os.environ.get("SIEVE_LIB_DIR") or os.path.join(HERE, "..", "build")
        os.environ["SIEVE_LIB_DIR"] = os.path.abspath(libdir)
        from sieve import _lib
        self._l = _lib.lib()
        self.lib, self.ctx = self._l.L, self._l.ctx

    def _check(self, st):
        self._l.check(st)

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
        c = Config(*(cfg or (0, 0, 0, 0)))  # a fifth value: sched
        self._check(self.lib.sieve_plan_create(self.ctx, pattern, C.byref(shape), dtype, C.byref(c), C.byref(p)))
        return p

    def plan_config(self, plan):
        c = Config()
        self.lib.sieve_plan_config(plan, C.byref(c))
        return (c.block_m, c.block_n, c.warps, c.stages, c.sched)

    def attention(self, plan, q, k, v, o, lse, stream, scale=0.0):
        """q, k, v, o: torch tensors [B, H, S, D] (any strides, last dim contiguous)."""
        def tens(x):
            sb, sh, ss, sd = x.stride()
            assert sd == 1
            return Tensor(x.data_ptr(), sb, sh, ss)
        self._check(self.lib.sieve_attention(plan, C.byref(tens(q)), C.byref(tens(k)), C.byref(tens(v)),
                                             C.byref(tens(o)), lse.data_ptr(), scale, C.c_void_p(stream)))
