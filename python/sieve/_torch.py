"""The torch layer: per-layer attention state, the plan cache and the eager
launch path. The custom op (_ops.py) calls into the same state, so eager
calls, torch.compile graphs and CUDA graphs run one code path.
"""
import ctypes as C
import itertools
import struct
import threading

import torch

from . import _checks, _ops, core
from ._lib import Tensor

_DT = {torch.bfloat16: core.BF16, torch.float16: core.FP16}
_pack = struct.Struct("<" + "Qqqq" * 4).pack_into  # q, k, v, o as four sieve_tensors
assert C.sizeof(Tensor) == 32

# Static plans are shared by every layer: (pattern hash, shape, dtype, device).
_plans = {}
_plans_lock = threading.Lock()

_ids = itertools.count(1)  # state ids, the custom op's handle (_ops._states)

try:
    _raw_stream = torch._C._cuda_getCurrentRawStream  # ~0.2 us, against ~3 us for current_stream()
except AttributeError:  # pragma: no cover
    def _raw_stream(dev):
        return torch.cuda.current_stream(dev).cuda_stream


def _static_plan(pattern, shape, dtype, device):
    key = (pattern.hash, shape.astuple(), dtype, device)
    p = _plans.get(key)
    if p is None:
        with _plans_lock:
            p = _plans.get(key)
            if p is None:
                p = _plans[key] = core.Plan(pattern, shape, dtype)
    return p


def clear_plan_cache():
    """Drops cached static plans (their GPU memory goes once no state holds them)."""
    _plans.clear()


class Clock:
    """Where a state's denoising step comes from. `step` None: each state
    counts its own calls, `calls_per_step` to a step (2 when a pipeline runs
    the conditional and unconditional passes as separate calls). Set `step`
    to drive every state sharing the clock explicitly."""

    def __init__(self, calls_per_step=1):
        self.step = None
        self.calls_per_step = calls_per_step
        self.epoch = 0

    def reset(self):
        """A new video: states count again from step 0."""
        self.step = None
        self.epoch += 1


class _Bound:
    """What one (shape, dtype, device) of a state needs at launch time."""
    __slots__ = ("plan", "lse", "dev", "B", "H", "S", "D", "shape", "o_strides")


class Geometry:
    """A fixed token geometry: the latent grid (frames, height, width) after
    patchify, or None for the pattern script's own, and the text tokens,
    before the video or after it."""

    def __init__(self, grid=None, text=0, text_after=False):
        if grid is not None and (len(grid) != 3 or any(int(g) <= 0 for g in grid)):
            raise ValueError("grid must be (frames, height, width), all positive, got %r" % (grid,))
        self.grid = tuple(int(g) for g in grid) if grid is not None else None
        self.text, self.text_after = int(text), bool(text_after)
        if self.text < 0:
            raise ValueError("text must not be negative, got %d" % self.text)
        self._entry = (self.grid, self.text, self.text_after)
        self.text_len = None

    def lookup(self, tokens):
        return self._entry


class Attention:
    """Sparse attention for one layer: holds the plan, or the dynamic plan
    whose choice (AdaSpa's search, SVG's profiling) carries across steps.

    grid: (frames, height, width) of the latent tokens after patchify; None
    takes the pattern script's geometry. text: text tokens in the sequence,
    before the video (text_after False) or after it. geometry: instead of
    those three, an object whose lookup(tokens) gives them per sequence
    length (sieve.diffusers notes each forward's). layout: 'bhsd' or 'bshd'
    for q, k, v and the output.

    head_offset, q_offset and k_offset place this call inside a larger
    attention (sequence-parallel ranks). head_offset h0: head i here is
    the pattern's head h0 + i (a Ulysses rank's heads keep the class of
    their global index; sieve.parallel.heads_pattern). Token offsets are
    not in the kernel yet: only 0."""

    def __init__(self, pattern, grid=None, text=0, text_after=False, layout="bhsd", layer=0,
                 scale=None, clock=None, geometry=None, head_offset=0, q_offset=0, k_offset=0):
        if not isinstance(pattern, core.Pattern):
            pattern = core.Pattern(pattern)
        for name, val in (("q_offset", q_offset), ("k_offset", k_offset)):
            if val:
                raise NotImplementedError("%s=%d: the kernel reads query and key positions from 0 "
                                          "so far (sieve.parallel runs ring chunks on the CPU "
                                          "reference only)" % (name, val))
        if head_offset:
            from .parallel import heads_pattern
            pattern = heads_pattern(pattern, int(head_offset))
        self.pattern = pattern
        self.geometry = geometry if geometry is not None else Geometry(grid, text, text_after)
        self.layout = _checks.layout_arg(layout)
        self.layer = int(layer)
        self.scale = float(scale) if scale else 0.0
        self.clock = clock if clock is not None else Clock()
        self.head_offset, self.q_offset, self.k_offset = head_offset, q_offset, k_offset
        self.calls = 0
        self._epoch = self.clock.epoch
        self._bound = {}
        self._last = None
        self._descs = (Tensor * 4)()
        self._descs_at = C.addressof(self._descs)
        self.last_step = None
        self.id = next(_ids)
        _ops._states[self.id] = self

    # ---------------------------------------------------------- geometry

    def shape_for(self, B, H, S, D):
        """The sieve shape for a [B, H, S, D] call; ValueError if S disagrees."""
        grid, text, after = self.geometry.lookup(S)
        g = grid or (0, 0, 0)
        s = self.pattern.shape(B, H, D, g[0], g[1], g[2], text, after)
        if not s.frames:
            raise ValueError("grid: pattern %s declares no geometry; pass grid=(frames, height, width)"
                             % self.pattern.name)
        if s.tokens != S:
            raise ValueError("q: sequence length %d, but the geometry has %d tokens (text %d + %d x %d x %d frames)"
                             % (S, s.tokens, s.text, s.frames, s.height, s.width))
        return s

    @staticmethod
    def text_lens(shape, text_len):
        """text_len (one int, or one per batch element) as the plan takes
        it: a tuple, or None for the whole text."""
        if text_len is None:
            return None
        if isinstance(text_len, int):
            vals = (text_len,) * shape.batch
        else:
            vals = tuple(int(t) for t in text_len)
        if len(vals) != shape.batch:
            raise ValueError("text_len: %d lengths for a batch of %d" % (len(vals), shape.batch))
        if any(t < 0 or t > shape.text for t in vals):
            raise ValueError("text_len=%s: each length must be in 0..%d, the text tokens in the sequence"
                             % (text_len, shape.text))
        return None if all(t == shape.text for t in vals) else vals

    def _bind(self, q):
        B, H, S, D = _checks.dims(q, self.layout)
        grid = self.geometry.lookup(S)
        key = (B, H, S, D, q.dtype, q.device, grid)
        b = self._bound.get(key)
        if b is None:
            b = _Bound()
            b.B, b.H, b.S, b.D = B, H, S, D
            b.shape = self.shape_for(B, H, S, D)
            # O is contiguous in the caller's layout; its (b, h, s) strides.
            b.o_strides = (H * S * D, S * D, D) if self.layout == "bhsd" else (S * H * D, D, H * D)
            b.dev = q.device.index if q.device.index is not None else torch.cuda.current_device()
            with torch.cuda.device(b.dev):
                torch.cuda.current_stream()  # CUDA initialised: its context is current
                if self.pattern.dynamic:
                    b.plan = core.DynPlan(self.pattern, b.shape, _DT[q.dtype])
                else:
                    b.plan = _static_plan(self.pattern, b.shape, _DT[q.dtype], b.dev)
                # The kernel always writes the LSE: a buffer of the state's
                # own takes it when the caller does not ask for it.
                b.lse = _checks.new_lse(B, H, S, q.device)
            self._bound[key] = b
        return b

    # --------------------------------------------------------------- run

    def _step(self, step):
        if step is not None:
            return step
        c = self.clock
        if c.step is not None:
            return c.step
        if self._epoch != c.epoch:
            self._epoch, self.calls = c.epoch, 0
        return self.calls // c.calls_per_step

    def _desc(self, x):
        st = x.stride()
        if self.layout == "bhsd":
            return Tensor(x.data_ptr(), st[0], st[1], st[2])
        return Tensor(x.data_ptr(), st[0], st[2], st[1])

    def _validate(self, q, k, v, sig):
        """The full checks, once per new signature of (q, k, v)."""
        B, H, S, D = _checks.inputs(q, k, v, self.layout)
        b = self._bind(q)
        self._last = (sig, b, self.geometry.lookup(S))
        return b

    def run(self, q, k, v, step=None, text_len=None, return_lse=False):
        """The eager launch: checks, then one kernel (or a dynamic step) on
        torch's current stream. Allocates only O (and the LSE if asked for).

        Every call costs its microseconds here (the budget is 20 per call):
        the checks run in full only when shapes, strides, dtypes or devices
        change, and the four tensor descriptors are packed into one buffer
        that the C call reads."""
        qs, ks, vs = q.stride(), k.stride(), v.stride()
        shape = q.shape
        sig = (shape, k.shape, v.shape, qs, ks, vs, q.dtype, k.dtype, v.dtype, q.device, k.device, v.device)
        last = self._last
        if (last is None or last[0] != sig
                or last[2] is not self.geometry.lookup(shape[2] if self.layout == "bhsd" else shape[1])):
            b = self._validate(q, k, v, sig)
        else:
            b = last[1]
        if text_len is None:
            text_len = self.geometry.text_len  # the prompt's, where a model hook read it
        if text_len is not None or b.plan.text_len is not None:
            tl = self.text_lens(b.shape, text_len)
            if tl != b.plan.text_len:  # plans are shared: each call says its own
                b.plan.set_text_len(tl)
        if step is None:
            step = self._step(None)
        self.calls += 1
        self.last_step = step
        o = torch.empty_like(q, memory_format=torch.contiguous_format)
        if self.layout == "bhsd":
            _pack(self._descs, 0, q.data_ptr(), qs[0], qs[1], qs[2], k.data_ptr(), ks[0], ks[1], ks[2],
                  v.data_ptr(), vs[0], vs[1], vs[2], o.data_ptr(), *b.o_strides)
        else:
            _pack(self._descs, 0, q.data_ptr(), qs[0], qs[2], qs[1], k.data_ptr(), ks[0], ks[2], ks[1],
                  v.data_ptr(), vs[0], vs[2], vs[1], o.data_ptr(), *b.o_strides)
        lse = _checks.new_lse(b.B, b.H, b.S, q.device) if return_lse else b.lse
        b.plan.launch(self._descs_at, lse.data_ptr(), _raw_stream(b.dev), self.scale, step, self.layer)
        return o, (lse if return_lse else None)

    def __call__(self, q, k, v, step=None, text_len=None, return_lse=False):
        if torch.compiler.is_compiling() or q.is_meta:
            return _ops.call(self.id, q, k, v, step, text_len, return_lse)
        o, lse = self.run(q, k, v, step, text_len, return_lse)
        return (o, lse) if return_lse else o

    @property
    def density(self):
        """Fraction of the attention the last plan computes (dynamic: waits for the GPU)."""
        if self._last is None:
            return None
        return self._last[1].plan.density

    @property
    def chose(self):
        """Dynamic plans: whether the last step searched or profiled."""
        return bool(self._last and getattr(self._last[1].plan, "chose", False))

    def __repr__(self):
        return "sieve.Attention(%r, layer=%d, grid=%r, text=%d%s, layout=%r)" % (
            self.pattern, self.layer, self.grid, self.text, " after" if self.text_after else "", self.layout)


# The functional API keeps one state per (pattern, layer, geometry, layout).
_functional = {}


def _state_for(pattern, layer, grid, text, text_after, layout):
    if not isinstance(pattern, core.Pattern):
        raise ValueError("pattern must be a sieve.Pattern, got %s" % type(pattern).__name__)
    key = (pattern.hash, layer, tuple(grid) if grid is not None else None, text, text_after, layout)
    st = _functional.get(key)
    if st is None:
        st = _functional[key] = Attention(pattern, grid, text, text_after, layout, layer)
    return st


try:  # torch.compile calls this at trace time and keeps the int
    _state_id_for = torch._dynamo.assume_constant_result(
        lambda *a: _state_for(*a).id)
except AttributeError:  # pragma: no cover
    def _state_id_for(*a):
        return _state_for(*a).id


def attention(q, k, v, pattern, step=0, layer=0, text_len=None, return_lse=False, *,
              grid=None, text=0, text_after=False, layout="bhsd"):
    """Sparse attention of q, k, v under `pattern` at (step, layer).

    q, k, v: [B, H, S, D] (layout='bhsd') or [B, S, H, D] ('bshd') views,
    any strides with the last dim contiguous, bf16 or fp16, on a CUDA device;
    it runs on torch's current stream. Returns O in q's layout, and the
    row LSE [B, H, S] (fp32, natural log) when return_lse."""
    _checks.layout_arg(layout)
    if torch.compiler.is_compiling() or q.is_meta:
        sid = _state_id_for(pattern, layer, grid, text, text_after, layout)
        return _ops.call(sid, q, k, v, step, text_len, return_lse)
    st = _state_for(pattern, layer, grid, text, text_after, layout)
    o, lse = st.run(q, k, v, step, text_len, return_lse)
    return (o, lse) if return_lse else o

