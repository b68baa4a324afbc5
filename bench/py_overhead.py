"""Python-side cost of one sieve.attention call at a warm plan.

A small shape (1 frame of 16 x 16 tokens, 2 heads, D 64) keeps the kernel
short, so N back-to-back calls are bound by the host: the time per call is
what Python, the checks, the output allocation and the launch cost. Beside
it, the same call through the functional API and the custom op, the C
launch alone (ctypes, descriptors built once) and torch's SDPA on the same
tensors, all on one stream.
    python3 bench/py_overhead.py [--calls N]
"""
import argparse
import statistics
import time

import torch

import sieve


def per_call_us(fn, calls, reps=7):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t) / calls * 1e6)
        torch.cuda.synchronize()
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    a = ap.parse_args()
    q, k, v = (torch.randn(1, 2, 256, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    pat = sieve.Pattern("dense")
    st = sieve.Attention(pat, grid=(1, 16, 16))
    st(q, k, v)
    b = st._last[1]
    descs = [st._desc(x) for x in (q, k, v, torch.empty_like(q))]
    stream = torch.cuda.current_stream().cuda_stream
    rows = [
        ("sieve.Attention(q, k, v)", lambda: st(q, k, v)),
        ("sieve.attention(q, k, v, pattern)", lambda: sieve.attention(q, k, v, pat, grid=(1, 16, 16))),
        ("torch.ops.sieve.attention (dispatcher)", lambda: torch.ops.sieve.attention(q, k, v, st.id, 0, -1)),
        ("C launch alone (ctypes)", lambda: b.plan.run(*descs, b.lse.data_ptr(), stream)),
        ("torch SDPA, same tensors", lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)),
    ]
    print("| call | us per call |\n| --- | --- |")
    for name, fn in rows:
        print("| %s | %.1f |" % (name, per_call_us(fn, a.calls)))
    torch.cuda.synchronize()
    t = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t[0].record()
    for _ in range(a.calls):
        b.plan.run(*descs, b.lse.data_ptr(), stream)
    t[1].record()
    torch.cuda.synchronize()
    print("GPU time per kernel at this shape: %.1f us" % (t[0].elapsed_time(t[1]) * 1e3 / a.calls))


if __name__ == "__main__":
    main()
