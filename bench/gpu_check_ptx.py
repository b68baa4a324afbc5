"""Runs attention kernels written by bench/gpu_attn_export on a GPU (cupy loads
the PTX; torch makes inputs and the float64 reference): poisons O and LSE,
checks both by relative error (bf16 1e-2, fp16 2e-3), and times the perf
cases with CUDA events beside torch SDPA (flash and cuDNN backends).

    python3 bench/gpu_check_ptx.py CASEDIR [FILTER]
"""
import glob, json, math, os, sys, time
import numpy as np
import torch
import cupy as cp

torch.backends.cuda.matmul.allow_tf32 = False
DIR = os.environ.get("CASES", sys.argv[1] if len(sys.argv) > 1 else ".gpu/cases")
FILT = sys.argv[2] if len(sys.argv) > 2 else ""
dev = torch.device("cuda")
rows_out = []


def load_tables(meta):
    raw = np.fromfile(os.path.join(DIR, meta["name"] + ".tabs"), dtype=np.int32)
    H = meta["H"]
    return torch.from_numpy(raw[:H].copy()).to(dev), torch.from_numpy(raw[H:].copy()).to(dev)


def load_ref(meta, t):
    S, ns = meta["S"], meta["samples"]
    raw = np.fromfile(os.path.join(DIR, "%s.t%d.bin" % (meta["name"], t)), dtype=np.uint8)
    i32 = raw[: 4 * (2 * S + ns)].view(np.int32)
    qi, ki, samp = i32[:S], i32[S:2 * S], i32[2 * S:]
    m = raw[4 * (2 * S + ns):].reshape(ns, S)
    return (torch.from_numpy(qi.astype(np.int64)).to(dev), torch.from_numpy(ki.astype(np.int64)).to(dev),
            torch.from_numpy(samp.astype(np.int64)).to(dev), torch.from_numpy(m.copy()).to(dev).bool())


def make(meta, dt):
    B, H, S, D = meta["B"], meta["H"], meta["S"], meta["D"]
    if meta["bshd"]:
        x = [torch.randn(B, S, H, D, device=dev, dtype=dt) for _ in range(3)]
        o = torch.full((B, S, H, D), float("nan"), device=dev, dtype=dt)
        view = lambda t: t.permute(0, 2, 1, 3)
    else:
        x = [torch.randn(B, H, S, D, device=dev, dtype=dt) for _ in range(3)]
        o = torch.full((B, H, S, D), float("nan"), device=dev, dtype=dt)
        view = lambda t: t
    return x, o, view


def launcher(meta):
    mod = cp.RawModule(path=os.path.join(DIR, meta["name"] + ".ptx"))
    f = mod.get_function(meta["kernel"])
    f.max_dynamic_shared_size_bytes = meta["smem"]
    return mod, f


def launch(f, meta, q, k, v, o, lse, hoff, tabs, view, scale):
    B, H, S = meta["B"], meta["H"], meta["S"]
    args = [np.uint64(t.data_ptr()) for t in (q, k, v, o, lse)]
    for t in (q, k, v, o):
        vt = view(t)
        args += [np.int64(vt.stride(0)), np.int64(vt.stride(1)), np.int64(vt.stride(2))]
    args += [np.uint64(tabs.data_ptr()), np.uint64(hoff.data_ptr()), np.int32(0), np.int32(0), np.float32(scale)]
    grid = ((S + meta["block_m"] - 1) // meta["block_m"], H, B)
    f(grid, (meta["threads"],), tuple(args), shared_mem=meta["smem"])


def check(meta, f):
    dt = torch.float16 if meta["dtype"] == "fp16" else torch.bfloat16
    B, H, S, D = meta["B"], meta["H"], meta["S"], meta["D"]
    (q, k, v), o, view = make(meta, dt)
    lse = torch.full((B, H, S), float("nan"), device=dev, dtype=torch.float32)
    hoff, tabs = load_tables(meta)
    scale = 1.0 / math.sqrt(D)
    launch(f, meta, q, k, v, o, lse, hoff, tabs, view, scale)
    torch.cuda.synchronize()
    ov = view(o)
    unwritten = int(torch.isnan(ov).sum().item() + torch.isnan(lse).sum().item())
    num = den = 0.0
    lerr = 0.0
    inf_bad = 0
    refs = {}
    for h in range(H):
        t = meta["heads"][h]
        if t not in refs:
            refs[t] = load_ref(meta, t)
        qi, ki, samp, m = refs[t]
        rows = qi[samp]
        mrow = torch.zeros_like(m)
        mrow[:, ki] = m
        for b in range(B):
            Q = view(q)[b, h].double()[rows]
            K = view(k)[b, h].double()
            V = view(v)[b, h].double()
            s = (Q @ K.T) * scale
            s = s.masked_fill(~mrow, float("-inf"))
            l = torch.logsumexp(s, dim=1)
            p = torch.exp(s - l[:, None])
            p = torch.nan_to_num(p, nan=0.0)
            oref = p @ V
            og = ov[b, h][rows].double()
            num += ((og - oref) ** 2).sum().item()
            den += (oref ** 2).sum().item()
            lg = lse[b, h][rows].double()
            fin = torch.isfinite(l)
            inf_bad += int((torch.isneginf(lg) != ~fin).sum().item())
            if fin.any():
                lerr = max(lerr, (lg[fin] - l[fin]).abs().max().item())
    rel = math.sqrt(num / max(den, 1e-30))
    tol = 2e-3 if meta["dtype"] == "fp16" else 1e-2
    ok = unwritten == 0 and rel <= tol and lerr <= 1e-2 and inf_bad == 0 and not math.isnan(rel)
    return ok, rel, lerr, unwritten, inf_bad


def bench(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in ev:
        a.record(); fn(); b.record()
    torch.cuda.synchronize()
    return float(np.median([a.elapsed_time(b) for a, b in ev]))


def perf(meta, f):
    dt = torch.bfloat16 if meta["dtype"] == "bf16" else torch.float16
    B, H, S, D = meta["B"], meta["H"], meta["S"], meta["D"]
    (q, k, v), o, view = make(meta, dt)
    lse = torch.empty((B, H, S), device=dev, dtype=torch.float32)
    hoff, tabs = load_tables(meta)
    ms = bench(lambda: launch(f, meta, q, k, v, o, lse, hoff, tabs, view, 1.0 / math.sqrt(D)))
    fl = 4.0 * B * H * S * S * D
    return ms, fl * meta["density"] / ms / 1e9, fl * meta["visited"] / ms / 1e9


torch_cache = {}


def torch_ref(meta):
    key = (meta["B"], meta["H"], meta["S"], meta["D"])
    if os.environ.get("NO_TORCH"):
        return {"flash": float("nan"), "cudnn": float("nan")}
    if key in torch_cache:
        return torch_cache[key]
    from torch.nn.attention import sdpa_kernel, SDPBackend
    B, H, S, D = key
    q, k, v = [torch.randn(B, H, S, D, device=dev, dtype=torch.bfloat16) for _ in range(3)]
    res = {}
    for nm, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel(be):
                res[nm] = bench(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
        except Exception as ex:
            res[nm] = float("nan")
    torch_cache[key] = res
    return res


def main():
    print(torch.cuda.get_device_name(), torch.__version__, "cupy", cp.__version__, flush=True)
    metas = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(DIR, "*.json")))]
    metas = [m for m in metas if FILT in m["name"]]
    npass = nfail = 0
    for meta in sorted(metas, key=lambda m: (m["perf"], m["name"])):
        try:
            t0 = time.time()
            mod, f = launcher(meta)
            regs, local = f.num_regs, f.local_size_bytes
            ok, rel, lerr, unw, infb = check(meta, f)
            line = "%-30s %-4s regs=%3d local=%3d  O rel=%.2e  LSE abs=%.2e unwritten=%d inf_mismatch=%d" % (
                meta["name"], "ok" if ok else "FAIL", regs, local, rel, lerr, unw, infb)
            if meta["perf"]:
                ms, tf, tfv = perf(meta, f)
                tr = torch_ref(meta)
                line += "  %.2f ms %.0f TF/s(dens) %.0f TF/s(blocks)  torch flash %.2f ms (%.0f TF/s) cudnn %.2f ms" % (
                    ms, tf, tfv, tr["flash"], 4.0 * meta["B"] * meta["H"] * meta["S"] ** 2 * meta["D"] / tr["flash"] / 1e9,
                    tr["cudnn"])
            print(line, " [%.1fs]" % (time.time() - t0), flush=True)
            rows_out.append(line)
            npass += ok
            nfail += not ok
        except Exception as ex:
            print("%-30s ERROR %s" % (meta["name"], repr(ex)[:300]), flush=True)
            rows_out.append("%-30s ERROR" % meta["name"])
            nfail += 1
    print("\n==== summary ====")
    for l in rows_out:
        print(l)
    print("%d passed, %d failed" % (npass, nfail))


if __name__ == "__main__":
    main()
