"""sieve.parallel on 2 GPUs against 1: hunyuan-720p, Ulysses over NCCL.

    torchrun --nproc_per_node 2 python/tests/gpu/parallel_2gpu.py [--out DIR]

For frame_window, lvsa and adaspa (a dynamic plan: its per-head search
state lives on the rank that owns the head), every rank makes the same bf16
inputs; rank 0 runs the whole call on one GPU, then both ranks run it
under Ulysses (each rank 12 of the 24 heads, all 118,800 + text tokens).
Checks, per pattern and step:
  - the 2-GPU output equals the 1-GPU output within bf16 tolerance
    (relative L2 error <= 1e-2, sieve's tolerance for bf16);
  - the attention step (all-to-alls included, slowest rank) is >= 1.8x
    faster on 2 GPUs than on 1, timed in the same run.
Prints a table last and writes parallel_2gpu.json under --out.
"""
import argparse
import json
import os
import statistics
import sys

import sieve.parallel as sp

sp.setup_env()  # NVLink multicast off, before NCCL starts

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import sieve  # noqa: E402

PATTERNS = {"frame_window": [0], "lvsa": [0, 1], "adaspa": [0, 1, 2]}
TOL, SPEEDUP, ITERS = 1e-2, 1.8, 10


def timed(fn, iters):
    """Median milliseconds of fn() over iters runs, the slowest rank's."""
    out = []
    for _ in range(iters):
        dist.barrier()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        t = torch.tensor([a.elapsed_time(b)], device="cuda")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        out.append(t.item())
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--shape", default="hunyuan-720p")
    args = ap.parse_args()
    sp.init("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world == 2, "run with torchrun --nproc_per_node 2"
    preset = sieve.shape_preset(args.shape)
    grid = (preset.frames, preset.height, preset.width)
    rows = []
    for name, steps in PATTERNS.items():
        # lvsa as first run here: rotating anchors (sieve's rotate_fixed).
        pat = sieve.Pattern(name, **({"rotate_fixed": True} if name == "lvsa" else {}))
        usp = sp.Ulysses(pat, grid=grid, text=preset.text, text_after=bool(preset.text_after),
                         layout="bshd")
        shape = usp.shape(1, preset.heads, preset.head_dim)
        S, H, D = shape.tokens, shape.heads, shape.head_dim
        g = torch.Generator(device="cuda").manual_seed(1)
        q, k, v = (torch.randn(1, S, H, D, device="cuda", dtype=torch.bfloat16, generator=g)
                   for _ in range(3))
        one = sieve.Attention(pat, grid=grid, text=preset.text, text_after=bool(preset.text_after),
                              layout="bshd", layer=0)
        b, e = usp.bounds(S)[rank]
        qs, ks, vs = (x[:, b:e].contiguous() for x in (q, k, v))
        for step in steps:
            # Outputs first (adaspa searches at its search steps: each path
            # runs the step once before it is timed).
            o1 = one(q, k, v, step=step) if rank == 0 else None
            o2 = usp(qs, ks, vs, step=step)
            # Shards may differ by a token: gathered padded, then trimmed.
            bounds = usp.bounds(S)
            n = max(y - x for x, y in bounds)
            pad = torch.zeros(1, n, H, D, device="cuda", dtype=o2.dtype)
            pad[:, :o2.shape[1]] = o2
            parts = [torch.empty_like(pad) for _ in bounds]
            dist.all_gather(parts, pad)
            err = None
            if rank == 0:
                full = torch.cat([p[:, :y - x] for p, (x, y) in zip(parts, bounds)], dim=1).float()
                err = ((full - o1.float()).norm() / o1.float().norm()).item()
            t1 = timed((lambda: one(q, k, v, step=step)) if rank == 0 else (lambda: None), ITERS)
            t2 = timed(lambda: usp(qs, ks, vs, step=step), ITERS)
            if rank == 0:
                rows.append({"pattern": name, "step": step, "rel_err": err, "ms_1gpu": t1,
                             "ms_2gpu": t2, "speedup": t1 / t2,
                             "pass": err <= TOL and t1 / t2 >= SPEEDUP})
    ok = True
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "parallel_2gpu.json"), "w") as f:
            json.dump({"shape": args.shape, "device": torch.cuda.get_device_name(),
                       "rows": rows}, f, indent=1)
        print("%-13s %4s %9s %9s %9s %7s %s" % ("pattern", "step", "rel_err", "1gpu_ms", "2gpu_ms",
                                              "speedup", "pass"))
        for r in rows:
            print("%-13s %4d %9.2e %9.2f %9.2f %7.2f %s" % (r["pattern"], r["step"], r["rel_err"],
                  r["ms_1gpu"], r["ms_2gpu"], r["speedup"], r["pass"]))
        ok = all(r["pass"] for r in rows)
    flag = torch.tensor([int(ok)], device="cuda")
    dist.broadcast(flag, 0)
    dist.destroy_process_group()
    sys.exit(0 if flag.item() else 1)


if __name__ == "__main__":
    main()
