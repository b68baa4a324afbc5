"""sieve beside FlashAttention-3, torch SDPA (flash, cuDNN) and FlexAttention, in one run.

For each model shape and pattern: sieve's generated kernel, torch's dense
backends, and FlexAttention on sieve's own block mask (same full/partial
blocks, the pattern's predicate as mask_mod). Times are
triton.testing.do_bench medians over rotating input sets; TFLOP/s count
4*B*H*S^2*D*density. Also checks sieve's output against the reference it is
compared with. Usage: python3 bench/compare.py [--shapes a,b] [--out FILE]
    [--old CFG] [--no-flex]
FA3 is the PyPI wheel fa3-fwd 0.0.3 (forward only, [B, S, H, D] inputs),
timed where it imports. --old bm/bn/warps/stages also times sieve at that
config (the kernel the default replaced), same inputs, same run.

One pattern on one shape (what `sieve bench --compare torch` runs):
  python3 bench/compare.py --pattern lvsa --params window=2 --shapes hunyuan-720p
      [--shape-fields heads=24,head_dim=128,...] [--dtype fp16] [--batch 2]
      [--skip-sieve] [--csv FILE]
torch's dense backends always run; FlexAttention runs for the patterns whose
token predicate it has a mask_mod for (frame_window, causal).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import BlockMask, flex_attention
import triton.testing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sieve_ctypes import Sieve  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
flex = torch.compile(flex_attention, dynamic=False)


def load_fa3():
    """fa3-fwd's interface imports `flash_attn_config`; the wheel names it fa3_fwd_config."""
    try:
        import fa3_fwd_config
        sys.modules.setdefault("flash_attn_config", fa3_fwd_config)
        import fa3_fwd_interface
        return fa3_fwd_interface.flash_attn_func
    except Exception as e:  # noqa: BLE001 - any import failure means: not timed
        print("fa3: not available (%s)" % e, flush=True)
        return None


fa3 = load_fa3()


def bench(fn, sets):
    i = [0]

    def step():
        fn(*sets[i[0] % len(sets)])
        i[0] += 1
    return triton.testing.do_bench(step, warmup=25, rep=200, return_mode="median")


def rel(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def run_shape(sv, name, rows, nsets, old=None, use_flex=True):
    shape = sv.shape(name)
    B, H, S, D = 1, shape.heads, shape.tokens, shape.head_dim
    sets = [[torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
            for _ in range(nsets)]
    o = torch.empty(B, H, S, D, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(B, H, S, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    flops = 4.0 * B * H * S * S * D

    def add(pattern, kernel, density, ms, err=None):
        tf = flops * density / (ms * 1e-3) / 1e12
        rows.append((name, pattern, kernel, density, ms, tf, err))
        print("%-14s %-12s %-14s %6.3f %9.3f ms %6.1f TFLOP/s %s" % (
            name, pattern, kernel, density, ms, tf, "" if err is None else "rel.err %.1e" % err), flush=True)

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        ref = F.scaled_dot_product_attention(*sets[0])
        add("dense", "torch-flash", 1.0, bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), sets))
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        add("dense", "torch-cudnn", 1.0, bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), sets))
    if fa3 is not None:
        bshd = [[x.transpose(1, 2).contiguous() for x in st] for st in sets]
        out = fa3(*bshd[0])
        out = out[0] if isinstance(out, tuple) else out
        add("dense", "fa3", 1.0, bench(lambda q, k, v: fa3(q, k, v), bshd), rel(out.transpose(1, 2), ref))
        del bshd, out

    for pname, params, window in (("dense", {}, None), ("frame_window", {"window": 1}, 1),
                                  ("frame_window", {"window": 3}, 3)):
        label = pname if window is None else "frame±%d" % window
        pat = sv.pattern(os.path.join(ROOT, "patterns", pname + ".lua"), **params)
        plan = sv.plan(pat, shape, 0)
        density = sv.lib.sieve_plan_density(plan)
        q, k, v = sets[0]
        o.fill_(float("nan"))
        sv.attention(plan, q, k, v, o, lse, stream)
        torch.cuda.synchronize()
        err = None
        if window is None:
            err = rel(o, ref)
        elif use_flex:
            bm = block_mask_from(sv, pat, shape, mask_mod_for(pname, params, shape))
            fref = flex(q, k, v, block_mask=bm)
            err = rel(o, fref)
            add(label, "flex", density, bench(lambda q, k, v: flex(q, k, v, block_mask=bm), sets))
        add(label, "sieve %s" % "/".join(map(str, sv.plan_config(plan))), density,
            bench(lambda q, k, v: sv.attention(plan, q, k, v, o, lse, stream), sets), err)
        sv.lib.sieve_plan_free(plan)
        if old:
            cfg = tuple(old)
            if shape.head_dim == 64 and cfg[1] == 128 and cfg[2] == 8:
                cfg = (cfg[0], 64, cfg[2], cfg[3])  # the old D = 64 default: 64-key steps
            plan = sv.plan(pat, shape, 0, cfg)
            add(label, "sieve %s" % "/".join(map(str, sv.plan_config(plan))), density,
                bench(lambda q, k, v: sv.attention(plan, q, k, v, o, lse, stream), sets))
            sv.lib.sieve_plan_free(plan)
        sv.lib.sieve_pattern_free(pat)
    del sets
    torch.cuda.empty_cache()


def shape_from_args(sv, name, fields, batch):
    """A preset with `fields` ("heads=24,frames=9") over it; "custom" starts from zeros."""
    from sieve_ctypes import Shape
    shape = Shape(batch, 1, 128, 0, 0, 0, 0, 0) if name == "custom" else sv.shape(name)
    for kv in filter(None, (fields or "").split(",")):
        k, v = kv.split("=", 1)
        setattr(shape, k, int(v))
    shape.batch = batch
    return shape


def frames_of(shape):
    """Token index -> (frame, is_text), as sieve's model coordinates have them."""
    # Plain ints only: torch.compile guards closure values, and a ctypes
    # Structure read inside the traced function is not guarded, so a graph
    # traced for one shape could be reused for another.
    hw, text = int(shape.height * shape.width), int(shape.text)
    video, after = int(shape.frames) * hw, bool(shape.text_after)

    def coords(idx):
        j = idx if after else idx - text
        is_text = (j < 0) | (j >= video)
        return torch.where(is_text, -1, j // hw), is_text
    return coords


def mask_mod_for(pname, params, shape):
    """The pattern's token predicate for FlexAttention, where one is known."""
    text_on = str(params.get("text", "true")).lower() not in ("false", "0")
    if pname == "frame_window":
        w = int(params.get("window", 1))

        def core(tq, tk):
            return (tq - tk).abs() <= w
    elif pname == "causal":
        def core(tq, tk):
            return tk <= tq
    else:
        return None
    coords = frames_of(shape)

    def mask_mod(b, h, qi, ki):
        (tq, xq), (tk, xk) = coords(qi), coords(ki)
        m = core(tq, tk)
        return (m | xq | xk) if text_on else m
    return mask_mod


def block_mask_from(sv, pat, shape, mask_mod):
    """BlockMask from sieve's tables (identity layout) with the given mask_mod."""
    info, views, heads = sv.tables(pat, shape)
    nq, H = info.q_blocks, shape.heads
    kvn = torch.zeros(1, H, nq, dtype=torch.int32)
    kvi = torch.zeros(1, H, nq, info.k_blocks, dtype=torch.int32)
    fn = torch.zeros(1, H, nq, dtype=torch.int32)
    fi = torch.zeros(1, H, nq, info.k_blocks, dtype=torch.int32)
    for h in range(H):
        full, part, _ = views[heads[h]]
        for q in range(nq):
            fn[0, h, q] = len(full[q])
            fi[0, h, q, :len(full[q])] = torch.tensor(full[q], dtype=torch.int32)
            kvn[0, h, q] = len(part[q])
            kvi[0, h, q, :len(part[q])] = torch.tensor(part[q], dtype=torch.int32)
    S = shape.tokens
    return BlockMask.from_kv_blocks(kvn.cuda(), kvi.cuda(), fn.cuda(), fi.cuda(),
                                    BLOCK_SIZE=(info.block_q, info.block_k), mask_mod=mask_mod,
                                    seq_lengths=(S, S))


def run_pattern(sv, a, rows):
    """One pattern on one shape: torch dense backends, FlexAttention, and sieve."""
    shape = shape_from_args(sv, a.shapes.split(",")[0], a.shape_fields, a.batch)
    name = a.shapes.split(",")[0]
    dt = torch.float16 if a.dtype == "fp16" else torch.bfloat16
    B, H, S, D = shape.batch, shape.heads, shape.tokens, shape.head_dim
    sets = [[torch.randn(B, H, S, D, device="cuda", dtype=dt) for _ in range(3)]
            for _ in range(a.sets)]
    o = torch.empty(B, H, S, D, device="cuda", dtype=dt)
    lse = torch.empty(B, H, S, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    flops = 4.0 * B * H * S * S * D
    path = a.pattern if a.pattern.endswith(".lua") or "/" in a.pattern else \
        os.path.join(ROOT, "patterns", a.pattern + ".lua")
    params = dict(kv.split("=", 1) for kv in filter(None, a.params.split(",")))
    pat = sv.pattern(path, **params)
    pname = sv.lib.sieve_pattern_name(pat).decode()
    plan = sv.plan(pat, shape, 1 if a.dtype == "fp16" else 0)
    density = sv.lib.sieve_plan_density(plan)

    def add(label, kernel, dens, ms, err=None):
        tf = flops * dens / (ms * 1e-3) / 1e12
        rows.append((name, label, kernel, dens, ms, tf, err))
        print("%-14s %-12s %-14s %6.3f %9.3f ms %6.1f TFLOP/s %s" % (
            name, label, kernel, dens, ms, tf, "" if err is None else "rel.err %.1e" % err), flush=True)

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        add("dense", "torch-flash", 1.0, bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), sets))
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        add("dense", "torch-cudnn", 1.0, bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), sets))
    mm = mask_mod_for(pname, params, shape)
    err = None
    if mm is None:
        print("flex: no mask_mod for pattern %s here; FlexAttention skipped" % pname, flush=True)
    else:
        bm = block_mask_from(sv, pat, shape, mm)
        q, k, v = sets[0]
        fref = flex(q, k, v, block_mask=bm)
        add(pname, "flex", density, bench(lambda q, k, v: flex(q, k, v, block_mask=bm), sets))
        o.fill_(float("nan"))
        sv.attention(plan, q, k, v, o, lse, stream)
        torch.cuda.synchronize()
        err = rel(o, fref)
    if not a.skip_sieve:
        add(pname, "sieve %s" % "/".join(map(str, sv.plan_config(plan))), density,
            bench(lambda q, k, v: sv.attention(plan, q, k, v, o, lse, stream), sets), err)
    elif err is not None:
        print("sieve vs flex: rel.err %.1e" % err, flush=True)
    sv.lib.sieve_plan_free(plan)
    sv.lib.sieve_pattern_free(pat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="wan-1.3b-480p,hunyuan-720p,wan-14b-720p,cogvideox-1.5")
    ap.add_argument("--old", default=None, help="bm/bn/warps/stages: also time sieve at this config")
    ap.add_argument("--no-flex", action="store_true", help="skip FlexAttention (its compiles are slow)")
    ap.add_argument("--sets", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--pattern", default=None, help="one pattern: a shipped name or a .lua path")
    ap.add_argument("--params", default="", help="k=v,k=v for --pattern")
    ap.add_argument("--shape-fields", default=None, help="heads=H,frames=T,... over the preset "
                    "(the first of --shapes; 'custom' starts from nothing)")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--skip-sieve", action="store_true", help="with --pattern: time only the others")
    ap.add_argument("--csv", default=None, help="also write the rows as CSV")
    a = ap.parse_args()
    sv = Sieve()
    rows = []
    if a.pattern:
        run_pattern(sv, a, rows)
    else:
        for name in a.shapes.split(","):
            run_shape(sv, name, rows, a.sets, [int(x) for x in a.old.split("/")] if a.old else None,
                      not a.no_flex)
    lines = ["| shape | pattern | kernel | density | ms | TFLOP/s (active) | rel. err vs ref |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| %s | %s | %s | %.3f | %.3f | %.0f | %s |" % (
            r[0], r[1], r[2], r[3], r[4], r[5], "" if r[6] is None else "%.1e" % r[6]))
    text = "%s, %s, torch %s\n\n" % (time.strftime("%Y-%m-%d"), torch.cuda.get_device_name(), torch.__version__)
    text += "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("shape,pattern,kernel,density,ms,tflops,err\n")
            for r in rows:
                f.write("%s,%s,%s,%.6f,%.6f,%.3f,%s\n" % (r[0], r[1], r[2], r[3], r[4], r[5],
                                                          "" if r[6] is None else "%.3e" % r[6]))


if __name__ == "__main__":
    main()
