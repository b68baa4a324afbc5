#!/usr/bin/env python3
"""sieve's static masks against the originals' algorithms, token for token.

Each reference below is written from the original method's code (cited per
function), not from sieve: it builds the original's mask in the original's
token order, maps it to model order (text before or after the video, as the
shape says), and the script compares it with the mask sieve's pattern gives
(cg_ref_mask through libsieve), for several shapes, one of them ragged
(blocks of 128 do not divide it) and with text, and several steps.

Plain python3 (no numpy, no torch): the shapes are small enough.
Usage: check_masks.py BUILD_DIR [SOURCE_DIR]; exit 0 when every mask matches.
"""
import ctypes as C
import math
import os
import sys

from lvsa_ref import Processor, run_to_step


class Shape(C.Structure):
    _fields_ = [(n, C.c_int) for n in (
        "batch", "heads", "head_dim", "frames", "height", "width", "text", "text_after")]


class Err(C.Structure):
    _fields_ = [("status", C.c_int), ("msg", C.c_char * 1024)]


class Lib:
    def __init__(self, build, source):
        self.src = source
        self.L = L = C.CDLL(os.path.join(build, "libsieve.so"))
        P = C.c_void_p
        L.sieve_open.argtypes = [C.POINTER(P)]
        L.sieve_errmsg.restype = C.c_char_p
        L.sieve_errmsg.argtypes = [P]
        L.sieve_pattern_load.argtypes = [P, C.c_char_p, C.POINTER(C.c_char_p), C.POINTER(P)]
        L.sieve_pattern_free.argtypes = [P]
        L.lp_pattern_ir.restype = P
        L.lp_pattern_ir.argtypes = [P]
        L.cg_ref_mask.argtypes = [P, C.POINTER(Shape), C.c_int, C.c_int, C.c_int,
                                  C.POINTER(C.c_uint8), C.POINTER(C.c_int64), C.POINTER(Err)]
        L.cg_ref_profile_mask.argtypes = L.cg_ref_mask.argtypes
        self.ctx = P()
        if L.sieve_open(C.byref(self.ctx)):
            raise RuntimeError("sieve_open failed")

    def mask(self, pattern, params, shape, head, step, layer=0, profiled=False):
        """Rows of sieve's mask in model order: a list of bytes, one per query;
        profiled: the mask class `head` is profiled under instead."""
        path = os.path.join(self.src, "patterns", pattern + ".lua").encode()
        ov = (C.c_char_p * (len(params) + 1))(*[p.encode() for p in params], None)
        p = C.c_void_p()
        if self.L.sieve_pattern_load(self.ctx, path, ov, C.byref(p)):
            raise RuntimeError(self.L.sieve_errmsg(self.ctx).decode())
        S = shape.text + shape.frames * shape.height * shape.width
        m = (C.c_uint8 * (S * S))()
        e = Err()
        fn = self.L.cg_ref_profile_mask if profiled else self.L.cg_ref_mask
        st = fn(self.L.lp_pattern_ir(p), C.byref(shape), head, step, layer, m, None, C.byref(e))
        self.L.sieve_pattern_free(p)
        if st:
            raise RuntimeError(e.msg.decode())
        raw = bytes(m)
        return [raw[i * S:(i + 1) * S] for i in range(S)]


def model_order(shape):
    """(t, y, x) of every video token in model order, None for text."""
    T, Y, X, N = shape.frames, shape.height, shape.width, shape.text
    video = [(t, y, x) for t in range(T) for y in range(Y) for x in range(X)]
    return video + [None] * N if shape.text_after else [None] * N + video


def rows_of(shape, allowed):
    """Rows in model order from allowed(q, k) over model-order tokens."""
    toks = model_order(shape)
    return [bytes(1 if allowed(q, k) else 0 for k in toks) for q in toks]


# ---------------------------------------------------------------- LVSA
# JiusiServe/LongVideoSparseAttention c72a36baf742281876245034f0d45301d114daa9:
# the frame sets and the processor, re-typed in lvsa_ref.py.

def lvsa_rows(shape, step, W=3, nf=1, kfi=4, rotate=False, expand=True, train=0):
    """Every frame's queries see the globals and their window (lvsa_sdpa);
    text (encoder) keys are global and text queries dense (lvsa_processor).
    lvsa/parallel.py install_lvsa_processors: the window shrink where the
    window covers a video longer than the training length, and auto spacing
    whenever it rotates; the examples call set_step(i) after step i."""
    proc = Processor(shape.frames, W, nf, kfi, ref_lat_frames=train, rotate_keyframes=rotate,
                     auto_keyframes=bool(train), expand_window=expand)
    run_to_step(proc, step, rotate)
    g = proc.global_set
    seen = {f: g | set(proc.window_ctx(f)) for f in range(shape.frames)}

    def allowed(q, k):
        if q is None or k is None:
            return True
        return k[0] in seen[q[0]]
    return rows_of(shape, allowed)


# ----------------------------------------------------------------- SVG
# svg-project/Sparse-VideoGen 5ce7b0127c0d44383ee8b9e5512431feb625f621:
# svg/models/hyvideo/utils.py (sparsity_to_width, generate_temporal_head_mask_mod),
# svg/models/hyvideo/placement.py (temporal heads: token patch * num_frame + frame),
# svg/models/wan/utils.py (Wan: ceil to 128, <=, the first frame_size keys).

def svg_width_frames(sparsity, context_length, num_frame, frame_size):
    seq_len = context_length + num_frame * frame_size
    total = seq_len ** 2
    sparsity = (sparsity * total - 2 * seq_len * context_length) / total
    width = seq_len * (1 - math.sqrt(1 - sparsity))
    return width / frame_size


def svg_index(shape, tok, temporal):
    """The token's index in SVG's sequence: video first, then the text."""
    T, F = shape.frames, shape.height * shape.width
    t, y, x = tok
    patch = y * shape.width + x
    return patch * T + t if temporal else t * F + patch


def svg_rows(shape, temporal, budget, wan=False):
    T, F, N = shape.frames, shape.height * shape.width, shape.text
    mul = svg_width_frames(budget, N, T, F)
    if wan:
        band = math.ceil(mul * F / 128) * 128
    else:
        band = math.floor(mul * F / 128) * 128
    video = T * F

    def allowed(q, k):
        if q is None or k is None:
            return True  # text rows and columns (all of the text is the prompt)
        qi, ki = svg_index(shape, q, temporal), svg_index(shape, k, temporal)
        if wan:
            return abs(qi - ki) <= band or ki < F
        return abs(qi - ki) < band
    del video
    return rows_of(shape, allowed)


# svg/models/hyvideo/utils.py get_attention_mask (1a384ee): the masks SVG
# profiles a head under, blocks of 128 video tokens in SVG's order within
# (F * 1.5) // 128 blocks, the temporal one by the reshape-permute to the
# position-major order, text rows and columns 1; svg/models/wan/utils.py
# (3ffe25f): (F * 2) // 128 blocks and the first F columns ("First Frame Sink").

def svg_profile_rows(shape, temporal, wan=False):
    F = shape.height * shape.width
    thr = (F * 2 if wan else math.floor(F * 1.5)) // 128

    def allowed(q, k):
        if q is None or k is None:
            return True
        qi, ki = svg_index(shape, q, temporal), svg_index(shape, k, temporal)
        if wan and ki < F:
            return True
        return abs(qi // 128 - ki // 128) < thr
    return rows_of(shape, allowed)


# ----------------------------------------------------------------- STA
# hao-ai-lab/FastVideo 2f3d4074064e4d86f99dc784ebbaa296e6f5925f,
# fastvideo-kernel/tests/support_flex_sta.py, generate_sta_mask: the kernel
# centre clamped to (kernel // 2, tiles - 1 - kernel // 2) on each axis.

def sta_rows(shape, kernel, tile):
    canvas = (shape.frames, shape.height, shape.width)
    tiles = [c // s for c, s in zip(canvas, tile)]

    def allowed(q, k):
        if q is None or k is None:
            return True  # image to text, text to all
        for a in range(3):
            qt, kt, half = q[a] // tile[a], k[a] // tile[a], kernel[a] // 2
            centre = min(max(qt, half), (tiles[a] - 1) - half)  # torch clamp
            if abs(centre - kt) > half:
                return False
        return True
    return rows_of(shape, allowed)


# ------------------------------------------------------------------ runs

def shape(T, Y, X, text, after):
    return Shape(1, 2, 64, T, Y, X, text, after)


def compare(name, got, want):
    bad = [(i, j) for i, (g, w) in enumerate(zip(got, want)) if g != w
           for j in range(len(g)) if g[j] != w[j]]
    pairs = sum(len(r) for r in want)
    if bad:
        q, k = bad[0]
        print(f"FAIL {name}: {len(bad)} of {pairs} token pairs differ, first (q {q}, k {k}): "
              f"sieve {got[q][k]}, reference {want[q][k]}")
        return False
    print(f"ok   {name}: {pairs} token pairs, density {sum(map(sum, want)) / pairs:.4f}")
    return True


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    source = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..")
    lib = Lib(build, source)
    ok = True
    # LVSA: its examples' defaults (no rotation) on 21 frames as Wan, 26
    # frames ragged with text before; auto spacing (dense at or below the
    # training length); the rotation with train_frames over a few steps
    # (step s on step s-1's offset); the window shrink; the window near both
    # ends.
    lvsa_cases = [
        (shape(21, 2, 3, 0, 0), [], {}),
        (shape(26, 3, 3, 11, 0), [], {}),
        (shape(30, 2, 2, 5, 1), ["window=2", "first=2", "interval=5"], dict(W=2, nf=2, kfi=5)),
        (shape(40, 1, 3, 3, 1), ["train_frames=21"], dict(train=21)),
        (shape(40, 1, 3, 3, 1), ["train_frames=13", "rotate=true"], dict(train=13, rotate=True)),
        (shape(17, 2, 2, 0, 0), ["train_frames=21", "rotate=true"], dict(train=21, rotate=True)),
        (shape(13, 2, 3, 5, 1), ["train_frames=6", "window=5", "first=2", "rotate=true"],
         dict(train=6, W=5, nf=2, rotate=True)),
        (shape(23, 2, 2, 4, 0), ["expand=false"], dict(expand=False)),
    ]
    # SVG: HunyuanVideo (text after), CogVideoX-like (text before), ragged, Wan.
    svg_cases = [
        (shape(6, 12, 20, 64, 1), ["budget=0.25"], 0.25, False),
        (shape(5, 15, 22, 40, 0), ["model=cogvideox", "budget=0.3"], 0.3, False),
        (shape(7, 9, 11, 37, 1), ["budget=0.6"], 0.6, False),
        (shape(8, 10, 16, 0, 0), ["model=wan"], 0.3, True),
    ]
    for s, params, budget, wan in svg_cases:
        for head, temporal in ((0, False), (1, True)):
            name = f"svg {' '.join(params)} {'temporal' if temporal else 'spatial'} T{s.frames}Y{s.height}X{s.width}+{s.text}"
            ok &= compare(name, lib.mask("svg", params, s, head, 20, 10), svg_rows(s, temporal, budget, wan))
    # SVG's profiling masks (hunyuan, wan); CogVideoX's are files SVG does not
    # ship, so sieve profiles the attention's bands there.
    prof_cases = [
        (shape(6, 12, 20, 64, 1), [], "hunyuan"),
        (shape(7, 9, 11, 37, 1), [], "hunyuan"),
        (shape(8, 10, 16, 0, 0), ["model=wan"], "wan"),
        (shape(5, 15, 22, 40, 0), ["model=cogvideox"], "cogvideox"),
    ]
    for s, params, model in prof_cases:
        for cls, temporal in ((0, False), (1, True)):
            name = f"svg profiling {model} {'temporal' if temporal else 'spatial'} T{s.frames}Y{s.height}X{s.width}+{s.text}"
            want = (svg_rows(s, temporal, 0.25) if model == "cogvideox" else
                    svg_profile_rows(s, temporal, wan=model == "wan"))
            ok &= compare(name, lib.mask("svg", params, s, cls, 20, 10, profiled=True), want)
    # STA: tiles dividing the grid (as STA requires), small tiles to keep it quick.
    sta_cases = [
        (shape(6, 8, 8, 0, 0), (2, 2, 2), (3, 3, 3)),
        (shape(8, 6, 9, 13, 1), (2, 3, 3), (3, 3, 3)),
        (shape(9, 6, 10, 7, 0), (3, 2, 2), (1, 3, 5)),
    ]
    for s, tile, kernel in sta_cases:
        params = [f"tile_t={tile[0]}", f"tile_y={tile[1]}", f"tile_x={tile[2]}",
                  f"win_t={kernel[0] // 2}", f"win_y={kernel[1] // 2}", f"win_x={kernel[2] // 2}"]
        name = f"sta tile {tile} kernel {kernel} T{s.frames}Y{s.height}X{s.width}+{s.text}"
        ok &= compare(name, lib.mask("sta", params, s, 0, 20), sta_rows(s, kernel, tile))
    # STA's mask-search candidates (kernel sizes in tiles, even ones too, as
    # in "3,1,10"): one candidate at a time, so head 0 is in its class.
    cand_cases = [
        (shape(6, 8, 8, 5, 1), (2, 2, 2), (1, 4, 3)),
        (shape(8, 6, 9, 0, 0), (2, 3, 3), (2, 1, 3)),
        (shape(12, 8, 10, 9, 0), (2, 2, 2), (3, 6, 10)),  # y's kernel covers more than the grid's 4 tiles
    ]
    for s, tile, kernel in cand_cases:
        params = [f"tile_t={tile[0]}", f"tile_y={tile[1]}", f"tile_x={tile[2]}", "search=true",
                  "candidates=%d,%d,%d" % kernel]
        name = f"sta search candidate {kernel} tile {tile} T{s.frames}Y{s.height}X{s.width}+{s.text}"
        ok &= compare(name, lib.mask("sta", params, s, 0, 20), sta_rows(s, kernel, tile))
    print("all masks match their references" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
