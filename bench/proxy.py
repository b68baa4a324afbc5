"""Quality and speed of the seed patterns on a PROXY video workload.

No model weights are available to sieve's benchmarks, so this is a proxy,
not a model: a procedurally generated moving video (a slowly panning
textured background and a few blobs moving across it) is cut into patch
tokens on a real model's token grid, noised as a diffusion step would be,
and projected to Q, K, V per head by random matrices (K's projection shares
most of Q's, so similar content attends to itself, as trained models do),
then 3-D rotary position embedding (HunyuanVideo's split of the head dim
into t, y, x parts) is applied to Q and K. Attention on it has spatial and
temporal locality; how much a real model's attention has is not claimed.

For each seed method (svg, sta with one window and with STA's mask search,
lvsa, adaspa), at sparse steps of its schedule (noise level falling with
the step), against exact attention (fp32, sampled query rows):
  recall    attention mass the pattern keeps, exp(LSE_sparse - LSE_dense)
            per row, averaged (1 = nothing dropped)
  O error   |O_sparse - O_dense| / |O_dense| over the sampled rows
  density   what sieve reports (token pairs, or key blocks for AdaSpa)
  time      triton do_bench median of one step, beside sieve's dense
            kernel and cuDNN SDPA on the same inputs; svg's steps include
            its profiling (every sparse step and layer), and its cost is
            reported against the same step without it

    python3 bench/proxy.py [--shapes hunyuan-720p,wan-1.3b-480p,cogvideox-1.5] [--methods svg,sta,
        sta-search,lvsa,adaspa] [--rows 512] [--out FILE]
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
    """Q, K, V [1, H, S, D] bf16 at a noise level, from one video and one set
    of weights; where the shape has text, a fixed random prompt of that many
    tokens, projected by the same weights with no rotary embedding (as
    CogVideoX and HunyuanVideo leave text unrotated), before or after the
    video as the shape says."""

    def __init__(self, shape, seed=7):
        self.T, self.Y, self.X = shape.frames, shape.height, shape.width
        self.H, self.D = shape.heads, shape.head_dim
        self.N, self.after = shape.text, bool(shape.text_after)
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
        # Drawn last, so that shapes with no text keep the earlier workload.
        self.text = torch.randn(self.N, F_in, generator=gen, device="cuda") if self.N else None

    def at(self, sigma):
        x = (1 - sigma) * self.clean + sigma * 0.5 * self.noise
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        q = torch.einsum("sf,hfd->hsd", x, self.wq) * self.temp
        k = torch.einsum("sf,hfd->hsd", x, self.wk)
        v = torch.einsum("sf,hfd->hsd", x, self.wv)
        q, k = rope_3d(q, self.T, self.Y, self.X), rope_3d(k, self.T, self.Y, self.X)
        if self.N:
            tq = torch.einsum("sf,hfd->hsd", self.text, self.wq) * self.temp
            tk = torch.einsum("sf,hfd->hsd", self.text, self.wk)
            tv = torch.einsum("sf,hfd->hsd", self.text, self.wv)
            join = (lambda a, b: torch.cat([a, b], 1)) if self.after else (lambda a, b: torch.cat([b, a], 1))
            q, k, v = join(q, tq), join(k, tk), join(v, tv)
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
    return triton.testing.do_bench(fn, warmup=25, rep=600, return_mode="median")


def sigma(step):
    """The noise level at a denoising step of 50: falls from 1 to 0.1."""
    return max(0.1, 1.0 - step / 50.0)


class Dyn:
    """sieve_dynplan through ctypes."""

    def __init__(self, sv, pattern, shape):
        P = C.c_void_p
        self.sv, self.h = sv, P()
        sv._check(sv.lib.sieve_dynplan_create(sv.ctx, pattern, C.byref(shape), 0, C.byref(self.h)))

    def step(self, step, layer, q, k, v, o, lse):
        t = [Tensor(x.data_ptr(), *x.stride()[:3]) for x in (q, k, v, o)]
        chose = C.c_int()
        self.sv._check(self.sv.lib.sieve_dynplan_step(
            self.h, step, layer, *[C.byref(x) for x in t], lse.data_ptr(), 0.0,
            C.c_void_p(torch.cuda.current_stream().cuda_stream), C.byref(chose)))
        return chose.value

    def density(self):
        d = C.c_double()
        self.sv._check(self.sv.lib.sieve_dynplan_density(self.h, C.byref(d)))
        return d.value

    def save(self, path):
        self.sv._check(self.sv.lib.sieve_dynplan_save_search(self.h, path.encode()))

    def free(self):
        self.sv.lib.sieve_dynplan_free(self.h)


def timed(fn):
    """One call's time by CUDA events (ms)."""
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    ev[0].record()
    fn()
    ev[1].record()
    torch.cuda.synchronize()
    return ev[0].elapsed_time(ev[1])


LAYER = 2       # past every preset's dense first layers
STEPS = (20, 21)  # sparse steps of every preset's schedule (STA: 12 dense, SVG: 5 or 10)


def run_shape(sv, name, a, pats, lines):
    shape = sv.shape(name)
    S = shape.tokens
    model = "wan" if name.startswith("wan") else "cogvideox" if name.startswith("cogvideox") else "hunyuan"
    work = Workload(shape)
    torch.manual_seed(0)
    rows = torch.randperm(S, device="cuda")[:a.rows]
    o = torch.empty(1, shape.heads, S, shape.head_dim, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(1, shape.heads, S, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream().cuda_stream
    pat = lambda n, **kw: sv.pattern(os.path.join(pats, n + ".lua"), **kw)  # noqa: E731

    def row(method, settings, orig, rec, err, dens, ms, base, cudnn, notes=""):
        lines.append("| %s | %s | %s | %s | %s | %s | %.3f | %.2f | %.2fx | %.2fx | %s |" % (
            name, method, settings, orig, "-" if rec is None else "%.4f" % rec,
            "-" if err is None else "%.4f" % err, dens, ms, base / ms, cudnn / ms, notes))
        print(lines[-1], flush=True)

    def evaluate(run, steps):
        """Mean recall and O error over steps; run(step, q, k, v) computes o, lse."""
        recs, errs = [], []
        for s in steps:
            q, k, v = work.at(sigma(s))
            run(s, q, k, v)
            ro, rl = exact_rows(q, k, v, rows)
            r, e = quality(o, lse, ro, rl, rows)
            recs.append(r)
            errs.append(e)
        return sum(recs) / len(recs), sum(errs) / len(errs), (q, k, v)

    q, k, v = work.at(sigma(STEPS[0]))
    dense = sv.plan(pat("dense"), shape, 0)
    sv.attention(dense, q, k, v, o, lse, stream)
    t_dense = bench(lambda: sv.attention(dense, q, k, v, o, lse, stream))
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        t_cudnn = bench(lambda: F.scaled_dot_product_attention(q, k, v))
    ref_o, ref_lse = exact_rows(q, k, v, rows)
    rec, err = quality(o, lse, ref_o, ref_lse, rows)
    row("sieve dense", "", "", rec, err, 1.0, t_dense, t_dense, t_cudnn)
    lines.append("| %s | cuDNN SDPA | | | - | - | 1.000 | %.2f | %.2fx | 1.00x | |" % (name, t_cudnn, t_dense / t_cudnn))
    print(lines[-1], flush=True)

    def guarded(label, fn):
        try:
            fn()
        except Exception as ex:  # one method's failure leaves the others' rows
            lines.append("| %s | %s | failed: %s |" % (name, label, str(ex).replace("|", "/")[:300]))
            print(lines[-1], flush=True)

    # SVG: profiling at every sparse step and layer (the default); the same
    # steps with profiling only at the first sparse step give its cost.
    def svg():
        sg = Dyn(sv, pat("svg", model=model), shape)
        rec, err, (q, k, v) = evaluate(lambda s, q, k, v: sg.step(s, LAYER, q, k, v, o, lse), STEPS)
        dens = sg.density()
        t = bench(lambda: sg.step(STEPS[-1], LAYER, q, k, v, o, lse))
        once = Dyn(sv, pat("svg", model=model, every=1000), shape)
        first = 5 if model == "hunyuan" else 10
        once.step(first, LAYER, q, k, v, o, lse)  # its one profiling step: classes chosen
        t_attn = bench(lambda: once.step(STEPS[-1], LAYER, q, k, v, o, lse))
        os.environ["SIEVE_PROFILE_CHUNK"] = "4096"
        try:
            old = Dyn(sv, pat("svg", model=model), shape)
            t_old = bench(lambda: old.step(STEPS[-1], LAYER, q, k, v, o, lse))
        finally:
            del os.environ["SIEVE_PROFILE_CHUNK"]
        prof = t - t_attn
        if prof < 0:  # the step without profiling ran other classes: no cost to read off
            prof_note = ("profiling cost not measured: the plan profiled once (step %d) chose other classes, its "
                         "step %.2f ms" % (first, t_attn))
        else:
            prof_note = ("profiling %.3f ms = %.1f%% of the step's attention (%.2f ms); with 4096-token key chunks "
                         "(the earlier kernel's) %.3f ms" % (prof, 100 * prof / t_attn, t_attn, t_old - t_attn))
        budget = {"wan": "0.3"}.get(model, "0.25")
        rows_from = "32 rows of the whole sequence" if model == "cogvideox" else "64 rows of the first 10,000"
        row("svg", "model=%s (budget %s), profiling every sparse step" % (model, budget),
            "SVG: budget %s, %s, every sparse step and layer" % (budget, rows_from),
            rec, err, dens, t, t_dense, t_cudnn,
            "steps %d-%d layer %d; %s" % (STEPS[0], STEPS[-1], LAYER, prof_note))
        for d in (sg, once, old):
            d.free()

    # STA: one window (3x3x3 tiles) for every head.
    def sta():
        st = sv.plan(pat("sta"), shape, 0)
        run = lambda s, q, k, v: (sv.lib.sieve_plan_set_step(st, s, LAYER),  # noqa: E731
                                  sv.attention(st, q, k, v, o, lse, stream))
        rec, err, (q, k, v) = evaluate(run, STEPS)
        t = bench(lambda: sv.attention(st, q, k, v, o, lse, stream))
        row("sta", "tiles 6x8x8, window 3x3x3 tiles for every head", "STA (HunyuanVideo): 3x3x3 of 6x8x8, 12 dense steps",
            rec, err, sv.lib.sieve_plan_density(st), t, t_dense, t_cudnn, "steps %d-%d" % STEPS)
        sv.lib.sieve_plan_free(st)

    # STA's mask search: calibrated on another video (seed 8), run on this one.
    def sta_search():
        path = "/tmp/sieve-sta-%s.txt" % name
        if os.path.exists(path):
            os.remove(path)
        calib = Workload(shape, seed=8)
        se = Dyn(sv, pat("sta", search="true"), shape)
        t_search = []
        for s in STEPS:
            cq, ck, cv = calib.at(sigma(s))
            t_search.append(timed(lambda: se.step(s, LAYER, cq, ck, cv, o, lse)))
        se.save(path)
        se.free()
        del calib
        fi = Dyn(sv, pat("sta", strategy=path), shape)
        rec, err, (q, k, v) = evaluate(lambda s, q, k, v: fi.step(s, LAYER, q, k, v, o, lse), STEPS)
        dens = fi.density()
        t = bench(lambda: fi.step(STEPS[-1], LAYER, q, k, v, o, lse))
        with open(path) as f:
            chosen = [ln.split()[3:] for ln in f if ln.startswith("at ")]
        counts = {}
        for c in sum(chosen, []):
            counts[c] = counts.get(c, 0) + 1
        row("sta, mask search", "STA's 6 Wan candidates, searched on another video at steps %d-%d" % STEPS,
            "STA: L2 vs full per (step, layer, head), every row, averaged over prompts",
            rec, err, dens, t, t_dense, t_cudnn,
            "chose %s; a search step (full attention + 7-pass profiling) %.1f ms" % (
                ", ".join("%s x%d" % kv for kv in sorted(counts.items())), max(t_search)))
        fi.free()

    # LVSA: the two settings LVSA itself runs, its examples' defaults (the
    # pattern's: interval 4, no rotation) and its README's (rotation with
    # the interval auto-spaced to the model's training length, which is
    # dense at or below it), and sieve's own rotation over a fixed interval
    # of 4 (lvsa's default before it followed LVSA's examples).
    train = {"hunyuan": 33, "wan": 21, "cogvideox": 13}[model]

    def lvsa():
        for settings, params, orig in (
                ("defaults", {}, "LVSA's examples: +-3 frames, frame 0 and every 4th, no rotation"),
                ("train_frames=%d rotate=true" % train, {"train_frames": train, "rotate": "true"},
                 "LVSA's README: --rotate-keyframes --auto-keyframes, %d latent frames" % train),
                ("rotate_fixed=true (sieve's own: rotation over interval 4)", {"rotate_fixed": "true"}, "-")):
            lv = sv.plan(pat("lvsa", **params), shape, 0)
            run = lambda s, q, k, v: (sv.lib.sieve_plan_set_step(lv, s, LAYER),  # noqa: E731
                                      sv.attention(lv, q, k, v, o, lse, stream))
            rec, err, (q, k, v) = evaluate(run, STEPS)
            t = bench(lambda: sv.attention(lv, q, k, v, o, lse, stream))
            row("lvsa", settings, orig, rec, err, sv.lib.sieve_plan_density(lv), t, t_dense, t_cudnn,
                "steps %d-%d" % STEPS)
            sv.lib.sieve_plan_free(lv)

    # AdaSpa on its own schedule (the pattern's defaults): steps 0-9 dense,
    # the first search at step 10 (its attention pass writes the LSE, which
    # is cached), the selection reused at 11-29, the LSE-cached search at 30
    # (block masses from step 10's LSE, no dense pass; the step runs on its
    # new selection), reused at 31-49. Quality at every sparse step, 11-49
    # (the proxy's noise falls with the step, so the inputs drift away from
    # those searched); times from a second pass, which a dense step (9)
    # starts as a new run.
    def adaspa():
        ad = Dyn(sv, pat("adaspa"), shape)
        recs, errs, dens, at = [], [], [], {}
        for s in range(10, 50):
            q, k, v = work.at(sigma(s))
            chose = ad.step(s, LAYER, q, k, v, o, lse)
            if chose != (s in (10, 30)):
                raise RuntimeError("step %d: searched %d, the schedule says %d" % (s, chose, s in (10, 30)))
            if s == 10:  # a dense pass: exact
                continue
            ro, rl = exact_rows(q, k, v, rows)
            r, e = quality(o, lse, ro, rl, rows)
            recs.append(r)
            errs.append(e)
            dens.append(ad.density())
            at[s] = r
        t_reuse = bench(lambda: ad.step(49, LAYER, q, k, v, o, lse))
        ins = {s: work.at(sigma(s)) for s in (9, 10, 30)}
        times = {9: [], 10: [], 30: []}
        for _ in range(3):
            for s in (9, 10, 30):
                times[s].append(timed(lambda: ad.step(s, LAYER, *ins[s], o, lse)))
        t9, t10, t30 = (sorted(times[s])[1] for s in (9, 10, 30))
        whole = 10 * t9 + t10 + t30 + 38 * t_reuse
        row("adaspa", "defaults: top-k, sparsity 0.8, tiers, text sink, blocks 64; dense 0-9, searches at 10 and "
            "30 (30 from step 10's cached LSE)", "AdaSpa: sparsity 0.8, blocks 64, dense to step 10, searches at 10, 30",
            sum(recs) / len(recs), sum(errs) / len(errs), sum(dens) / len(dens), t_reuse, t_dense, t_cudnn,
            "recall and density over steps 11-49 (recall %.4f at 11, %.4f at 29, %.4f at 30, %.4f at 49; block "
            "density %.3f to 29, %.3f from 30); ms per step: a reuse step; first search (step 10) %.1f ms = %.2fx "
            "sieve dense; LSE-cached search (step 30) %.1f ms = %.2fx a reuse step; a dense step (0-9) %.1f ms; the "
            "50 steps of one layer %.0f ms = %.2fx sieve dense's %.0f" % (
                at[11], at[29], at[30], at[49], dens[0], dens[-1], t10, t10 / t_dense, t30, t30 / t_reuse, t9,
                whole, 50 * t_dense / whole, 50 * t_dense))
        del ins
        ad.free()

    only = a.methods.split(",") if a.methods else None
    for label, fn in (("svg", svg), ("sta", sta), ("sta-search", sta_search), ("lvsa", lvsa), ("adaspa", adaspa)):
        if only is None or label in only:
            guarded(label, fn)
    sv.lib.sieve_plan_free(dense)
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="hunyuan-720p,wan-1.3b-480p,cogvideox-1.5")
    ap.add_argument("--methods", default="")
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    sv = Sieve()
    pats = os.path.join(os.environ.get("SIEVE_SOURCE_DIR", os.path.join(HERE, "..")), "patterns")
    lines = ["| shape | method | settings | original's setting | recall | O rel err | density | ms per step | "
             "vs sieve dense | vs cuDNN | notes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    print("\n".join(lines), flush=True)
    for name in a.shapes.split(","):
        try:
            run_shape(sv, name, a, pats, lines)
        except Exception as ex:
            lines.append("| %s | failed: %s |" % (name, str(ex).replace("|", "/")[:300]))
            print(lines[-1], flush=True)
        if a.out:
            with open(a.out, "w") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
