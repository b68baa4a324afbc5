"""Quality and speed of sieve's dynamic patterns on a PROXY video workload.

No model weights are available to sieve's benchmarks, so this is a proxy,
not a model: a procedurally generated moving video (a slowly panning
textured background and a few blobs moving across it) is cut into patch
tokens on a real model's token grid, noised as a diffusion step would be,
and projected to Q, K, V per head by random matrices (K's projection shares
most of Q's, so similar content attends to itself, as trained models do),
then 3-D rotary position embedding (HunyuanVideo's split of the head dim
into t, y, x parts) is applied to Q and K. Attention on it has spatial and
temporal locality; how much a real model's attention has is not claimed.

For each dynamic pattern, over a few denoising steps (noise level falling),
against exact attention (fp32, sampled query rows):
  recall    attention mass the pattern keeps, exp(LSE_sparse - LSE_dense)
            per row, averaged (1 = nothing dropped)
  O error   |O_sparse - O_dense| / |O_dense| over the sampled rows
  density   what sieve reports (token pairs, or key blocks for AdaSpa)
  time      triton do_bench median of one step, beside sieve's dense
            kernel and cuDNN SDPA on the same inputs

    python3 bench/proxy.py [--shape hunyuan-720p] [--rows 512] [--out FILE]
"""
import argparse
import ctypes as C
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import triton.testing

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sieve_ctypes import Sieve, Tensor  # noqa: E402

PATCH = 16


def moving_video(T, Y, X, gen):
    """[T, 3, Y*PATCH, X*PATCH] in [-1, 1]: a panning texture and moving blobs."""
    dev = "cuda"
    H, W = Y * PATCH, X * PATCH
    yy = torch.linspace(0, 1, H, device=dev).view(1, H, 1)
    xx = torch.linspace(0, 1, W, device=dev).view(1, 1, W)
    t = torch.arange(T, device=dev, dtype=torch.float32).view(T, 1, 1)
    frames = torch.zeros(T, 3, H, W, device=dev)
    pan = torch.rand(2, generator=gen, device=dev) * 0.02
    for _ in range(6):  # low-frequency texture, panning
        f = torch.rand(3, generator=gen, device=dev) * 12 + 2
        ph = torch.rand(4, generator=gen, device=dev) * 6.28
        wave = torch.sin(f[0] * (xx + pan[0] * t) * 6.28 + ph[0]) * torch.sin(f[1] * (yy + pan[1] * t) * 6.28 + ph[1])
        frames += wave.unsqueeze(1) * (torch.rand(1, 3, 1, 1, generator=gen, device=dev) - 0.5)
    for _ in range(5):  # blobs moving at constant velocity
        c0 = torch.rand(2, generator=gen, device=dev)
        v = (torch.rand(2, generator=gen, device=dev) - 0.5) * 0.05
        r = 0.04 + 0.08 * torch.rand(1, generator=gen, device=dev)
        col = torch.rand(1, 3, 1, 1, generator=gen, device=dev) * 2 - 1
        cy, cx = (c0[0] + v[0] * t) % 1, (c0[1] + v[1] * t) % 1
        blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        frames += blob.unsqueeze(1) * col
    return frames.clamp(-1, 1)


def tokens(video, T, Y, X):
    """Patch tokens in model order (t, y, x raster): [S, 3 * PATCH^2]."""
    v = video.view(T, 3, Y, PATCH, X, PATCH).permute(0, 2, 4, 1, 3, 5)
    return v.reshape(T * Y * X, 3 * PATCH * PATCH)


def rope_3d(x, T, Y, X):
    """Rotary embedding over (t, y, x) with the head dim split 1/8, 7/16, 7/16."""
    D = x.shape[-1]
    dt = D // 8
    dy = (D - dt) // 2
    parts, coords = [dt, dy, D - dt - dy], [
        torch.arange(T, device=x.device).repeat_interleave(Y * X),
        torch.arange(Y, device=x.device).repeat_interleave(X).repeat(T),
        torch.arange(X, device=x.device).repeat(T * Y)]
    out, o = [], 0
    for n, pos in zip(parts, coords):
        xs = x[..., o:o + n]
        freq = 1.0 / (10000 ** (torch.arange(0, n, 2, device=x.device).float() / n))
        ang = pos.float().view(-1, 1) * freq.view(1, -1)
        cos, sin = ang.cos(), ang.sin()
        a, b = xs[..., 0::2], xs[..., 1::2]
        out.append(torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2))
        o += n
    return torch.cat(out, dim=-1)


class Workload:
    """Q, K, V [1, H, S, D] bf16 at a noise level, from one video and one set of weights."""

    def __init__(self, shape, seed=7):
        self.T, self.Y, self.X = shape.frames, shape.height, shape.width
        self.H, self.D = shape.heads, shape.head_dim
        gen = torch.Generator(device="cuda").manual_seed(seed)
        self.clean = tokens(moving_video(self.T, self.Y, self.X, gen), self.T, self.Y, self.X)
        self.noise = torch.randn(self.clean.shape, generator=gen, device="cuda")
        F_in = self.clean.shape[1]
        self.wq = torch.randn(self.H, F_in, self.D, generator=gen, device="cuda") / math.sqrt(F_in)
        mix = torch.randn(self.H, F_in, self.D, generator=gen, device="cuda") / math.sqrt(F_in)
        self.wk = 0.85 * self.wq + 0.5 * mix
        self.wv = torch.randn(self.H, F_in, self.D, generator=gen, device="cuda") / math.sqrt(F_in)
        # Heads differ in sharpness, as trained heads do.
        self.temp = torch.linspace(1.0, 2.5, self.H, device="cuda").view(self.H, 1, 1)

    def at(self, sigma):
        x = (1 - sigma) * self.clean + sigma * 0.5 * self.noise
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        q = torch.einsum("sf,hfd->hsd", x, self.wq) * self.temp
        k = torch.einsum("sf,hfd->hsd", x, self.wk)
        v = torch.einsum("sf,hfd->hsd", x, self.wv)
        q, k = rope_3d(q, self.T, self.Y, self.X), rope_3d(k, self.T, self.Y, self.X)
        return [t.unsqueeze(0).to(torch.bfloat16).contiguous() for t in (q, k, v)]


def exact_rows(q, k, v, rows):
    """fp32 O and natural-log LSE of the sampled rows of every head."""
    H, D = q.shape[1], q.shape[3]
    o = torch.empty(H, len(rows), D, device="cuda")
    lse = torch.empty(H, len(rows), device="cuda")
    for h in range(H):
        s = (q[0, h, rows].float() @ k[0, h].float().T) / math.sqrt(D)
        lse[h] = torch.logsumexp(s, dim=-1)
        o[h] = torch.softmax(s, dim=-1) @ v[0, h].float()
    return o, lse


def quality(o, lse, ref_o, ref_lse, rows):
    got_o = o[0, :, rows].float()
    got_l = lse.view(lse.shape[1], -1)[:, rows]
    recall = torch.exp(got_l - ref_lse).clamp(max=1.0).mean().item()
    err = ((got_o - ref_o).norm() / ref_o.norm()).item()
    return recall, err


def bench(fn):
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


class Dyn:
    """sieve_dynplan through ctypes."""

    def __init__(self, sv, pattern, shape):
        P = C.c_void_p
        self.sv, self.h = sv, P()
        sv._check(sv.lib.sieve_dynplan_create(sv.ctx, pattern, C.byref(shape), 0, C.byref(self.h)))

    def step(self, step, q, k, v, o, lse):
        t = [Tensor(x.data_ptr(), *x.stride()[:3]) for x in (q, k, v, o)]
        chose = C.c_int()
        self.sv._check(self.sv.lib.sieve_dynplan_step(
            self.h, step, 0, *[C.byref(x) for x in t], lse.data_ptr(), 0.0,
            C.c_void_p(torch.cuda.current_stream().cuda_stream), C.byref(chose)))
        return chose.value

    def density(self):
        d = C.c_double()
        self.sv._check(self.sv.lib.sieve_dynplan_density(self.h, C.byref(d)))
        return d.value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="hunyuan-720p")
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    sv = Sieve()
    shape = sv.shape(a.shape)
    S = shape.tokens
    pats = os.path.join(HERE, "..", "patterns")
    work = Workload(shape)
    sigmas = [0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    rows = torch.randperm(S, device="cuda")[:a.rows]
    o = torch.empty(1, shape.heads, S, shape.head_dim, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(1, shape.heads, S, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    lines = []

    def row(name, rec, err, dens, ms, base, cudnn, extra=""):
        lines.append("| %s | %.4f | %.4f | %.3f | %.2f | %.2fx | %.2fx | %s |" % (
            name, rec, err, dens, ms, base / ms, cudnn / ms, extra))
        print(lines[-1], flush=True)

    q, k, v = work.at(sigmas[2])
    dense = sv.plan(sv.pattern(os.path.join(pats, "dense.lua")), shape, 0)
    sv.attention(dense, q, k, v, o, lse, stream)
    t_dense = bench(lambda: sv.attention(dense, q, k, v, o, lse, stream))
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        t_cudnn = bench(lambda: F.scaled_dot_product_attention(q, k, v))
    ref_o, ref_lse = exact_rows(q, k, v, rows)
    rec, err = quality(o, lse, ref_o, ref_lse, rows)
    print("| method | recall | O rel err | density | ms | vs sieve dense | vs cuDNN | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    row("sieve dense", rec, err, 1.0, t_dense, t_dense, t_cudnn)
    lines.append("| cuDNN SDPA | - | - | 1.000 | %.2f | %.2fx | 1.00x | |" % (t_cudnn, t_dense / t_cudnn))
    print(lines[-1])

    # LVSA: static per step, tables rebuilt on the GPU when the step moves.
    lv = sv.plan(sv.pattern(os.path.join(pats, "lvsa.lua")), shape, 0)
    recs, errs = [], []
    for s in range(3):
        q, k, v = work.at(sigmas[s])
        sv.lib.sieve_plan_set_step(lv, s, 0)
        sv.attention(lv, q, k, v, o, lse, stream)
        ro, rl = exact_rows(q, k, v, rows)
        r, e = quality(o, lse, ro, rl, rows)
        recs.append(r)
        errs.append(e)
    t = bench(lambda: sv.attention(lv, q, k, v, o, lse, stream))
    row("lvsa", sum(recs) / 3, sum(errs) / 3, sv.lib.sieve_plan_density(lv), t, t_dense, t_cudnn, "steps 0-2")

    # AdaSpa: dense warm-up at step 0, search at 1 and 4, reuse between; the
    # shipped single level and the two-level hierarchy.
    for name, coarse in (("adaspa", 128), ("adaspa, levels 512/128", 512)):
        ad = Dyn(sv, sv.pattern(os.path.join(pats, "adaspa.lua"), warmup=1, every=3, total_steps=6,
                                coarse=coarse), shape)
        recs, errs, dens, t_search = [], [], [], None
        for s in range(6):
            q, k, v = work.at(sigmas[s])
            if s in (1, 4) and t_search is None:
                torch.cuda.synchronize()
                ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                ev[0].record()
                ad.step(s, q, k, v, o, lse)
                ev[1].record()
                torch.cuda.synchronize()
                t_search = ev[0].elapsed_time(ev[1])
                continue
            chose = ad.step(s, q, k, v, o, lse)
            if s > 1 and not chose:
                ro, rl = exact_rows(q, k, v, rows)
                r, e = quality(o, lse, ro, rl, rows)
                recs.append(r)
                errs.append(e)
                dens.append(ad.density())
        t = bench(lambda: ad.step(5, q, k, v, o, lse))
        row(name, sum(recs) / len(recs), sum(errs) / len(errs), sum(dens) / len(dens), t, t_dense, t_cudnn,
            "coarse %d; recall target 0.9; reuse steps 2, 3, 5; a search step (dense + search) %.1f ms"
            % (coarse, t_search))

    # SVG: profiling at step 0, classes kept after.
    sg = Dyn(sv, sv.pattern(os.path.join(pats, "svg.lua"), profile="true"), shape)
    recs, errs = [], []
    for s in range(3):
        q, k, v = work.at(sigmas[s])
        if s == 0:
            torch.cuda.synchronize()
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            ev[0].record()
        sg.step(s, q, k, v, o, lse)
        if s == 0:
            ev[1].record()
            torch.cuda.synchronize()
            t_prof = ev[0].elapsed_time(ev[1])
            continue
        ro, rl = exact_rows(q, k, v, rows)
        r, e = quality(o, lse, ro, rl, rows)
        recs.append(r)
        errs.append(e)
    t = bench(lambda: sg.step(2, q, k, v, o, lse))
    row("svg", sum(recs) / 2, sum(errs) / 2, sg.density(), t, t_dense, t_cudnn,
        "profiled at step 0 (profiling + attention %.1f ms); steps 1-2" % t_prof)
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
