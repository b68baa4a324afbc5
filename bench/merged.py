"""64-token query blocks, merged into the warp-specialised kernel's rows, in one run.

For radial and dilated (bench/patterns, 64-token blocks) on one shape (default
hunyuan-720p): the 4-warp kernel of 64 rows that plans took before
(SIEVE_MERGE_ROWS=0), the merged default (three 64-token query blocks a CTA:
tables at 192-token query blocks, 192/64/16/2, bitmask reads a step ahead),
the same with the reads at the step (SIEVE_BITS_AHEAD=0), two merged
(128/64/12/2) and deeper rings (explicit configs);
sieve's dense kernel and cuDNN's dense SDPA beside them, and FlexAttention with
the mask's predicate as mask_mod (--flex). Every output is compared with the
4-warp kernel's. "visited" is the block area at the pattern's 64-token blocks
(what issue 10's target counts); "merged 2" and "merged 3" the areas of
tables at 128- and 192-token query blocks (each key block the union of two or
three 64-token query blocks').

  SIEVE_LIB_DIR=<build> python3 bench/merged.py [--shape hunyuan-720p] [--flex | --flex-only] [--out FILE]
  SIEVE_LIB_DIR=<build> python3 bench/merged.py --once radial:new   (two launches, for ncu)
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sieve_ctypes import Sieve  # noqa: E402
from bitmask import bench, rel, mask_mod_for  # noqa: E402

ROOT = os.path.join(HERE, "..")

MASKS = [("radial", "bench/patterns/radial.lua"), ("dilated", "bench/patterns/dilated.lua")]

# label, environment, config (None: the plan's default)
KERNELS = [
    ("old", {"SIEVE_MERGE_ROWS": "0"}, None),
    ("new", {}, None),
    ("new, reads at the step", {"SIEVE_BITS_AHEAD": "0"}, None),
    ("new, two merged", {}, (128, 64, 12, 2)),
    ("new, two merged, 3 stages", {}, (128, 64, 12, 3)),
    ("new, 3 stages", {}, (192, 64, 16, 3)),
]
ENV_KEYS = ("SIEVE_MERGE_ROWS", "SIEVE_BITS_AHEAD")


def areas(sv, pat, shape):
    """Visited block area at the pattern's blocks, and with its query blocks merged two and three a row."""
    info, views, heads = sv.tables(pat, shape)
    nq, nk = info.q_blocks, info.k_blocks
    per, m2, m3 = {}, {}, {}
    for t in set(heads):
        full, part, _ = views[t]
        rows = [set(full[q]) | set(part[q]) for q in range(nq)]
        per[t] = sum(len(r) for r in rows)
        m2[t] = sum(len(set().union(*rows[q:q + 2])) for q in range(0, nq, 2))
        m3[t] = sum(len(set().union(*rows[q:q + 3])) for q in range(0, nq, 3))
    H = len(heads)
    vis = sum(per[t] for t in heads) / (H * nq * nk)
    mer = (sum(m2[t] for t in heads) / (H * ((nq + 1) // 2) * nk), sum(m3[t] for t in heads) / (H * ((nq + 2) // 3) * nk))
    return vis, mer, info, views, heads


def set_env(env):
    for k in ENV_KEYS:
        os.environ.pop(k, None)
    os.environ.update(env)


def flex_block_mask(views, heads, info, shape, mm):
    """FlexAttention's BlockMask from sieve's 64-token tables (identity layout), one build per distinct table."""
    from torch.nn.attention.flex_attention import BlockMask
    nq, nk, H = info.q_blocks, info.k_blocks, shape.heads
    built = {}
    for t in set(heads):
        full, part, _ = views[t]
        kvn = torch.tensor([len(p) for p in part], dtype=torch.int32)
        fn = torch.tensor([len(f) for f in full], dtype=torch.int32)
        kvi = torch.zeros(nq, nk, dtype=torch.int32)
        fi = torch.zeros(nq, nk, dtype=torch.int32)
        for q in range(nq):
            if part[q]:
                kvi[q, :len(part[q])] = torch.tensor(part[q], dtype=torch.int32)
            if full[q]:
                fi[q, :len(full[q])] = torch.tensor(full[q], dtype=torch.int32)
        built[t] = (kvn, kvi, fn, fi)
    st = [torch.stack([built[heads[h]][i] for h in range(H)])[None].cuda() for i in range(4)]
    S = shape.tokens
    return BlockMask.from_kv_blocks(st[0], st[1], st[2], st[3], BLOCK_SIZE=(info.block_q, info.block_k),
                                    mask_mod=mm, seq_lengths=(S, S))


def once(sv, shape, spec):
    """Two launches of one kernel (spec "mask:label"), for a profiler."""
    name, label = spec.split(":", 1)
    script = dict(MASKS)[name]
    env, cfg = next((e, c) for l, e, c in KERNELS if l == label)
    set_env(env)
    B, H, S, D = shape.batch, shape.heads, shape.tokens, shape.head_dim
    q, k, v = [torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    o = torch.empty_like(q)
    lse = torch.empty(B, H, S, device="cuda", dtype=torch.float32)
    pat = sv.pattern(os.path.join(ROOT, script))
    plan = sv.plan(pat, shape, 0, cfg)
    stream = torch.cuda.current_stream().cuda_stream
    for _ in range(2):
        sv.attention(plan, q, k, v, o, lse, stream)
    torch.cuda.synchronize()
    print("%s %s: %s" % (name, label, "/".join(map(str, sv.plan_config(plan)))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="hunyuan-720p")
    ap.add_argument("--flex", action="store_true")
    ap.add_argument("--flex-only", action="store_true", help="dense and FlexAttention, no sieve kernels")
    ap.add_argument("--once", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    sv = Sieve()
    shape = sv.shape(a.shape)
    if a.once:
        once(sv, shape, a.once)
        return
    B, H, S, D = shape.batch, shape.heads, shape.tokens, shape.head_dim
    dt = torch.bfloat16
    sets = [[torch.randn(B, H, S, D, device="cuda", dtype=dt) for _ in range(3)] for _ in range(2)]
    o_ref = torch.empty(B, H, S, D, device="cuda", dtype=dt)
    o = torch.empty_like(o_ref)
    lse = torch.empty(B, H, S, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    flops = 4.0 * B * H * S * S * D
    rows = []

    def add(mask, kernel, dens, ms, vis=None, mer=None, err=None):
        tf = flops * dens / (ms * 1e-3) / 1e12
        rows.append((mask, kernel, dens, ms, tf, vis, mer, err))
        print("%-8s %-34s dens %.4f %9.3f ms %6.1f TF/s %s %s" % (
            mask, kernel, dens, ms, tf, "" if vis is None else "visited %.4f merged %.4f / %.4f" % (vis, mer[0], mer[1]),
            "" if err is None else "err %.1e" % err), flush=True)

    set_env({})
    dpat = sv.pattern(os.path.join(ROOT, "patterns", "dense.lua"))
    dplan = sv.plan(dpat, shape, 0)
    dense_ms = bench(lambda q, k, v: sv.attention(dplan, q, k, v, o, lse, stream), sets)
    add("dense", "sieve %s" % "/".join(map(str, sv.plan_config(dplan))), 1.0, dense_ms)
    sv.lib.sieve_plan_free(dplan)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        add("dense", "torch cuDNN", 1.0, bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), sets))
    flex_jobs = []
    for name, script in MASKS:
        pat = sv.pattern(os.path.join(ROOT, script))
        vis, mer, info, views, heads = areas(sv, pat, shape)
        for label, env, cfg in ([] if a.flex_only else KERNELS):
            set_env(env)
            try:
                t0 = time.time()
                plan = sv.plan(pat, shape, 0, cfg)
                made = time.time() - t0
            except Exception as e:  # noqa: BLE001 - a refused config is a result
                print("%s %s: %s" % (name, label, e), flush=True)
                continue
            dens = sv.lib.sieve_plan_density(plan)
            dst = o_ref if label == "old" else o
            ms = bench(lambda q, k, v: sv.attention(plan, q, k, v, dst, lse, stream), sets)
            q, k, v = sets[0]
            sv.attention(plan, q, k, v, dst, lse, stream)
            torch.cuda.synchronize()
            err = None if label == "old" else rel(o, o_ref)
            add(name, "sieve %s %s" % ("/".join(map(str, sv.plan_config(plan))), label), dens, ms, vis, mer, err)
            print("  plan %.2f s" % made, flush=True)
            sv.lib.sieve_plan_free(plan)
        set_env({})
        if a.flex_only:  # density over all heads, as plans report it
            dens = sum(views[t][2] for t in heads) / len(heads)
        flex_jobs.append((name, info, views, heads, dens, vis, mer))
        sv.lib.sieve_pattern_free(pat)
    # The reference output of each mask for Flex: the new kernel's on set 0.
    if a.flex or a.flex_only:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
        for name, info, views, heads, dens, vis, mer in reversed(flex_jobs):  # dilated first: sieve's own blocks
            mm = mask_mod_for(name, shape)
            pat = sv.pattern(os.path.join(ROOT, dict(MASKS)[name]))
            plan = sv.plan(pat, shape, 0)
            q, k, v = sets[0]
            sv.attention(plan, q, k, v, o_ref, lse, stream)
            torch.cuda.synchronize()
            sv.lib.sieve_plan_free(plan)
            sv.lib.sieve_pattern_free(pat)
            tries = [("flex, its own 128-token block mask", lambda: create_block_mask(
                mm, 1, H, S, S, device="cuda", BLOCK_SIZE=128, _compile=True), None)]
            if name == "dilated":  # identity layout: sieve's own 64-token tables
                tries.insert(0, ("flex, sieve's 64-token blocks", lambda: flex_block_mask(views, heads, info, shape, mm),
                              {"BLOCK_M": 64, "BLOCK_N": 64}))
            for how, make, kopt in tries:
                try:
                    t0 = time.time()
                    bm = make()
                    fn = (lambda q, k, v: flex(q, k, v, block_mask=bm, kernel_options=kopt)) if kopt else \
                        (lambda q, k, v: flex(q, k, v, block_mask=bm))
                    fo = fn(q, k, v)
                    torch.cuda.synchronize()
                    print("  %s: mask and compile %.1f s" % (how, time.time() - t0), flush=True)
                    add(name, how, dens, bench(fn, sets), vis, mer, rel(fo, o_ref))
                except Exception as e:  # noqa: BLE001 - report and go on
                    print("flex %s %s: %s" % (name, how, str(e)[:400]), flush=True)
    lines = ["| mask | kernel | density | ms | TFLOP/s (active) | visited (64) | merged 2 / 3 | ms / sieve dense | "
             "target ms (1.3 x visited x dense) | ms / target | rel. diff |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        tgt = None if r[5] is None else 1.3 * r[5] * dense_ms
        lines.append("| %s | %s | %.4f | %.2f | %.0f | %s | %s | %.3f | %s | %s | %s |" % (
            r[0], r[1], r[2], r[3], r[4], "" if r[5] is None else "%.4f" % r[5],
            "" if r[6] is None else "%.4f / %.4f" % r[6], r[3] / dense_ms, "" if tgt is None else "%.1f" % tgt,
            "" if tgt is None else "%.3f" % (r[3] / tgt), "" if r[7] is None else "%.1e" % r[7]))
    text = "%s, %s, torch %s, %s\n\n" % (time.strftime("%Y-%m-%d"), torch.cuda.get_device_name(), torch.__version__,
                                         a.shape) + "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
