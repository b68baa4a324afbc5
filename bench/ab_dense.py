"""Dense attention at several sieve configs beside FlashAttention-3, one process, same inputs.

For each shape: FA3 (the fa3-fwd wheel, where it imports) and sieve's dense
pattern at each config, sieve's output checked against FA3's (or torch's
cuDNN SDPA where FA3 is missing), then timed in --rounds interleaved rounds
(FA3 and every config once a round, each round in the opposite order of the
one before), each a triton.testing.do_bench median over rotating input sets.
An H100 at its power limit moves its clock by several percent within
seconds, as much as the gaps measured, so a ratio comes from one round (FA3
and the config timed side by side) and the table gives each config's
median time and the median and range of its per-round ratios. A config the
plan refuses is reported as such. A config may carry environment settings the kernel generator reads
(`@NAME=VALUE`, several joined by `+`), set only while its plan compiles:
the switches key the kernel cache, so each variant is its own kernel. A
config is bm/bn/warps/stages[/sched]; 0/0/0/0/sched is the default config
with that schedule (cg_attn_sched.h).
Usage:
  python3 bench/ab_dense.py --shapes cogvideox-1.5,wan-1.3b-480p \\
      --configs 128/128/12/2,192/128/16/2,0/0/0/0@SIEVE_BITS_AHEAD=0 [--rep 300] [--rounds 3] [--sets 2] [--csv FILE]
"""
import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import triton.testing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sieve_ctypes import Sieve  # noqa: E402
from compare import load_fa3, rel  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def bench(fn, sets, rep):
    i = [0]

    def step():
        fn(*sets[i[0] % len(sets)])
        i[0] += 1
    return triton.testing.do_bench(step, warmup=25, rep=rep, return_mode="median")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="cogvideox-1.5,wan-1.3b-480p,hunyuan-720p")
    ap.add_argument("--configs", default="0/0/0/0", help="bm/bn/warps/stages,...; 0/0/0/0: the default")
    ap.add_argument("--rep", type=int, default=300, help="do_bench rep, ms")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every kernel")
    ap.add_argument("--sets", type=int, default=2)
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    fa3 = load_fa3()
    sv = Sieve()
    pat = sv.pattern(os.path.join(ROOT, "patterns", "dense.lua"))
    rows = []
    for name in a.shapes.split(","):
        shape = sv.shape(name)
        B, H, S, D = 1, shape.heads, shape.tokens, shape.head_dim
        flops = 4.0 * B * H * S * S * D
        sets = [[torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
                for _ in range(a.sets)]
        o = torch.empty(B, H, S, D, device="cuda", dtype=torch.bfloat16)
        lse = torch.empty(B, H, S, device="cuda", dtype=torch.float32)
        stream = torch.cuda.current_stream().cuda_stream

        # (label, timed function, its input sets, rel. error, plan or None)
        kernels = []
        if fa3 is not None:
            bshd = [[x.transpose(1, 2).contiguous() for x in st] for st in sets]
            out = fa3(*bshd[0])
            ref = (out[0] if isinstance(out, tuple) else out).transpose(1, 2).contiguous()
            kernels.append(("fa3", lambda q, k, v: fa3(q, k, v), bshd, None, None))
            del out
        else:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                ref = F.scaled_dot_product_attention(*sets[0])
        for spec in a.configs.split(","):
            cfg_s, _, env_s = spec.partition("@")
            cfg = tuple(int(x) for x in cfg_s.split("/"))
            env = dict(kv.split("=", 1) for kv in env_s.split("+")) if env_s else {}
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                plan = sv.plan(pat, shape, 0, None if not any(cfg) else cfg)
            except Exception as e:  # noqa: BLE001 - a refused config is a result
                print("%-14s %-22s refused: %s" % (name, "sieve " + spec, e), flush=True)
                rows.append((name, "sieve " + spec, None, 0.0, None, "refused: %s" % e))
                continue
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            used = "/".join(map(str, sv.plan_config(plan))) + ("@" + env_s if env_s else "")
            q, k, v = sets[0]
            o.fill_(float("nan"))
            sv.attention(plan, q, k, v, o, lse, stream)
            torch.cuda.synchronize()
            kernels.append(("sieve " + used, lambda q, k, v, p=plan: sv.attention(p, q, k, v, o, lse, stream),
                            sets, rel(o, ref), plan))

        times = [[] for _ in kernels]
        for r in range(a.rounds):
            order = list(range(len(kernels)))
            for i in (order if r % 2 == 0 else order[::-1]):
                label, fn, ins, _, _ = kernels[i]
                times[i].append(bench(fn, ins, a.rep))
            print("%-14s round %d: %s" % (name, r + 1, ", ".join(
                "%s %.3f" % (kernels[i][0], times[i][r]) for i in range(len(kernels)))), flush=True)
        for i, (label, _, _, err, plan) in enumerate(kernels):
            ms = statistics.median(times[i])
            tf = flops / (ms * 1e-3) / 1e12
            note = ""
            if fa3 is not None and plan is not None:
                ratios = sorted(f / t for f, t in zip(times[0], times[i]))
                note = "%.3fx FA3 speed (rounds %.3f-%.3f)" % (statistics.median(ratios), ratios[0], ratios[-1])
            rows.append((name, label, ms, tf, err, note))
            print("%-14s %-40s %9.3f ms %6.1f TFLOP/s %s %s" % (
                name, label, ms, tf, "" if err is None else "rel.err %.1e" % err, note), flush=True)
            if plan is not None:
                sv.lib.sieve_plan_free(plan)
        del sets, kernels
        torch.cuda.empty_cache()
    sv.lib.sieve_pattern_free(pat)
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("shape,kernel,ms,tflops,rel_err,note\n")
            for r in rows:
                f.write("%s,%s,%s,%.1f,%s,%s\n" % (r[0], r[1], "" if r[2] is None else "%.4f" % r[2], r[3],
                                                   "" if r[4] is None else "%.2e" % r[4], r[5]))


if __name__ == "__main__":
    main()
