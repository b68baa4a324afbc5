"""lvsa's masks against LVSA's own algorithm, token for token (CPU, torch).

The reference is re-typed from JiusiServe/LongVideoSparseAttention at
c72a36baf742281876245034f0d45301d114daa9, not from sieve (the frame sets
and the processor in tests/ref/lvsa_ref.py, the context below):
  lvsa/parallel.py          install_lvsa_processors (l. 95-131): the window
                            shrink, auto spacing whenever it rotates
  lvsa/lvsa_processor.py    __init__ (offset 0, l. 138-154), set_step
                            (317-331); the text (encoder) keys appended to
                            the global K/V, text queries dense (545-591)
  lvsa/sparse_attention.py  adaptive_window_bounds, expanded_window_bounds,
                            get_window_bounds, compute_auto_kfi,
                            compute_global_indices (40-216), LVSAMetadata.build
                            (window_ctx, global_frame_mask, l. 355-416),
                            lvsa_sdpa (643-700)
  examples/wan_generate.py  the defaults (l. 142-163) and set_step from the
                            step-end callback (l. 408-428, 475)
It builds, for each query frame, the key context lvsa_sdpa concatenates
(global frames, then the frame's window parts, then the text), marks it in
a [S, S] mask in model order, and compares with cg_ref_mask (libsieve) on
small shapes: one ragged with text before the video, others with text
after. The negative controls show the comparison fails where the
reference is changed in the ways this port had it wrong before.
"""
import ctypes as C
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import sieve  # noqa: E402
from sieve._lib import Shape, lib  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "ref"))
from lvsa_ref import Processor, run_to_step  # noqa: E402

pytestmark = pytest.mark.torch


# ------------------------------------------------------ LVSA's K/V context

def lvsa_mask(shape, proc):
    """[S, S] bool in model order: each video frame's queries see the tokens
    of lvsa_sdpa's K/V context (global frames, the window parts, the text
    appended to the global K/V); text queries see every token."""
    T, P, N = shape.frames, shape.height * shape.width, shape.text
    S = N + T * P
    v0 = 0 if shape.text_after else N  # first video token
    t0 = T * P if shape.text_after else 0  # first text token
    text = torch.arange(t0, t0 + N)
    frame = [torch.arange(v0 + f * P, v0 + (f + 1) * P) for f in range(T)]
    glob = torch.cat([frame[g] for g in proc.global_indices] + [text])
    m = torch.zeros(S, S, dtype=torch.bool)
    for f in range(T):
        ctx = torch.cat([glob] + [frame[wf] for wf in proc.window_ctx(f)])
        rows = frame[f]
        m[rows.unsqueeze(1), ctx.unsqueeze(0)] = True
    m[text] = True
    return m


# --------------------------------------------------------------- sieve

class Err(C.Structure):
    _fields_ = [("status", C.c_int), ("msg", C.c_char * 1024)]


def sieve_mask(params, shape, step, layer=0, head=0):
    p = sieve.Pattern("lvsa", **params)
    L = lib().L
    L.lp_pattern_ir.restype = C.c_void_p
    L.lp_pattern_ir.argtypes = [C.c_void_p]
    L.cg_ref_mask.argtypes = [C.c_void_p, C.POINTER(Shape), C.c_int, C.c_int, C.c_int,
                              C.POINTER(C.c_uint8), C.POINTER(C.c_int64), C.POINTER(Err)]
    S = shape.tokens
    buf = (C.c_uint8 * (S * S))()
    e = Err()
    st = L.cg_ref_mask(L.lp_pattern_ir(p._p), C.byref(shape), head, step, layer, buf, None, C.byref(e))
    assert st == 0, e.msg.decode()
    return torch.frombuffer(bytearray(buf), dtype=torch.uint8).view(S, S).bool()


def shape(T, Y, X, text=0, after=False):
    return Shape(1, 1, 64, T, Y, X, text, int(after))


def differ(a, b):
    return int((a != b).sum())


# ---------------------------------------------------------------- cases
#
# (sieve params, Processor keywords, shape, steps). The first three are
# LVSA's examples' defaults (--window-size 12 --n-first-frames 4
# --key-frame-interval 16, no rotation) on Wan-like, ragged-with-text and
# text-after shapes.

CASES = [
    ({}, {}, shape(21, 2, 3), (0, 1, 5)),
    ({}, {}, shape(26, 3, 3, 11), (0, 3)),
    ({}, {}, shape(30, 2, 2, 5, True), (0, 7)),
    ({"window": 2, "first": 2, "interval": 5}, dict(window_size=2, n_first_frames=2, key_frame_interval=5),
     shape(30, 2, 2, 5, True), (0,)),
    ({"expand": False}, dict(expand_window=False), shape(23, 2, 2, 4), (0,)),
    ({"interval": 0}, dict(key_frame_interval=0), shape(19, 2, 2, 3), (0,)),
    # --auto-keyframes (no rotation): the spacing from the training length
    ({"train_frames": 13}, dict(ref_lat_frames=13, auto_keyframes=True), shape(40, 1, 3, 3, True), (0, 4)),
    ({"train_frames": 21, "sparsity_scale": 0.7}, dict(ref_lat_frames=21, auto_keyframes=True, sparsity_scale=0.7),
     shape(45, 1, 2, 6), (0,)),
    # --rotate-keyframes: auto spacing, set_step from the step-end callback
    ({"train_frames": 13, "rotate": True}, dict(ref_lat_frames=13, rotate_keyframes=True),
     shape(40, 1, 3, 3, True), (0, 1, 2, 3, 4, 5, 6, 11)),
    ({"train_frames": 9, "rotate": True}, dict(ref_lat_frames=9, rotate_keyframes=True),
     shape(29, 2, 2, 7), (0, 1, 2, 6, 13)),
    ({"train_frames": 21, "rotate": True}, dict(ref_lat_frames=21, rotate_keyframes=True),
     shape(17, 2, 2), (0, 3)),  # at or below the training length: dense
    # the window shrink: 2W+1+first >= T > train_frames
    ({"train_frames": 6, "window": 5, "first": 2}, dict(ref_lat_frames=6, window_size=5, n_first_frames=2,
                                                        auto_keyframes=True), shape(10, 2, 2, 3), (0,)),
    ({"train_frames": 6, "window": 5, "first": 2, "rotate": True},
     dict(ref_lat_frames=6, window_size=5, n_first_frames=2, rotate_keyframes=True),
     shape(13, 2, 3, 5, True), (0, 1, 2, 4)),
    ({"train_frames": 6, "window": 5, "first": 2}, dict(ref_lat_frames=6, window_size=5, n_first_frames=2,
                                                        auto_keyframes=True), shape(14, 2, 2), (0,)),  # no shrink: T > 13
    ({"train_frames": 7, "window": 0, "first": 9}, dict(ref_lat_frames=7, window_size=0, n_first_frames=9,
                                                        auto_keyframes=True), shape(9, 2, 2, 2), (0,)),
    ({"train_frames": 7, "window": 0, "first": 9}, dict(ref_lat_frames=7, window_size=0, n_first_frames=9,
                                                        auto_keyframes=True), shape(11, 2, 2, 2), (0,)),
]


def case_id(c):
    params, _, s, _ = c
    p = ",".join("%s=%s" % kv for kv in params.items()) or "defaults"
    return "%s-T%dY%dX%d+%d%s" % (p, s.frames, s.height, s.width, s.text, "a" if s.text_after else "")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_lvsa_mask_is_lvsa(case):
    params, kw, s, steps = case
    for step in steps:
        proc = run_to_step(Processor(s.frames, **kw), step, kw.get("rotate_keyframes", False))
        want = lvsa_mask(s, proc)
        got = sieve_mask(params, s, step, layer=step % 3)
        assert differ(got, want) == 0, "step %d: %d of %d token pairs differ" % (step, differ(got, want), want.numel())


def test_the_cases_cover_what_they_claim():
    # Rotation moves the anchors, the shrink happens, and a sparse mask is sparse.
    p = Processor(40, ref_lat_frames=13, rotate_keyframes=True)
    assert p.key_frame_interval > 2
    assert Processor(10, window_size=5, n_first_frames=2, ref_lat_frames=6).W == 3
    assert Processor(14, window_size=5, n_first_frames=2, ref_lat_frames=6).W == 5
    assert Processor(9, window_size=0, n_first_frames=9, ref_lat_frames=7).W == 3
    d = lvsa_mask(shape(21, 2, 3), Processor(21)).float().mean().item()
    assert 0.3 < d < 0.8


def test_defaults_are_lvsa_examples():
    # examples/wan_generate.py: --window-size 12, --n-first-frames 4,
    # --key-frame-interval 16 video frames, no --rotate-keyframes; VAE stride 4.
    s = shape(21, 2, 3)
    want = lvsa_mask(s, Processor(21, window_size=12 // 4, n_first_frames=4 // 4, key_frame_interval=16 // 4))
    for step in (0, 9):
        assert differ(sieve_mask({}, s, step), want) == 0


def test_rotate_needs_train_frames():
    with pytest.raises(ValueError, match=r"param 'rotate' needs train_frames"):
        sieve.Pattern("lvsa", rotate=True)
    with pytest.raises(ValueError, match=r"param 'rotate_fixed'"):
        sieve.Pattern("lvsa", rotate_fixed=True, train_frames=21)


def test_sieve_rotation_over_a_fixed_interval():
    # sieve's own (rotate_fixed): LVSA's frame sets, offset step % interval.
    s = shape(26, 2, 2, 3)
    for step in (0, 1, 2, 5):
        proc = Processor(26)
        proc._build(step % 4)
        assert differ(sieve_mask({"rotate_fixed": True}, s, step), lvsa_mask(s, proc)) == 0


# ------------------------------------------------------- negative controls

def test_negative_control_step_offset():
    # set_step before the step's attention (step s on s's offset) is not LVSA.
    s, kw = shape(40, 1, 3, 3, True), dict(ref_lat_frames=13, rotate_keyframes=True)
    params = {"train_frames": 13, "rotate": True}
    for step in (2, 3):
        wrong = lvsa_mask(s, run_to_step(Processor(40, **kw), step, True, callback=False))
        assert differ(sieve_mask(params, s, step), wrong) > 0


def test_negative_control_shrink():
    s = shape(10, 2, 2, 3)
    wrong = lvsa_mask(s, Processor(10, window_size=5, n_first_frames=2, ref_lat_frames=6, auto_keyframes=True,
                                   shrink=False))
    assert differ(sieve_mask({"train_frames": 6, "window": 5, "first": 2}, s, 0), wrong) > 0


def test_negative_control_one_token_pair():
    s = shape(26, 3, 3, 11)
    got = sieve_mask({}, s, 0)
    want = lvsa_mask(s, Processor(26))
    want[40, 100] = ~want[40, 100]
    assert differ(got, want) == 1


def test_lvsa_sdpa_equals_sieve_masked_attention():
    # lvsa_sdpa's per-frame attention over its concatenated context (float64)
    # is dense attention under sieve's mask: no key counted twice or missed.
    s = shape(13, 2, 3, 5, True)
    proc = run_to_step(Processor(13, window_size=5, n_first_frames=2, ref_lat_frames=6, rotate_keyframes=True),
                       3, True)
    T, P, N = s.frames, s.height * s.width, s.text
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(s.tokens, 16, generator=g, dtype=torch.float64) for _ in range(3))
    video = torch.arange(0, T * P)  # text after the video
    text = torch.arange(T * P, T * P + N)
    glob = torch.cat([video[gf * P:(gf + 1) * P] for gf in proc.global_indices] + [text])
    out = torch.empty_like(q)
    for f in range(T):
        ctx = torch.cat([glob] + [video[wf * P:(wf + 1) * P] for wf in proc.window_ctx(f)])
        rows = video[f * P:(f + 1) * P]
        out[rows] = torch.softmax(q[rows] @ k[ctx].T / 4.0, -1) @ v[ctx]
    out[text] = torch.softmax(q[text] @ k.T / 4.0, -1) @ v
    m = sieve_mask({"train_frames": 6, "window": 5, "first": 2, "rotate": True}, s, 3)
    ref = torch.softmax((q @ k.T / 4.0).masked_fill(~m, float("-inf")), -1) @ v
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)
