"""Partial blocks by bitmask against by predicate, in one run.

For each irregular mask on one shape (default hunyuan-720p): sieve with every
partial block evaluating its predicate (SIEVE_PARTIAL=predicate: the kernel
before bitmasks), sieve as plans now choose (bitmasks where the predicate
costs more than a bit), sieve's dense kernel and cuDNN's dense SDPA; the two
sieve outputs compared; the visited block area (full + partial blocks over
all, all heads) and the target of issue 10 (1.3 x visited x sieve dense).
frame_window also runs with bitmasks forced, to see where they stop paying.
--flex adds FlexAttention with the mask's predicate as mask_mod: on sieve's
own block mask where every class is in the identity layout (dilated), on
create_block_mask's where one is transposed (radial); its output against
sieve's. Times: triton do_bench medians; TFLOP/s count allowed pairs.

  SIEVE_LIB_DIR=<build> python3 bench/bitmask.py [--shape hunyuan-720p] [--flex] [--out FILE]
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import triton.testing

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sieve_ctypes import Sieve  # noqa: E402

ROOT = os.path.join(HERE, "..")


def bench(fn, sets):
    i = [0]

    def step():
        fn(*sets[i[0] % len(sets)])
        i[0] += 1
    return triton.testing.do_bench(step, warmup=10, rep=60, return_mode="median")


def rel(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


CASES = [  # label, script, params, partial modes (None: as plans choose)
    ("radial", "bench/patterns/radial.lua", {}, ["predicate", None]),
    ("dilated", "bench/patterns/dilated.lua", {}, ["predicate", None]),
    ("dilated b128", "bench/patterns/dilated.lua", {"block": 128}, ["predicate", None]),
    ("frame_window", "patterns/frame_window.lua", {}, [None, "bitmask"]),
]


def visited(sv, pat, shape):
    info, views, heads = sv.tables(pat, shape)
    per = [sum(len(f) + len(p) for f, p in zip(views[t][0], views[t][1])) for t in heads]
    return sum(per) / (len(heads) * info.q_blocks * info.k_blocks), info


def coords_of(shape):
    """Token index -> (t, y, x, is_text) in model order, as sieve has them."""
    hw, W, text = int(shape.height * shape.width), int(shape.width), int(shape.text)
    video, after = int(shape.frames) * hw, bool(shape.text_after)

    def coords(idx):
        j = idx if after else idx - text
        is_text = (j < 0) | (j >= video)
        t = torch.where(is_text, -1, j // hw)
        y = torch.where(is_text, -1, (j % hw) // W)
        x = torch.where(is_text, -1, j % W)
        return t, y, x, is_text
    return coords


def mask_mod_for(label, shape):
    c = coords_of(shape)
    if label.startswith("dilated"):
        def mm(b, h, qi, ki):
            (qt, qy, qx, qs), (kt, ky, kx, ks) = c(qi), c(ki)
            near = ((qt - kt).abs() <= 1) & ((qy - ky).abs() <= 6) & ((qx - kx).abs() <= 6)
            grid = ((ky % 16) == 0) & ((kx % 16) == 0) & ~ks
            return near | grid | qs | ks
        return mm
    if label == "radial":
        def mm(b, h, qi, ki):
            (qt, qy, qx, qs), (kt, ky, kx, ks) = c(qi), c(ki)
            d, dy, dx = (qt - kt).abs(), (qy - ky).abs(), (qx - kx).abs()
            r = torch.where(d <= 1, 16, torch.where(d <= 3, 8, torch.where(d <= 7, 4, torch.where(d <= 15, 2, -1))))
            spatial = ((dy <= r) & (dx <= r)) | (kt == 0)
            rt = torch.where(d <= 3, 2, torch.where(d <= 15, 1, 0))
            temporal = (dy <= rt) & (dx <= rt)
            return torch.where(h % 2 == 0, spatial, temporal) | qs | ks
        return mm
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="hunyuan-720p")
    ap.add_argument("--flex", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated labels")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    sv = Sieve()
    shape = sv.shape(a.shape)
    B, H, S, D = shape.batch, shape.heads, shape.tokens, shape.head_dim
    dt = torch.bfloat16
    sets = [[torch.randn(B, H, S, D, device="cuda", dtype=dt) for _ in range(3)] for _ in range(2)]
    o = torch.empty(B, H, S, D, device="cuda", dtype=dt)
    o2 = torch.empty_like(o)
    lse = torch.empty(B, H, S, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    flops = 4.0 * B * H * S * S * D
    rows = []

    def add(label, kernel, dens, ms, vis=None, err=None, note=""):
        tf = flops * dens / (ms * 1e-3) / 1e12
        rows.append((label, kernel, dens, ms, tf, vis, err, note))
        print("%-13s %-26s dens %.4f %9.3f ms %6.1f TF/s %s %s %s" % (
            label, kernel, dens, ms, tf, "" if vis is None else "visited %.4f" % vis,
            "" if err is None else "err %.1e" % err, note), flush=True)

    dpat = sv.pattern(os.path.join(ROOT, "patterns", "dense.lua"))
    dplan = sv.plan(dpat, shape, 0)
    dense_ms = bench(lambda q, k, v: sv.attention(dplan, q, k, v, o, lse, stream), sets)
    add("dense", "sieve %s" % "/".join(map(str, sv.plan_config(dplan))), 1.0, dense_ms)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        add("dense", "torch-cudnn", 1.0, bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), sets))
    sv.lib.sieve_plan_free(dplan)
    flex_jobs = []
    for label, script, params, modes in CASES:
        if a.only and label not in a.only.split(","):
            continue
        pat = sv.pattern(os.path.join(ROOT, script), **{k: str(v) for k, v in params.items()})
        os.environ.pop("SIEVE_PARTIAL", None)
        vis, info = visited(sv, pat, shape)
        outs = []
        for m in modes:
            if m:
                os.environ["SIEVE_PARTIAL"] = m
            else:
                os.environ.pop("SIEVE_PARTIAL", None)
            t0 = time.time()
            plan = sv.plan(pat, shape, 0)
            made = time.time() - t0
            dens = sv.lib.sieve_plan_density(plan)
            q, k, v = sets[0]
            dst = o if not outs else o2
            ms = bench(lambda q, k, v: sv.attention(plan, q, k, v, dst, lse, stream), sets)
            sv.attention(plan, q, k, v, dst, lse, stream)  # the set compared, after the timing's rotation
            torch.cuda.synchronize()
            err = rel(o2, o) if outs else None
            outs.append(m)
            kern = "sieve %s %s" % ("/".join(map(str, sv.plan_config(plan))), m or "chosen")
            add(label, kern, dens, ms, vis, err,
                "x%.2f dense, target %.1f ms, plan %.1f s" % (dense_ms / ms, 1.3 * vis * dense_ms, made))
            sv.lib.sieve_plan_free(plan)
        os.environ.pop("SIEVE_PARTIAL", None)
        print("%-13s bitmasks %.1f KiB of %.1f MiB tables" % (label, info.bitmask_bytes / 1024, info.bytes / 2**20),
              flush=True)
        if a.flex and mask_mod_for(label, shape):
            flex_jobs.append((label, pat, script, params))
        else:
            sv.lib.sieve_pattern_free(pat)
    if flex_jobs:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
        for label, pat, script, params in flex_jobs:
            mm = mask_mod_for(label, shape)
            try:
                if label == "radial":
                    bm = create_block_mask(mm, 1, H, S, S, device="cuda", BLOCK_SIZE=128, _compile=True)
                    how = "flex own 128-block mask"
                else:
                    from compare import block_mask_from
                    bm = block_mask_from(sv, pat, shape, mm)
                    how = "flex on sieve's blocks"
                q, k, v = sets[0]
                fo = flex(q, k, v, block_mask=bm)
                plan = sv.plan(pat, shape, 0)
                sv.attention(plan, q, k, v, o, lse, stream)
                torch.cuda.synchronize()
                err = rel(o, fo)
                dens = sv.lib.sieve_plan_density(plan)
                sv.lib.sieve_plan_free(plan)
                add(label, how, dens, bench(lambda q, k, v: flex(q, k, v, block_mask=bm), sets), None, err,
                    "err: sieve (chosen) vs flex")
            except Exception as e:  # noqa: BLE001 - report and go on
                print("flex %s: %s" % (label, e), flush=True)
    lines = ["| mask | kernel | density | ms | TFLOP/s (active) | visited block area | ms / sieve dense | "
             "target (1.3 x visited x dense) | rel. diff |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| %s | %s | %.4f | %.2f | %.0f | %s | %.3f | %s | %s |" % (
            r[0], r[1], r[2], r[3], r[4], "" if r[5] is None else "%.4f" % r[5], r[3] / dense_ms,
            "" if r[5] is None else "%.1f" % (1.3 * r[5] * dense_ms), "" if r[6] is None else "%.1e" % r[6]))
    text = "%s, %s, torch %s, %s\n\n" % (time.strftime("%Y-%m-%d"), torch.cuda.get_device_name(), torch.__version__,
                                         a.shape) + "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
