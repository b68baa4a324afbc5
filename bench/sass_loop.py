#!/usr/bin/env python3
"""The warp-specialised kernel's key loop in SASS, counted.

    bench/sass_loop.py CUBIN...     (ptxas -arch=sm_90a -o CUBIN kernel.ptx)

Disassembles each cubin with nvdisasm (CUDA toolkit, or PyPI's
nvidia-cuda-nvdisasm) and prints, for the innermost natural loop that issues
HGMMA (a consumer's step: S = Q K^T and O += P V), its instruction count and
the opcodes that show where ptxas left the uniform datapath: R2UR (a value
built in per-thread registers, moved to a uniform one), IMAD, UIADD3.
Out-of-line try_wait spins that return into the loop count as part of it.

    bench/sass_loop.py --order CUBIN...

also prints the key loop's softmax in issue order, an instruction a letter
(M MUFU, x FMNMX, f FFMA, + FADD, * FMUL, c F2FP, s SHFL, V VOTE, H HGMMA,
W WARPGROUP, . other), from its first FMNMX to its last MUFU, and how many
exponentials ptxas placed before the step's last max: FlashAttention-3's
loop takes one row's exponentials while it takes the other row's max (ncu
source page, H100, bench/RESULTS.md 2026-12-06), so the exponential unit
has work during the max; 0 means every max comes first.
"""
import collections
import re
import subprocess
import sys


def parse(cubin):
    txt = subprocess.run(["nvdisasm", "-c", cubin], capture_output=True, text=True, check=True).stdout
    ins, lab, pend = [], {}, []
    for line in txt.splitlines():
        m = re.match(r"^\s*\.(L_x_\d+):", line)
        if m:
            pend.append(m.group(1))
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if not m:
            continue
        for name in pend:
            lab[name] = len(ins)
        pend = []
        body = m.group(2).strip()
        pred = re.match(r"^@!?U?P\w+\s+", body)
        if pred:
            body = body[pred.end():]
        ins.append((int(m.group(1), 16), body.split()[0], body, bool(pred)))
    return ins, lab


def loops(cubin):
    """(instructions, opcode counts, head address) of every natural loop."""
    ins, lab = parse(cubin)
    n = len(ins)
    starts = {0} | set(lab.values())
    for i, (_, op, _, _) in enumerate(ins):
        if op.startswith(("BRA", "EXIT", "RET", "BRX", "JMP")) and i + 1 < n:
            starts.add(i + 1)
    starts = sorted(starts)
    blocks, bid = [], {}
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else n
        blocks.append((s, e))
        for i in range(s, e):
            bid[i] = k
    succ, pred = collections.defaultdict(set), collections.defaultdict(set)
    for k, (s, e) in enumerate(blocks):
        _, op, body, guarded = ins[e - 1]
        falls = e < n
        if op.startswith("BRA"):
            m = re.search(r"`\(\.(L_x_\d+)\)", body)
            if m and m.group(1) in lab:
                succ[k].add(bid[lab[m.group(1)]])
            falls = falls and (guarded or op.startswith("BRA.DIV"))
        elif op.startswith(("EXIT", "RET")):
            falls = falls and guarded
        if falls:
            succ[k].add(bid[e])
    for u, vs in succ.items():
        for v in vs:
            pred[v].add(u)
    nb = len(blocks)
    dom = [set(range(nb))] * nb
    dom[0] = {0}
    changed = True
    while changed:
        changed = False
        for v in range(1, nb):
            ps = [dom[u] for u in pred[v]]
            d = (set.intersection(*ps) if ps else set()) | {v}
            if d != dom[v]:
                dom[v], changed = d, True
    out = []
    for u, vs in succ.items():
        for h in vs:
            if h not in dom[u]:
                continue
            body, todo = {h}, [u]
            while todo:
                x = todo.pop()
                if x not in body:
                    body.add(x)
                    todo.extend(pred[x])
            at = sorted(i for k in body for i in range(*blocks[k]))
            ops = [ins[i][1].split(".")[0] for i in at]
            out.append((len(ops), collections.Counter(ops), ins[blocks[h][0]][0], ops))
    return out


LETTERS = {"MUFU": "M", "FMNMX": "x", "FFMA": "f", "FADD": "+", "FMUL": "*", "F2FP": "c", "SHFL": "s",
           "VOTE": "V", "HGMMA": "H", "WARPGROUP": "W"}


def order(ops):
    """The softmax span in letters, and (exponentials before the last max, exponentials)."""
    mx = [i for i, o in enumerate(ops) if o == "FMNMX"]
    ex = [i for i, o in enumerate(ops) if o == "MUFU"]
    if not mx or not ex:
        return "", (0, len(ex))
    span = "".join(LETTERS.get(o, ".") for o in ops[mx[0]:ex[-1] + 1])
    return span, (sum(1 for i in ex if i < mx[-1]), len(ex))


def main():
    args = sys.argv[1:]
    show = "--order" in args
    for f in (a for a in args if a != "--order"):
        found = [l for l in loops(f) if l[1]["HGMMA"]]
        if not found:
            print(f"{f}: no loop issues HGMMA")
            continue
        n, c, head, ops = min(found, key=lambda l: l[0])
        print(f"{f}: key loop at {head:#x}: {n} instructions, HGMMA {c['HGMMA']}, R2UR {c['R2UR']}, "
              f"IMAD {c['IMAD']}, UIADD3 {c['UIADD3']}")
        if show:
            span, (early, total) = order(ops)
            print(f"  softmax in issue order: {span}")
            print(f"  exponentials before the last max: {early} of {total}")


if __name__ == "__main__":
    main()
