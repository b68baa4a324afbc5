"""The framework-free binding: patterns, shapes, block tables and plans over
raw device pointers (or any DLPack producer). torch is not imported here.
"""
import ctypes as C
import os

from . import _dlpack
from ._lib import Config, DynPlanInfo, Shape, TablesInfo, TableView, Tensor, lib

__all__ = ["Pattern", "Shape", "Tables", "Plan", "DynPlan", "tensor", "shape_preset",
           "shape_presets", "version", "patterns_dir", "shipped_patterns"]

BF16, FP16 = 0, 1
_HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    return lib().L.sieve_version().decode()


def patterns_dir():
    """Where shipped patterns are found: $SIEVE_PATTERNS, the copy inside the
    wheel, else a source checkout's patterns/ (running from the tree)."""
    for d in (os.environ.get("SIEVE_PATTERNS"), os.path.join(_HERE, "patterns"),
              os.path.join(_HERE, "..", "..", "patterns")):
        if d and os.path.isdir(d):
            return os.path.abspath(d)
    return None


def shipped_patterns():
    d = patterns_dir()
    return sorted(f[:-4] for f in os.listdir(d) if f.endswith(".lua")) if d else []


def shape_preset(name):
    s = Shape()
    L = lib()
    if L.L.sieve_shape_preset(name.encode(), C.byref(s)):
        raise ValueError("shape preset %r is unknown; presets: %s" % (name, ", ".join(shape_presets())))
    return s


def shape_presets():
    out, L = [], lib().L
    while True:
        n = L.sieve_shape_preset_name(len(out))
        if not n:
            return out
        out.append(n.decode())


def _param_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Pattern:
    """A loaded pattern script: `Pattern("lvsa", window=2)` or a path.

    Parameters override the script's `sieve.params`; an unknown name, a bad
    value or a script error raises (ScriptError carries file:line)."""

    def __init__(self, name_or_path, **params):
        path = self._resolve(name_or_path)
        self.path = path
        self.params = dict(params)
        ov = [("%s=%s" % (k, _param_text(v))).encode() for k, v in params.items()]
        arr = (C.c_char_p * (len(ov) + 1))(*ov, None)
        L = lib()
        self._p = C.c_void_p()
        with L.lock:
            L.check(L.L.sieve_pattern_load(L.ctx, path.encode(), arr, C.byref(self._p)), loading=True)
        self._read_ir()

    @classmethod
    def from_string(cls, source, chunkname="pattern", **params):
        self = cls.__new__(cls)
        self.path, self.params = None, dict(params)
        ov = [("%s=%s" % (k, _param_text(v))).encode() for k, v in params.items()]
        arr = (C.c_char_p * (len(ov) + 1))(*ov, None)
        L = lib()
        self._p = C.c_void_p()
        with L.lock:
            L.check(L.L.sieve_pattern_load_string(L.ctx, chunkname.encode(), source.encode(),
                                                  arr, C.byref(self._p)), loading=True)
        self._read_ir()
        return self

    @staticmethod
    def _resolve(name):
        name = os.fspath(name)
        if os.sep in name or name.endswith(".lua") or os.path.exists(name):
            if not os.path.exists(name):
                raise FileNotFoundError("pattern script %s does not exist" % name)
            return name
        d = patterns_dir()
        path = os.path.join(d, name + ".lua") if d else None
        if not path or not os.path.exists(path):
            raise ValueError("pattern %r is not shipped (shipped: %s); give a path to a script"
                             % (name, ", ".join(shipped_patterns()) or "none found"))
        return path

    def _read_ir(self):
        L = lib().L
        self.name = L.sieve_pattern_name(self._p).decode()
        self.ir = L.sieve_pattern_ir(self._p).decode()
        self.hash = L.sieve_pattern_hash(self._p)
        self.selection = "static"
        for line in self.ir.splitlines():
            if line.startswith("selection "):
                self.selection = line.split()[1]

    @property
    def dynamic(self):
        """True when blocks are chosen at run time (AdaSpa's search, SVG's profiling)."""
        return self.selection != "static"

    def shape(self, batch=1, heads=1, head_dim=128, frames=0, height=0, width=0, text=0,
              text_after=False):
        """The shape this pattern runs on: grid sizes left 0 come from the
        script's geometry, and text the script declares overrides yours."""
        s = Shape(batch, heads, head_dim, frames, height, width, text, int(bool(text_after)))
        out = Shape()
        lib().L.sieve_pattern_shape(self._p, C.byref(s), C.byref(out))
        return out

    def tables(self, shape, step=0, layer=0):
        return Tables(self, shape, step, layer)

    def __repr__(self):
        params = "".join(", %s=%r" % kv for kv in self.params.items())
        return "sieve.Pattern(%r%s)" % (self.name, params)

    def __del__(self):
        p = getattr(self, "_p", None)
        if p and p.value and lib is not None:
            lib().L.sieve_pattern_free(p)
            self._p = None


class Tables:
    """Per-head block tables at one (step, layer), read back as Python lists."""

    def __init__(self, pattern, shape, step=0, layer=0):
        L = lib()
        self._t = C.c_void_p()
        with L.lock:
            L.check(L.L.sieve_tables_build(L.ctx, pattern._p, C.byref(shape), step, layer,
                                           C.byref(self._t)))
        self.info = TablesInfo()
        L.L.sieve_tables_info_get(self._t, C.byref(self.info))
        self.head_table = [L.L.sieve_tables_head_table(self._t, h) for h in range(self.info.heads)]

    def view(self, i):
        """Table i: dict with full/partial key blocks per query block, density, layout, class."""
        L = lib()
        v = TableView()
        L.check(L.L.sieve_tables_view(self._t, i, C.byref(v)))
        nq = v.q_blocks
        fp, pp = v.full_ptr[:nq + 1], v.part_ptr[:nq + 1]
        return {
            "full": [v.full_idx[fp[q]:fp[q + 1]] for q in range(nq)],
            "partial": [v.part_idx[pp[q]:pp[q + 1]] for q in range(nq)],
            "density": v.density, "layout": v.layout.decode(), "klass": v.klass.decode(),
            "full_blocks": v.full_blocks, "partial_blocks": v.partial_blocks,
            "empty_blocks": v.empty_blocks, "estimated_blocks": v.estimated_blocks, "bytes": v.bytes,
            "layout_choice": v.layout_choice.decode() if v.layout_choice else None,
            "bitmask": bool(v.bitmask), "pair_ops": v.pair_ops, "bitmasks": v.bitmasks,
            "bitmask_bytes": v.bitmask_bytes,
        }

    def __del__(self):
        t = getattr(self, "_t", None)
        if t and t.value:
            lib().L.sieve_tables_free(t)
            self._t = None


def tensor(x=None, ptr=None, strides=None):
    """A sieve_tensor: from a DLPack producer x (4-D [B, H, S, D], last dim
    contiguous, on a CUDA device), or from a raw pointer and (b, h, s) strides
    in elements."""
    if x is not None:
        ptr, strides = _dlpack.pointer_and_strides(x)
    return Tensor(ptr, *strides)


def _by_address(L, name, argtypes):
    """A second handle on a C function that takes tensors by address (ints)."""
    f = L.L[name]
    f.restype, f.argtypes = C.c_int, argtypes
    return f


def _set_text_len(plan, fn, valid):
    """Valid text tokens per batch element (B ints), None for the whole
    text: a kernel argument, so no recompile; runs enqueued after it see it."""
    if valid is None:
        st = fn(plan._p, None, 0)
    else:
        st = fn(plan._p, (C.c_int * len(valid))(*valid), len(valid))
    if st:
        raise plan._L.error(st, "set_text_len")
    plan.text_len = None if valid is None else tuple(valid)


class Plan:
    """A static plan: the tables and the kernel for one shape and dtype, on
    the current CUDA context's device. Running it compiles and allocates
    nothing."""

    def __init__(self, pattern, shape, dtype=BF16, config=None):
        L = lib()
        self.pattern, self.shape, self.dtype = pattern, shape, dtype
        self._p = C.c_void_p()
        cfg = Config(*(config or (0, 0, 0, 0)))
        with L.lock:
            L.check(L.L.sieve_plan_create(L.ctx, pattern._p, C.byref(shape), dtype, C.byref(cfg),
                                          C.byref(self._p)), "plan for %s" % pattern.name)
        self._L = L
        self._run = L.L.sieve_attention
        self._set = L.L.sieve_plan_set_step
        self._at = None
        self._launch = _by_address(L, "sieve_attention", [C.c_void_p] * 5 + [C.c_uint64, C.c_float, C.c_void_p])
        self.text_len = None

    def set_text_len(self, valid):
        _set_text_len(self, self._L.L.sieve_plan_set_text_len, valid)

    def set_step(self, step, layer):
        if self._at != (step, layer):
            st = self._set(self._p, step, layer)
            if st:
                raise self._L.error(st, "set_step")
            self._at = (step, layer)

    def run(self, q, k, v, o, lse, stream=0, scale=0.0, step=0, layer=0):
        """q, k, v, o: sieve_tensor (see tensor()); lse: a device pointer."""
        if self._at != (step, layer):
            self.set_step(step, layer)
        st = self._run(self._p, q, k, v, o, lse, scale, stream)
        if st:
            raise self._L.error(st, "sieve_attention")

    def launch(self, descs, lse, stream, scale, step, layer):
        """As run(), with q, k, v, o as four consecutive sieve_tensors at
        address `descs`: the torch layer's hot path, a few microseconds
        cheaper than building four ctypes structs per call."""
        if self._at != (step, layer):
            self.set_step(step, layer)
        st = self._launch(self._p, descs, descs + 32, descs + 64, descs + 96, lse, scale, stream)
        if st:
            raise self._L.error(st, "sieve_attention")

    @property
    def density(self):
        return self._L.L.sieve_plan_density(self._p)

    @property
    def config(self):
        c = Config()
        self._L.L.sieve_plan_config(self._p, C.byref(c))
        return (c.block_m, c.block_n, c.warps, c.stages)

    def __del__(self):
        p = getattr(self, "_p", None)
        if p and p.value:
            self._L.L.sieve_plan_free(p)
            self._p = None


class DynPlan:
    """A dynamic plan (AdaSpa's search, SVG's profiling): keeps its choice
    between steps, so one per layer. All device memory is allocated here."""

    def __init__(self, pattern, shape, dtype=BF16):
        L = lib()
        self.pattern, self.shape, self.dtype = pattern, shape, dtype
        self._p = C.c_void_p()
        with L.lock:
            L.check(L.L.sieve_dynplan_create(L.ctx, pattern._p, C.byref(shape), dtype,
                                             C.byref(self._p)), "dynamic plan for %s" % pattern.name)
        self._L = L
        self._step = L.L.sieve_dynplan_step
        self._chose = C.c_int()
        self._chose_ref = C.byref(self._chose)
        self.chose = False
        self._launch = _by_address(L, "sieve_dynplan_step", [C.c_void_p, C.c_int, C.c_int] + [C.c_void_p] * 4
                                   + [C.c_uint64, C.c_float, C.c_void_p, C.c_void_p])
        self._chose_at = C.addressof(self._chose)
        self.text_len = None

    def set_text_len(self, valid):
        _set_text_len(self, self._L.L.sieve_dynplan_set_text_len, valid)

    def launch(self, descs, lse, stream, scale, step, layer):
        """As run(), with q, k, v, o packed at `descs` (see Plan.launch)."""
        st = self._launch(self._p, step, layer, descs, descs + 32, descs + 64, descs + 96, lse, scale,
                          stream, self._chose_at)
        if st:
            raise self._L.error(st, "sieve_dynplan_step")
        self.chose = bool(self._chose.value)

    def run(self, q, k, v, o, lse, stream=0, scale=0.0, step=0, layer=0):
        st = self._step(self._p, step, layer, q, k, v, o, lse, scale, stream, self._chose_ref)
        if st:
            raise self._L.error(st, "sieve_dynplan_step")
        self.chose = bool(self._chose.value)

    @property
    def density(self):
        d = C.c_double()
        self._L.check(self._L.L.sieve_dynplan_density(self._p, C.byref(d)))
        return d.value

    def info(self):
        """Sizes of the choice: a dict of sieve_dynplan_info's fields (kind 1
        a block search, 2 profiling; chosen once one has run)."""
        i = DynPlanInfo()
        self._L.check(self._L.L.sieve_dynplan_info_get(self._p, C.byref(i)))
        return {n: getattr(i, n) for n, _ in i._fields_}

    def blocks(self):
        """A block search's selection (waits for the GPU): (blocks, topk,
        recall) as bytes of B*H*nq*nk 0/1 flags (row-major), B*H ints (each
        head's top-k) and B*H floats (each head's recall at the base
        sparsity from the run's first search, -1 without tiers)."""
        i = self.info()
        bh = i["batch"] * i["heads"]
        blocks = (C.c_uint8 * (bh * i["q_blocks"] * i["k_blocks"]))()
        topk, recall = (C.c_int32 * bh)(), (C.c_double * bh)()
        self._L.check(self._L.L.sieve_dynplan_blocks(self._p, C.cast(blocks, C.c_void_p),
                                                     C.cast(topk, C.c_void_p), C.cast(recall, C.c_void_p)))
        return bytes(blocks), list(topk), list(recall)

    def classes(self):
        """A profiling's last choice: (klass, err, rows, names): B*H class
        indices, B*H*classes errors, the sampled query tokens (model order),
        and the class names."""
        i = self.info()
        bh, nc = i["batch"] * i["heads"], i["classes"]
        klass, err, rows = (C.c_int32 * bh)(), (C.c_double * (bh * nc))(), (C.c_int32 * i["samples"])()
        self._L.check(self._L.L.sieve_dynplan_classes(self._p, C.cast(klass, C.c_void_p),
                                                      C.cast(err, C.c_void_p), C.cast(rows, C.c_void_p)))
        names = [self._L.L.sieve_dynplan_class_name(self._p, c).decode() for c in range(nc)]
        return list(klass), list(err), list(rows), names

    def save_search(self, path):
        """A mask search (sta -p search=true): writes each head's window of
        least error so far to the mask-search file at path, keeping other
        layers' entries already there; sta -p strategy=PATH runs it."""
        self._L.check(self._L.L.sieve_dynplan_save_search(self._p, os.fsencode(path)))

    def __del__(self):
        p = getattr(self, "_p", None)
        if p and p.value:
            self._L.L.sieve_dynplan_free(p)
            self._p = None
