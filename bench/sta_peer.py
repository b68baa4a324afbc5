"""sieve's sta beside STA's own kernel (FastVideo's ThunderKittens kernel, PyPI st_attn), in one run.

STA's kernel runs only the latent shapes FastVideo ships: HunyuanVideo 30x48x80
with 256 text tokens after the video, Wan 18x48x80 with none; tiles of
6 x 8 x 8 and one window (kernel size in tiles) a head. Both take the same
window on every head here. For each case and window, on the same inputs:

  sta kernel     st_attn.sliding_tile_attention on q, k, v already in tile
                 order and [B, H, S, D] (its own padding of the text to 384
                 tokens, a launch per head, one for the text rows)
  sta as shipped FastVideo's SlidingTileAttentionImpl around it: the video
                 tokens of [B, S, H, D] model-order q, k, v put in tile order
                 (tile), made [B, H, S, D] contiguous, the kernel, and the
                 output back (transpose, untile), made contiguous
  sieve          patterns/sta.lua (tile_t,y,x = 6,8,8, win = kernel // 2,
                 dense_steps = 0) on the same model-order [B, S, H, D]
                 tensors: its layout permute in and out included

"rel" compares each output with the STA kernel's (put back in model order),
over the video rows and the text rows apart: the two compute the same mask
(tests/ref/check_masks.py checks sieve's against FastVideo's
generate_sta_mask) so they differ by bf16 rounding. TFLOP/s count the
mask's pairs (sieve_plan_density). sieve's dense kernel, FA3 (where the
fa3-fwd wheel imports, as in bench/compare.py) and cuDNN's dense SDPA give
the scale.

st_attn 0.0.7 was built against an older torch (see bench/sta_abi_shim.cpp)
and CUDA 12's runtime; where it does not load as it is, STA_ABI_SHIM names
the shim library and libcudart.so.12 comes from nvidia-cuda-runtime-cu12.

  SIEVE_LIB_DIR=<build> [STA_ABI_SHIM=sta_abi_shim.so] python3 bench/sta_peer.py \\
      [--cases hunyuan,wan] [--windows 3,3,3] [--out FILE]

Each case runs in a process of its own: st_attn keeps memory it allocated
(HunyuanVideo's case left Wan's out of memory on an 80 GB H100).
"""
import argparse
import ctypes
import glob
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sieve_ctypes import Sieve, Shape  # noqa: E402
from bitmask import bench  # noqa: E402
import compare  # noqa: E402  (FA3 from the fa3-fwd wheel, where it imports)

ROOT = os.path.join(HERE, "..")
TILE = (6, 8, 8)
# name: heads, (frames, height, width), text tokens (after the video), st_attn's shape name
CASES = {
    "hunyuan": (24, (30, 48, 80), 256, "30x48x80"),
    "wan": (40, (18, 48, 80), 0, "18x48x80"),
}


def load_sta():
    """st_attn's wrapper, with its extension loaded (through the shim where it must be)."""
    try:
        import st_attn_cuda  # noqa: F401
    except ImportError as first:
        shim = os.environ.get("STA_ABI_SHIM")
        rt = [p for d in sys.path for p in glob.glob(os.path.join(d, "nvidia", "cuda_runtime", "lib", "libcudart.so.12"))]
        if not shim or not rt:
            raise SystemExit("st_attn_cuda does not load (%s); set STA_ABI_SHIM and install nvidia-cuda-runtime-cu12" % first)
        ctypes.CDLL(rt[0], mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(os.path.abspath(shim), mode=ctypes.RTLD_GLOBAL)
        import st_attn_cuda  # noqa: F401
    import st_attn
    if st_attn.sta_fwd is None:
        raise SystemExit("st_attn loaded without its kernel")
    return st_attn


def tiler(fhw):
    """FastVideo's tile and untile of the video tokens ([B, S, H, D]; text stays after)."""
    n = [fhw[i] // TILE[i] for i in range(3)]
    video = fhw[0] * fhw[1] * fhw[2]

    def tile(x):
        B, S, H, D = x.shape
        v = x[:, :video].reshape(B, n[0], TILE[0], n[1], TILE[1], n[2], TILE[2], H, D)
        v = v.permute(0, 1, 3, 5, 2, 4, 6, 7, 8).reshape(B, video, H, D)
        return torch.cat([v, x[:, video:]], 1) if S > video else v

    def untile(x):
        B, S, H, D = x.shape
        v = x[:, :video].reshape(B, n[0], n[1], n[2], TILE[0], TILE[1], TILE[2], H, D)
        v = v.permute(0, 1, 4, 2, 5, 3, 6, 7, 8).reshape(B, video, H, D)
        return torch.cat([v, x[:, video:]], 1) if S > video else v
    return tile, untile


def rel(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="hunyuan,wan")
    # st_attn 0.0.7 refuses other kernel sizes at these shapes ("Invalid kernel size": 1,5,7 on
    # HunyuanVideo, H100, 2026-12-05) and then runs nothing.
    ap.add_argument("--windows", default="3,3,3", help="kernel sizes t,y,x in tiles, ';' between")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    cases = a.cases.split(",")
    if len(cases) > 1:
        out = []
        for case in cases:
            r = subprocess.run([sys.executable, __file__, "--cases", case, "--windows", a.windows],
                               stdout=subprocess.PIPE, text=True)
            sys.stdout.write(r.stdout)
            out += [l for l in r.stdout.splitlines() if l and not l.startswith(("Kernel size", "Invalid kernel"))]
            if r.returncode:
                sys.exit("sta_peer: case %s failed (exit %d)" % (case, r.returncode))
        if a.out:
            with open(a.out, "w") as f:
                f.write("\n".join(out) + "\n")
        return
    st = load_sta()
    sv = Sieve()
    dt = torch.bfloat16
    stream = torch.cuda.current_stream().cuda_stream
    lines = []

    def say(s):
        print(s, flush=True)
        lines.append(s)

    say("device %s, torch %s" % (torch.cuda.get_device_name(), torch.__version__))
    for case in cases:
        H, fhw, text, name = CASES[case]
        D, video = 128, fhw[0] * fhw[1] * fhw[2]
        S = video + text
        shape = Shape(1, H, D, fhw[0], fhw[1], fhw[2], text, 1)
        tile, untile = tiler(fhw)
        # Model order, [B, S, H, D] as a DiT holds them; sieve reads them through strides.
        sets = [[torch.randn(1, S, H, D, device="cuda", dtype=dt) for _ in range(3)] for _ in range(2)]
        tiled = [[tile(x).transpose(1, 2).contiguous() for x in s] for s in sets]
        o = torch.empty(1, S, H, D, device="cuda", dtype=dt)
        lse = torch.empty(1, H, S, device="cuda", dtype=torch.float32)
        flops = 4.0 * H * S * S * D

        def bhsd(x):
            return x.transpose(1, 2)

        def row(label, ms, dens, err=""):
            say("%-8s %-10s %-32s %9.3f ms %6.1f TFLOP/s %s" % (case, label[0], label[1], ms, flops * dens / ms / 1e9, err))

        dplan = sv.plan(sv.pattern(os.path.join(ROOT, "patterns", "dense.lua")), shape, 0)
        row(("dense", "sieve %s" % "/".join(map(str, sv.plan_config(dplan)))),
            bench(lambda q, k, v: sv.attention(dplan, bhsd(q), bhsd(k), bhsd(v), bhsd(o), lse, stream), sets), 1.0)
        sv.lib.sieve_plan_free(dplan)
        if compare.fa3 is not None:
            row(("dense", "fa3 (fa3-fwd 0.0.3)"), bench(lambda q, k, v: compare.fa3(q, k, v), sets), 1.0)
        # cuDNN wants [B, H, S, D] contiguous: the tiled copies are, and dense
        # attention takes as long on any one order of the tokens.
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            row(("dense", "torch cuDNN"), bench(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), tiled), 1.0)
        for w in a.windows.split(";"):
            ks = tuple(int(x) for x in w.split(","))
            win = [ks] * H

            def sta_kernel(q, k, v):
                return st.sliding_tile_attention(q, k, v, win, text, text > 0, name)

            def sta_shipped(q, k, v):
                qt, kt, vt = (tile(x).transpose(1, 2).contiguous() for x in (q, k, v))
                return untile(sta_kernel(qt, kt, vt).transpose(1, 2)).contiguous()

            pat = sv.pattern(os.path.join(ROOT, "patterns", "sta.lua"), win_t=str(ks[0] // 2), win_y=str(ks[1] // 2),
                             win_x=str(ks[2] // 2), dense_steps="0")
            plan = sv.plan(pat, shape, 0)
            dens = sv.lib.sieve_plan_density(plan)
            label = "window %dx%dx%d" % ks
            t_kernel = bench(sta_kernel, tiled)
            t_shipped = bench(sta_shipped, sets)
            t_sieve = bench(lambda q, k, v: sv.attention(plan, bhsd(q), bhsd(k), bhsd(v), bhsd(o), lse, stream), sets)
            # The compared outputs, on fresh inputs after the timings; o poisoned first.
            q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=dt) for _ in range(3))
            ref = untile(sta_kernel(*(tile(x).transpose(1, 2).contiguous() for x in (q, k, v))).transpose(1, 2))
            shipped = sta_shipped(q, k, v)
            o.fill_(float("nan"))
            sv.attention(plan, bhsd(q), bhsd(k), bhsd(v), bhsd(o), lse, stream)
            torch.cuda.synchronize()

            def errs(x):
                e = "rel video %.1e" % rel(x[:, :video], ref[:, :video])
                return e + (", text %.1e" % rel(x[:, video:], ref[:, video:]) if text else "")
            row((label, "sta kernel (st_attn 0.0.7)"), t_kernel, dens, "density %.4f" % dens)
            row((label, "sta as shipped (tile, untile)"), t_shipped, dens, errs(shipped))
            row((label, "sieve %s" % "/".join(map(str, sv.plan_config(plan)))), t_sieve, dens,
                errs(o) + "; x%.2f the kernel, x%.2f as shipped" % (t_kernel / t_sieve, t_shipped / t_sieve))
            sv.lib.sieve_plan_free(plan)
            sv.lib.sieve_pattern_free(pat)
        del sets, tiled, o, lse
        torch.cuda.empty_cache()
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
