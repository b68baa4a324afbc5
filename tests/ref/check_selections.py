#!/usr/bin/env python3
"""sieve's run-time choices against independent references of the originals.

For each seed method that chooses at run time, a reference written from
the original (paper and official code, cited per function; not from sieve's
code) takes the same inputs, computes its choice in float64 with torch, and
the script compares it with what sieve's dynamic plan chose (read back
through sieve_dynplan_blocks / sieve_dynplan_classes):

  adaspa  blockified top-k per query block at a fixed sparsity, the
          head-adaptive tiers by recall, the text sink, and the LSE-cached
          re-search of a later step (arXiv 2502.21079 §4.1-4.3);
  svg     each head's class, spatial or temporal, by the sampled queries'
          error against full attention (Sparse VideoGen's sample_mse);
  sta     each head's window among the mask-search candidates, by the L2
          loss against full attention (FastVideo's STA mask search), and
          the window the mask-search file keeps.

Inputs are fresh random each run (the seed is printed; --seed repeats one),
with q and k built so that heads clearly prefer some blocks, classes or
windows, plus unstructured heads. Shapes: several, among them ragged ones
(blocks do not divide the sequence) with text before or after the video and
padding past the prompt's real length.

Choices are compared exactly. Where the reference's scores tie within float
error (the kernel works in fp32 from bf16 inputs), any of the tied choices
is accepted and counted as a tie; every other difference is a mismatch.
Exit status 0 when nothing mismatched.

Needs a GPU, torch, and libsieve: SIEVE_LIB_DIR (the build), SIEVE_PATTERNS
(the patterns/ folder); python/ is put on the path from this file's place.
Usage: check_selections.py [--seed N] [--only adaspa,svg,sta]
"""
import argparse
import math
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
os.environ.setdefault("SIEVE_PATTERNS", os.path.join(HERE, "..", "..", "patterns"))

from sieve import core  # noqa: E402

DEV = os.environ.get("SIEVE_REF_DEVICE", "cuda")
F64 = torch.float64

# Scores within this relative distance of each other are ties: sieve computes
# in fp32 (tensor-core Q K^T, exp2, the attention kernel's LSE), the
# reference in float64 from the same bf16 values.
RTOL = 2e-3

# --corrupt: a negative control. sieve's answers are altered after they are
# read back (one block, one head's top-k, one class, one window per check),
# and every check must then report a mismatch.
CORRUPT = False


class Tally:
    """Counts per check: compared, equal, accepted ties, mismatches."""

    def __init__(self):
        self.rows = []
        self.bad = 0

    def add(self, name, n, ties, bad, note=""):
        self.rows.append((name, n, ties, bad, note))
        self.bad += bad
        flag = "FAIL" if bad else "ok  "
        print(f"{flag} {name}: {n} compared, {n - ties - bad} equal, {ties} ties, {bad} mismatched"
              + (f"; {note}" if note else ""), flush=True)


# ----------------------------------------------------------------- tokens

def coords(shape):
    """Per token in model order: (t, y, x), -1 for text; text index, -1 for video."""
    T, Y, X, N = shape.frames, shape.height, shape.width, shape.text
    V = T * Y * X
    i = torch.arange(V, device=DEV)
    t, y, x = i // (Y * X), (i // X) % Y, i % X
    neg = torch.full((N,), -1, device=DEV, dtype=torch.long)
    txt = torch.arange(N, device=DEV)
    vid_txt = torch.full((V,), -1, device=DEV, dtype=torch.long)
    cat = (lambda v, n: torch.cat([v, n])) if shape.text_after else (lambda v, n: torch.cat([n, v]))
    return cat(t, neg), cat(y, neg), cat(x, neg), cat(vid_txt, txt)


def valid_keys(shape, tlen):
    """Padding past the prompt's tlen text tokens is no key and no query."""
    _, _, _, ti = coords(shape)
    return (ti < 0) | (ti < tlen)


def bf16(x):
    return x.to(torch.bfloat16).contiguous()


# ----------------------------------------------------------------- attention

def softmax_rows(s):
    """Softmax of score rows with -inf for masked keys; all-masked rows give 0."""
    m = s.amax(-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = torch.exp(s - m)
    z = p.sum(-1, keepdim=True)
    return torch.where(z > 0, p / torch.where(z > 0, z, torch.ones_like(z)), torch.zeros_like(p))


def run_sieve(plan, q, k, v, step, layer):
    B, H, S, D = q.shape
    o = torch.empty_like(q)
    lse = torch.empty((B, H, S), device=DEV, dtype=torch.float32)
    plan.run(core.tensor(q), core.tensor(k), core.tensor(v), core.tensor(o), lse.data_ptr(),
             step=step, layer=layer)
    torch.cuda.synchronize()
    return o, lse


# ======================================================== the proxy workload

def proxy_inputs(shape, step, gen):
    """q, k, v [B, H, S, D] of bench/proxy.py's workload (a moving video cut
    into patch tokens, projected per head, 3-D RoPE) at the noise level of
    `step`, one video per batch element (seeds drawn from gen, so the
    same gen state gives the same videos at another step), and random
    text tokens where the shape has text."""
    sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
    import proxy  # noqa: E402  (imports triton, as the benchmark does)
    B, H, D, N = shape.batch, shape.heads, shape.head_dim, shape.text
    vid = core.Shape(1, H, D, shape.frames, shape.height, shape.width, 0, 0)
    seeds = [int(x) for x in torch.randint(0, 2 ** 31 - 1, (B,), generator=gen, device=DEV)]
    tg = torch.Generator(device=DEV)
    tg.manual_seed(seeds[0])
    text = [torch.randn((1, H, N, D), generator=tg, device=DEV) for _ in range(3)]
    out = [[], [], []]
    for b in range(B):
        qkv = proxy.Workload(vid, seed=seeds[b]).at(proxy.sigma(step))
        for i in range(3):
            x = qkv[i].float()
            x = torch.cat([x, text[i]], 2) if shape.text_after else torch.cat([text[i], x], 2)
            out[i].append(x)
    return tuple(bf16(torch.cat(o, 0)) for o in out)


# ======================================================== AdaSpa
# arXiv 2502.21079v1 (no public code), as issue 11 reads it:
#   §4.1 eq. 13-14: the block's attention mass, the sum of softmax(Q K^T)
#     over its token pairs, and per query block the top-k key blocks;
#   §4.3 (2) "Row Wise": every query block keeps the same count, the share
#     1 - s of its key blocks (s = 0.8); blocks of 64; searches at {10, 30};
#   §4.2 head-adaptive: each head's recall (eq. 9, the kept mass over the
#     whole mass) at s; with n heads above 0.8, the n highest move to
#     (1 + s) / 2 and the n lowest to (3 s - 1) / 2;
#   §4.3 (1) text sink: video-text, text-video and text-text blocks kept;
#   §4.2 LSE-cached search: a later search takes its masses from Q, K of
#     that step and the LSE of the first search's attention.
# Where the paper leaves it open the reference takes adaspa.lua's stated
# choices: the count rounds up, n is at most half the heads, (3s-1)/2 below
# 0 is 0, recall ties go by head index, recall counts the sink's blocks.

def adaspa_masses(q, k, valid, bq, bk, lse=None):
    """Block masses [nq, nk] of one head (float64), and the row LSE."""
    S, D = q.shape
    s = (q @ k.T) / math.sqrt(D)
    s[:, ~valid] = -math.inf
    if lse is None:
        lse = torch.logsumexp(s, -1)
    live = valid & torch.isfinite(lse)
    p = torch.exp(s - torch.where(live, lse, torch.zeros_like(lse))[:, None])
    p[~live] = 0
    nq, nk = -(-S // bq), -(-S // bk)
    pp = torch.zeros((nq * bq, nk * bk), dtype=F64, device=DEV)
    pp[:S, :S] = p
    return pp.view(nq, bq, nk, bk).sum((1, 3)), lse


def adaspa_topk(s, nk):
    return max(1, min(nk, math.ceil((1 - s) * nk - 1e-9)))


def adaspa_sink(shape, tlen, n, bs):
    """Blocks of bs tokens holding a valid text token (the prompt's)."""
    lo = shape.frames * shape.height * shape.width if shape.text_after else 0
    hi = lo + min(tlen, shape.text)
    b = torch.arange(n, device=DEV)
    return (b * bs < hi) & ((b + 1) * bs > lo) & (lo < hi)


def adaspa_select(M, k, sink_q, sink_k):
    """The reference's selection [nq, nk] bool: each row's k heaviest (first
    block on equal mass) plus the sink; rows of a sink query block whole."""
    nq, nk = M.shape
    order = torch.sort(-M, dim=1, stable=True).indices[:, :k]
    sel = torch.zeros((nq, nk), dtype=torch.bool, device=DEV)
    sel.scatter_(1, order, True)
    sel |= sink_k[None, :]
    sel[sink_q] = True
    return sel


def adaspa_row_ok(m, k, got, sink_k, sink_row):
    """Whether a row sieve chose is a top-k of masses m up to RTOL ties."""
    nk = m.numel()
    if sink_row:
        return bool(got.all())
    tau = torch.sort(m, descending=True).values[k - 1]
    tol = RTOL * tau.abs() + 1e-12 * m.abs().sum()
    must_in, must_out = m > tau + tol, m < tau - tol
    free = got & ~sink_k          # blocks only the top-k can explain
    if bool((free & must_out).any()) or bool((must_in & ~got).any()):
        return False
    if bool((sink_k & ~got).any()):
        return False
    lo, hi = int(free.sum()), int((got & ~must_out).sum())
    return lo <= k <= hi and nk >= k


def adaspa_tiers(recall, s, thr=0.8):
    """Each head's sparsity from its recall (§4.2), and whether the split is a tie."""
    H = len(recall)
    n = min(sum(r > thr for r in recall), H // 2)
    order = sorted(range(H), key=lambda h: (-recall[h], h))
    sp = [s] * H
    lo = (3 * s - 1) / 2
    for i in range(n):
        sp[order[i]] = (1 + s) / 2
        sp[order[H - 1 - i]] = max(lo, 0.0)
    tie = any(abs(r - thr) < RECALL_TOL for r in recall)
    if 0 < n < H:  # the rank boundaries: the n-th and (n+1)-th, from both ends
        rs = sorted(recall, reverse=True)
        tie |= abs(rs[n - 1] - rs[n]) < RECALL_TOL or abs(rs[H - n] - rs[H - n - 1]) < RECALL_TOL
    return sp, tie


# sieve's recall (fp32 masses summed in double) against the reference's:
# measured at 1e-7; a tier decided closer than this is a tie.
RECALL_TOL = 1e-5


def adaspa_inputs(shape, kinds, gen, base=None, drift=0.0):
    """q, k, v [B, H, S, D]. 'peaky' heads: each query block leans on a few
    key blocks of its own (strongly: recall above 0.8 at s = 0.8); 'diffuse':
    the same, weakly; 'random': unstructured. With base, the step-10 inputs
    drifted a little (the pattern is stable across steps, §3)."""
    B, H, D, S = shape.batch, shape.heads, shape.head_dim, shape.tokens
    if base is not None:
        q, k, v = (x.float() + drift * torch.randn(x.shape, generator=gen, device=DEV) for x in base)
        return bf16(q), bf16(k), bf16(v)
    bs = 64
    nb = -(-S // bs)
    blk = torch.arange(S, device=DEV) // bs
    q = torch.empty((B, H, S, D), device=DEV)
    k = torch.empty((B, H, S, D), device=DEV)
    for b in range(B):
        for h in range(H):
            codes = torch.randn((nb, D), generator=gen, device=DEV)
            codes /= codes.norm(dim=1, keepdim=True)
            kind = kinds[h]
            if kind == "random":
                q[b, h] = 1.5 * torch.randn((S, D), generator=gen, device=DEV)
                k[b, h] = 1.5 * torch.randn((S, D), generator=gen, device=DEV)
                continue
            g = 7.0 if kind == "peaky" else 0.6
            npref = max(2, nb // 12)
            pref = torch.stack([torch.randperm(nb, generator=gen, device=DEV)[:npref] for _ in range(nb)])
            w = 0.6 + 0.4 * torch.rand((nb, npref), generator=gen, device=DEV)
            qb = (w[:, :, None] * codes[pref]).sum(1)  # [nb, D]
            q[b, h] = g * qb[blk] + 0.4 * torch.randn((S, D), generator=gen, device=DEV)
            k[b, h] = math.sqrt(D) * codes[blk] + 0.4 * torch.randn((S, D), generator=gen, device=DEV)
    v = torch.randn((B, H, S, D), generator=gen, device=DEV)
    return bf16(q), bf16(k), bf16(v)


def check_adaspa(tally, name, shape, tlen, kinds, gen, params=None, source="synthetic"):
    params = dict(params or {})
    pat = core.Pattern("adaspa", **params)
    sh = pat.shape(shape.batch, shape.heads, shape.head_dim, shape.frames, shape.height, shape.width,
                   shape.text, bool(shape.text_after))
    s = float(params.get("sparsity", 0.8))
    plan = core.DynPlan(pat, sh)
    plan.set_text_len(tlen)
    info = plan.info()
    bq, bk, nq, nk = info["block_q"], info["block_k"], info["q_blocks"], info["k_blocks"]
    B, H = sh.batch, sh.heads
    if source == "proxy":
        state = gen.get_state()
        qkv10 = proxy_inputs(sh, 10, gen)
        gen.set_state(state)  # the same videos, less noised at step 30
        qkv30 = proxy_inputs(sh, 30, gen)
    else:
        qkv10 = adaspa_inputs(sh, kinds, gen)
        qkv30 = adaspa_inputs(sh, kinds, gen, base=qkv10, drift=0.3)
    lse10 = {}
    tiers_ref = {}
    for step, (q, k, v) in ((10, qkv10), (30, qkv30)):
        run_sieve(plan, q, k, v, step, 0)
        assert plan.chose, f"adaspa searched no blocks at step {step}"
        blocks, topk, recall = plan.blocks()
        got = torch.frombuffer(bytearray(blocks), dtype=torch.uint8).view(B, H, nq, nk).to(DEV).bool()
        if CORRUPT:  # the first video row of the last head keeps one more block
            row = int((~adaspa_sink(sh, tlen[-1], nq, bq)).nonzero()[0])
            free = (~got[-1, -1, row]).nonzero().flatten()
            got[-1, -1, row, int(free[0])] = True
            topk = list(topk)
            topk[0] += 1
        rows = ties = bad = 0
        tier_n = tier_ties = tier_bad = 0
        moved = 0
        rec_err = 0.0
        for b in range(B):
            valid = valid_keys(sh, tlen[b])
            sink_q, sink_k = adaspa_sink(sh, tlen[b], nq, bq), adaspa_sink(sh, tlen[b], nk, bk)
            masses = []
            for h in range(H):
                qq, kk = q[b, h].to(F64), k[b, h].to(F64)
                if step == 10:
                    M, lse = adaspa_masses(qq, kk, valid, bq, bk)
                    lse10[b, h] = lse
                else:  # §4.2 LSE-cached: this step's Q, K with step 10's LSE
                    M, _ = adaspa_masses(qq, kk, valid, bq, bk, lse=lse10[b, h])
                masses.append(M)
            if step == 10:
                # §4.2: recall of each head at the base sparsity, then the tiers.
                k0 = adaspa_topk(s, nk)
                rec = []
                for h in range(H):
                    sel0 = adaspa_select(masses[h], k0, sink_q, sink_k)
                    tot = masses[h].sum()
                    rec.append(float((masses[h] * sel0).sum() / tot) if tot > 0 else 1.0)
                sp, tie = adaspa_tiers(rec, s) if params.get("head_adaptive", True) else ([s] * H, False)
                want = [adaspa_topk(x, nk) for x in sp]
                tiers_ref[b] = want
                moved += sum(x != s for x in sp)
                mine = recall[b * H:(b + 1) * H]
                adaptive = params.get("head_adaptive", True)
                for h in range(H):
                    if adaptive:
                        rec_err = max(rec_err, abs(mine[h] - rec[h]))
                    elif mine[h] != -1:
                        rec_err = math.inf  # no tiers: no recall measured
                tier_n += H
                diff = sum(topk[b * H + h] != want[h] for h in range(H))
                # A tie counts only where sieve's recall is the reference's
                # and sieve's tiers are what its own recall gives.
                own = [adaspa_topk(x, nk) for x in adaspa_tiers(mine, s)[0]] if adaptive else want
                if diff and tie and rec_err <= RECALL_TOL and own == topk[b * H:(b + 1) * H]:
                    tier_ties += diff
                elif diff:
                    tier_bad += diff
                    print(f"     tiers b{b}: sieve top-k {topk[b * H:(b + 1) * H]}, reference {want}, "
                          f"reference recall {[round(r, 4) for r in rec]}, sieve's "
                          f"{[round(r, 4) for r in recall[b * H:(b + 1) * H]]}")
            for h in range(H):
                # Compare the rows at the count sieve ran, so that a tier tie
                # is not counted again in every row.
                kk_ = topk[b * H + h]
                ref = adaspa_select(masses[h], kk_, sink_q, sink_k)
                g = got[b, h]
                for i in range(nq):
                    rows += 1
                    if bool((g[i] == ref[i]).all()):
                        continue
                    if adaspa_row_ok(masses[h][i], kk_, g[i], sink_k, bool(sink_q[i])):
                        ties += 1
                    else:
                        bad += 1
                        if bad <= 3:
                            m = masses[h][i]
                            print(f"     b{b} h{h} qb{i}: sieve {g[i].nonzero().flatten().tolist()}, "
                                  f"reference {ref[i].nonzero().flatten().tolist()}, top-k {kk_}, masses "
                                  f"{[round(float(x), 5) for x in m]}")
        tag = f"adaspa {name} step {step}"
        if step == 10:
            if rec_err > RECALL_TOL:
                tally.add(f"{tag} head recall", 1, 0, 1, f"|sieve - reference| = {rec_err:.2e}")
            tally.add(f"{tag} head tiers", tier_n, tier_ties, tier_bad,
                      f"{moved} of {B * H} heads moved tier; |recall - reference| <= {rec_err:.2e}")
            if source != "proxy" and kinds.count("peaky") and params.get("head_adaptive", True) and not moved:
                tally.add(f"{tag} tiers move heads", 1, 0, 1, "the case meant to move heads moved none")
        tally.add(f"{tag} blocks{' (LSE-cached)' if step == 30 else ''}", rows, ties, bad,
                  f"{nq}x{nk} blocks of {bq}, text valid {tlen}")
        if step == 10:
            plan_tiers = topk
        else:
            same = plan_tiers == topk
            tally.add(f"{tag} tiers kept from step 10", 1, 0, 0 if same else 1)


# ======================================================== masks (SVG, STA)

def svg_width_frames(sparsity, context_length, num_frame, frame_size):
    """svg/models/hyvideo/utils.py sparsity_to_width (5ce7b01)."""
    seq_len = context_length + num_frame * frame_size
    total = seq_len ** 2
    sparsity = (sparsity * total - 2 * seq_len * context_length) / total
    width = seq_len * (1 - math.sqrt(1 - sparsity))
    return width / frame_size


def svg_class_masks(shape, rows, budget, wan=False):
    """[2, ns, S] bool: the spatial and temporal masks of SVG's attention on
    the sampled rows, in model order (check_masks.py's svg_rows on tensors):
    the band |i - j| < floor(w F / 128) 128 in SVG's order, frame-major for
    spatial heads, position-major (patch T + frame) for temporal ones
    (placement.py); Wan: ceil, <=, and the layout's first F keys; text
    rows and columns dense."""
    t, y, x, ti = coords(shape)
    T, F, N = shape.frames, shape.height * shape.width, shape.text
    mul = svg_width_frames(budget, N, T, F)
    band = (math.ceil(mul * F / 128) if wan else math.floor(mul * F / 128)) * 128
    out = []
    for temporal in (False, True):
        patch = y * shape.width + x
        idx = patch * T + t if temporal else t * F + patch
        qi, ki = idx[rows][:, None], idx[None, :]
        d = (qi - ki).abs()
        m = (d <= band) | (ki < F) if wan else d < band
        text = (ti[rows] >= 0)[:, None] | (ti >= 0)[None, :]
        out.append(m | text)
    return torch.stack(out)


def svg_profiling_masks(shape, rows, wan=False):
    """[2, ns, S] bool: the masks SVG profiles a head under, on the sampled
    rows (get_attention_mask): the video cut into blocks of 128 tokens in
    SVG's order (frame-major, or patch T + frame for the temporal class, as
    its reshape-permute gives), blocks i, j kept when |i - j| < thr // 128
    with thr = 1.5 F (svg/models/hyvideo/utils.py at 1a384ee), text rows and
    columns dense; Wan: thr = 2 F and the first F keys of SVG's order (its
    "First Frame Sink", svg/models/wan/utils.py at 3ffe25f)."""
    t, y, x, ti = coords(shape)
    T, F = shape.frames, shape.height * shape.width
    thr = (2 * F if wan else math.floor(F * 1.5)) // 128
    out = []
    for temporal in (False, True):
        patch = y * shape.width + x
        idx = patch * T + t if temporal else t * F + patch
        m = ((idx[rows] // 128)[:, None] - (idx // 128)[None, :]).abs() < thr
        vid = (ti[rows] < 0)[:, None] & (ti < 0)[None, :]
        m &= vid
        if wan:
            m |= vid & (idx < F)[None, :]
        text = (ti[rows] >= 0)[:, None] | (ti >= 0)[None, :]
        out.append(m | text)
    return torch.stack(out)


def sta_masks(shape, rows, kernels, tile):
    """[C, ns, S] bool: STA's window per candidate kernel size in tiles
    (FastVideo fastvideo-kernel/tests/support_flex_sta.py generate_sta_mask,
    2f3d407: centre = clamp(q_tile, k // 2, tiles - 1 - k // 2), keys within
    k // 2 tiles of it on every axis; image to text and text to all)."""
    t, y, x, ti = coords(shape)
    dims = (shape.frames, shape.height, shape.width)
    tiles = [d // s for d, s in zip(dims, tile)]
    pos = (t, y, x)
    out = []
    for kern in kernels:
        ok = torch.ones((len(rows), shape.tokens), dtype=torch.bool, device=DEV)
        for a in range(3):
            half = kern[a] // 2
            qt, kt = pos[a][rows] // tile[a], pos[a] // tile[a]
            centre = torch.clamp(qt, min=half, max=tiles[a] - 1 - half)
            ok &= (centre[:, None] - kt[None, :]).abs() <= half
        text = (ti[rows] >= 0)[:, None] | (ti >= 0)[None, :]
        out.append(ok | text)
    return torch.stack(out)


def sampled_errors(q, k, v, rows, masks, valid):
    """Per class, the mean squared difference of the sampled rows' output
    under its mask to full attention (SVG hyvideo/attention.py sample_mse;
    STA's L2 loss): [C], and the same over the full output's squared norm
    (the measure sieve reports): [C]. Padding keys are no keys, padding rows
    give 0."""
    D = q.shape[-1]
    s = (q[rows].to(F64) @ k.to(F64).T) / math.sqrt(D)
    s[:, ~valid] = -math.inf
    live = valid[rows][:, None]
    vv = v.to(F64)
    full = softmax_rows(s) @ vv * live
    errs, rel = [], []
    ref = float((full ** 2).sum())
    for m in masks:
        o = softmax_rows(s.masked_fill(~m, -math.inf)) @ vv * live
        d = float(((o - full) ** 2).sum())
        errs.append(d / o.numel())
        rel.append(d / ref if ref > 0 else 0.0)
    return errs, rel


def argmin_tie(errs):
    """The first class of least error, and whether another is within RTOL."""
    best = min(range(len(errs)), key=lambda c: (errs[c], c))
    e = errs[best]
    tie = any(c != best and errs[c] - e <= RTOL * max(abs(e), 1e-30) for c in range(len(errs)))
    return best, tie


class Compared:
    """Counts of one kind of choice over inputs and heads: sieve's errors
    against the reference's (en, ebad, emax), its choices against the
    reference's argmin (n, ties, bad), and the reference's errors per
    (input, head) in order."""

    def __init__(self):
        self.n = self.ties = self.bad = self.en = self.ebad = 0
        self.emax = 0.0
        self.errs = []


def compare_choices(got, sh, tlen, q, k, v, rows, masks, klass, err, names, why, tag=""):
    """One choice per (input, head) among the masks, by the sampled rows'
    error against full attention (SVG's classes, STA's windows): sieve's
    errors (err, len(names) per head) must be the reference's within 2%,
    and its choice (klass) the reference's argmin or tied with it.
    why(h) says what head h's inputs prefer; tag starts each message."""
    B, H, C = sh.batch, sh.heads, len(names)
    for b in range(B):
        valid = valid_keys(sh, tlen[b])
        for h in range(H):
            i = b * H + h
            errs, rel = sampled_errors(q[b, h], k[b, h], v[b, h], rows, masks, valid)
            got.errs.append(errs)
            for c in range(C):
                mine = err[i * C + c]
                got.en += 1
                got.emax = max(got.emax, abs(mine - rel[c]) / max(rel[c], 1e-30))
                if not err_close(mine, rel[c]):
                    got.ebad += 1
                    if got.ebad <= 3:
                        print(f"     {tag}b{b} h{h} {names[c]}: sieve's error {mine:.6e}, reference {rel[c]:.6e}")
            want, tie = argmin_tie(errs)
            got.n += 1
            if klass[i] == want:
                continue
            if tie:
                got.ties += 1
                continue
            got.bad += 1
            print(f"     {tag}b{b} h{h} ({why(h)}): sieve {names[klass[i]]}, reference {names[want]}, reference "
                  f"error {[f'{e:.3e}' for e in errs]}, sieve's {err[i * C:(i + 1) * C]}")
    return got


def err_close(mine, ref):
    """sieve's relative error (fp32) against the reference's (float64)."""
    return abs(mine - ref) <= 0.02 * abs(ref) + 1e-6


def class_inputs(shape, prefs, gen, tile=None):
    """q, k, v [B, H, S, D] whose heads attend by a token grouping: 'frame'
    (same frame: spatial), 'position' (same (y, x) across frames:
    temporal), 'tile:<i>' (a window of tiles, from STA candidate i),
    'random' (none). Text tokens are random."""
    B, H, D, S = shape.batch, shape.heads, shape.head_dim, shape.tokens
    t, y, x, ti = coords(shape)
    vid = ti < 0
    q = torch.randn((B, H, S, D), generator=gen, device=DEV)
    k = torch.randn((B, H, S, D), generator=gen, device=DEV)
    for b in range(B):
        for h in range(H):
            kind = prefs[h]
            if kind == "random":
                continue
            if kind == "frame":
                key = t
            elif kind == "position":
                key = y * shape.width + x
            else:  # a coarse tile id: keys of nearby tiles share a code
                kt, ky, kx = (int(c) for c in kind.split(":")[1].split(","))
                key = ((t // (tile[0] * kt)) * 10000 + (y // (tile[1] * ky)) * 100 + x // (tile[2] * kx))
            uniq, grp = torch.unique(key[vid], return_inverse=True)
            codes = torch.randn((len(uniq), D), generator=gen, device=DEV)
            codes /= codes.norm(dim=1, keepdim=True)
            q[b, h, vid] = 5.0 * codes[grp] + 0.5 * torch.randn((int(vid.sum()), D), generator=gen, device=DEV)
            k[b, h, vid] = math.sqrt(D) * codes[grp] + 0.5 * torch.randn((int(vid.sum()), D), generator=gen, device=DEV)
    v = torch.randn((B, H, S, D), generator=gen, device=DEV)
    return bf16(q), bf16(k), bf16(v)


# ======================================================== SVG

def check_svg(tally, name, shape, tlen, prefs, gen, model="hunyuan", budget=None, source="synthetic",
              profile_masks=None):
    params = {"model": model}
    if budget is not None:
        params["budget"] = budget
    if profile_masks is not None:
        params["profile_masks"] = profile_masks
    # SVG profiles under its get_attention_mask masks; CogVideoX's are files
    # the repository does not ship, so there the attention's bands.
    own = profile_masks if profile_masks is not None else model != "cogvideox"
    budget = budget if budget is not None else {"hunyuan": 0.25, "wan": 0.3, "cogvideox": 0.25}[model]
    pat = core.Pattern("svg", **params)
    sh = pat.shape(shape.batch, shape.heads, shape.head_dim, shape.frames, shape.height, shape.width,
                   shape.text, bool(shape.text_after))
    plan = core.DynPlan(pat, sh)
    plan.set_text_len(tlen)
    B, H = sh.batch, sh.heads
    got = Compared()
    band_diff = pad_diff = 0
    why = (lambda h: prefs[h]) if prefs else (lambda h: source)
    for rep in range(2):
        q, k, v = proxy_inputs(sh, 20, gen) if source == "proxy" else class_inputs(sh, prefs, gen)
        run_sieve(plan, q, k, v, 20, 10)
        assert plan.chose, "svg profiled nothing at step 20, layer 10"
        klass, err, rows, names = plan.classes()
        assert names == ["spatial", "temporal"], names
        if CORRUPT:
            klass[0] = 1 - klass[0]
            err[0] = err[0] * 1.5 + 1e-3
        r = torch.tensor(rows, device=DEV, dtype=torch.long)
        bands = svg_class_masks(sh, r, budget, wan=model == "wan")
        masks = svg_profiling_masks(sh, r, wan=model == "wan") if own else bands
        first = len(got.errs)
        compare_choices(got, sh, tlen, q, k, v, r, masks, klass, err, names, why, tag=f"rep {rep} ")
        for b in range(B):  # information: the choice under the bands, and with padding keys
            valid = valid_keys(sh, tlen[b])
            for h in range(H):
                want, _ = argmin_tie(got.errs[first + b * H + h])
                pband, _ = argmin_tie(sampled_errors(q[b, h], k[b, h], v[b, h], r, bands, valid)[0])
                band_diff += pband != want
                # sample_mse itself softmaxes over every key, padding too.
                ppad, _ = argmin_tie(sampled_errors(q[b, h], k[b, h], v[b, h], r, masks, torch.ones_like(valid))[0])
                pad_diff += ppad != want
    n = got.n
    tally.add(f"svg {name} profiling errors", got.en, 0, got.ebad, f"largest relative difference {got.emax:.2e}")
    tally.add(f"svg {name} head classes", n, got.ties, got.bad,
              f"model {model}, budget {budget}, profiled under "
              f"{'SVG profiling masks' if own else 'the attention bands'}; information, against the reference's "
              f"choice: {band_diff} of {n} heads differ when profiled under the attention's bands, {pad_diff} "
              f"with the padding keys counted (sample_mse counts them)")


# ======================================================== STA

def parse_search_file(path, step, layer):
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) > 3 and parts[0] == "at" and int(parts[1]) == step and int(parts[2]) == layer:
                return parts[3:]
    return None


def check_sta(tally, name, shape, tlen, tile, kernels, prefs, gen, source="synthetic"):
    cand = " ".join("%d,%d,%d" % kk for kk in kernels)
    pat = core.Pattern("sta", tile_t=tile[0], tile_y=tile[1], tile_x=tile[2], search=True, candidates=cand)
    sh = pat.shape(shape.batch, shape.heads, shape.head_dim, shape.frames, shape.height, shape.width,
                   shape.text, bool(shape.text_after))
    plan = core.DynPlan(pat, sh)
    plan.set_text_len(tlen)
    B, H = sh.batch, sh.heads
    step, layer = 20, 3
    q, k, v = proxy_inputs(sh, step, gen) if source == "proxy" else class_inputs(sh, prefs, gen, tile=tile)
    run_sieve(plan, q, k, v, step, layer)
    assert plan.chose, "sta searched nothing"
    klass, err, rows, names = plan.classes()
    assert names == ["%dx%dx%d" % kk for kk in kernels], names
    if CORRUPT:
        klass[0] = (klass[0] + 1) % len(names)
        err[0] = err[0] * 1.5 + 1e-3
    r = torch.tensor(rows, device=DEV, dtype=torch.long)
    masks = sta_masks(sh, r, kernels, tile)
    why = (lambda h: prefs[h]) if prefs else (lambda h: source)
    got = compare_choices(Compared(), sh, tlen, q, k, v, r, masks, klass, err, names, why)
    summed = [[sum(got.errs[b * H + h][c] for b in range(B)) for c in range(len(kernels))] for h in range(H)]
    tally.add(f"sta {name} search errors", got.en, 0, got.ebad, f"largest relative difference {got.emax:.2e}")
    tally.add(f"sta {name} windows per input", got.n, got.ties, got.bad, f"candidates {cand}")
    # The mask-search file keeps the least loss summed over the inputs
    # (STA_configuration.py select_best_mask_strategy averages the prompts).
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sta.search")
        plan.save_search(path)
        chosen = parse_search_file(path, step, layer)
    if CORRUPT and chosen:
        chosen[-1] = names[(names.index(chosen[-1]) + 1) % len(names)]
    fn = ft = fb = 0
    if chosen is None or len(chosen) != H:
        tally.add(f"sta {name} mask-search file", 1, 0, 1, f"no entry for step {step} layer {layer}")
        return
    for h in range(H):
        want, tie = argmin_tie(summed[h])
        fn += 1
        if chosen[h] != names[want]:
            if tie:
                ft += 1
            else:
                fb += 1
                print(f"     file h{h}: sieve {chosen[h]}, reference {names[want]}")
    tally.add(f"sta {name} mask-search file", fn, ft, fb)


# ======================================================== runs

def guarded(tally, name, fn, *args, **kw):
    """Runs one check; an error in sieve or in the check is a failure, and
    the other checks still run."""
    try:
        fn(tally, name, *args, **kw)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        tally.add(f"{fn.__name__[6:]} {name}", 1, 0, 1, f"raised {type(e).__name__}: {e}")


def shape_of(B, H, D, T, Y, X, text, after):
    return core.Shape(B, H, D, T, Y, X, text, int(after))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", default="adaspa,svg,sta")
    ap.add_argument("--corrupt", action="store_true", help="alter sieve's answers: every check must fail")
    a = ap.parse_args(argv)
    global CORRUPT
    CORRUPT = a.corrupt
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"seed {seed} (--seed {seed} repeats this run)")
    gen = torch.Generator(device=DEV)
    gen.manual_seed(seed)
    only = set(a.only.split(","))
    tally = Tally()
    # Shapes: 2048 tokens, no text; 1440 + 77 text after (HunyuanVideo's
    # order), ragged, prompts of 50 and 77; 1650 + 40 text before
    # (CogVideoX's order), ragged, a prompt of 23.
    A = shape_of(1, 8, 64, 8, 16, 16, 0, False)
    Bs = shape_of(2, 6, 128, 6, 12, 20, 77, True)
    Cs = shape_of(1, 4, 64, 5, 15, 22, 40, False)
    if "adaspa" in only:
        peaky3 = ["peaky", "peaky", "peaky", "diffuse", "random", "diffuse", "random", "diffuse"]
        guarded(tally, "T8Y16X16", check_adaspa, A, [0], peaky3, gen)
        guarded(tally, "T6Y12X20+77 after", check_adaspa, Bs, [50, 77],
                ["peaky", "diffuse", "random", "peaky", "diffuse", "diffuse"], gen)
        guarded(tally, "T5Y15X22+40 before", check_adaspa, Cs, [23],
                ["diffuse", "peaky", "random", "diffuse"], gen)
        guarded(tally, "T8Y16X16 no tiers", check_adaspa, A, [0], peaky3, gen, {"head_adaptive": False})
        guarded(tally, "T6Y12X20+77 after proxy", check_adaspa, Bs, [50, 77], [], gen, source="proxy")
    if "svg" in only:
        guarded(tally, "T8Y16X16 wan", check_svg, A, [0],
                ["frame", "position"] * 3 + ["random", "frame"], gen, model="wan")
        # HunyuanVideo's budget of 0.25 leaves this short sequence a band of
        # 0 tokens (floor to 128): both classes would be the text alone.
        guarded(tally, "T6Y12X20+77 after", check_svg, Bs, [50, 77],
                ["frame", "position", "position", "frame", "random", "position"], gen, budget=0.5)
        guarded(tally, "T5Y15X22+40 before cogvideox", check_svg, Cs, [23],
                ["position", "frame", "random", "frame"], gen, model="cogvideox")
        guarded(tally, "T6Y12X20+77 after proxy", check_svg, Bs, [50, 77], [], gen, budget=0.5, source="proxy")
        guarded(tally, "T6Y12X20+77 after proxy, profile_masks=false", check_svg, Bs, [50, 77], [], gen,
                budget=0.5, source="proxy", profile_masks=False)
    if "sta" in only:
        kernels = [(3, 3, 3), (1, 3, 3), (3, 1, 1), (1, 1, 3)]
        guarded(tally, "T8Y16X16 tile 2x4x4", check_sta, A, [0], (2, 4, 4), kernels,
                ["tile:3,3,3", "tile:1,3,3", "tile:3,1,1", "tile:1,1,3", "random", "frame", "position",
                 "tile:1,3,3"], gen)
        guarded(tally, "T6Y12X20+77 after tile 2x4x4", check_sta, Bs, [50, 77], (2, 4, 4), kernels,
                ["tile:1,1,3", "tile:3,3,3", "position", "tile:3,1,1", "frame", "tile:1,3,3"], gen)
        guarded(tally, "T6Y15X22+40 before tile 3x5x11", check_sta, shape_of(1, 4, 64, 6, 15, 22, 40, False),
                [23], (3, 5, 11), [(1, 3, 1), (1, 1, 1), (1, 3, 2)],
                ["tile:1,3,1", "tile:1,1,1", "random", "position"], gen)
        guarded(tally, "T6Y12X20+77 after tile 2x4x4 proxy", check_sta, Bs, [50, 77], (2, 4, 4), kernels, [], gen,
                source="proxy")
    compared = sum(r[1] for r in tally.rows)
    ties = sum(r[2] for r in tally.rows)
    print(f"{compared} choices compared, {ties} ties accepted, {tally.bad} mismatched")
    if CORRUPT:
        clean = [r[0] for r in tally.rows if not r[3] and "kept from step 10" not in r[0]]
        print("negative control: " + ("every altered check failed" if not clean else
                                      "these checks missed the alteration: " + ", ".join(clean)))
    print(f"{len(tally.rows) - sum(1 for r in tally.rows if r[3])} passed, "
          f"{sum(1 for r in tally.rows if r[3])} failed")
    return 1 if tally.bad else 0


if __name__ == "__main__":
    sys.exit(main())
