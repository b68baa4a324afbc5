"""One rank of the sequence-parallel CPU checks (test_parallel.py spawns
them): gloo, sieve's float64 reference for each part standing in for the
kernel, compared with the single-process reference of the whole call."""
import json
import os
import sys

import torch
import torch.distributed as dist

import sieve
import sieve.parallel as sp


def inputs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    B, H, S, D = shape.batch, shape.heads, shape.tokens, shape.head_dim
    return [torch.randn(B, S, H, D, generator=g, dtype=torch.float64) for _ in range(3)]


def groups(U, R):
    """Ulysses groups of consecutive ranks, ring groups across them; every
    rank makes every group (new_group is collective)."""
    me, ug, rg = dist.get_rank(), None, None
    for r in range(R):
        g = dist.new_group(list(range(r * U, (r + 1) * U)))
        if me // U == r:
            ug = g
    for u in range(U):
        g = dist.new_group([r * U + u for r in range(R)])
        if me % U == u:
            rg = g
    return (ug if U > 1 else None), (rg if R > 1 else None)


def stub_modules(ug, rg):
    """Stand-ins for the two names the adapters import from yunchang and
    xfuser (neither is installed in CI): the process groups yunchang's
    set_seq_parallel_pg would make, and xDiT's USP with a module that
    imported it by name, as xDiT's transformers do."""
    import types
    pg = types.SimpleNamespace(ULYSSES_PG=ug, RING_PG=rg)
    mods = {"yunchang": types.ModuleType("yunchang"),
            "yunchang.globals": types.ModuleType("yunchang.globals"),
            "xfuser": types.ModuleType("xfuser"),
            "xfuser.model_executor": types.ModuleType("xfuser.model_executor"),
            "xfuser.model_executor.layers": types.ModuleType("xfuser.model_executor.layers"),
            "xfuser.model_executor.layers.usp": types.ModuleType("xfuser.model_executor.layers.usp"),
            "xdit_model": types.ModuleType("xdit_model")}
    mods["yunchang.globals"].PROCESS_GROUP = pg

    def xfuser_usp(*a, **k):
        raise AssertionError("xDiT's own USP ran")
    mods["xfuser.model_executor.layers.usp"].USP = xfuser_usp
    mods["xfuser.model_executor.layers"].usp = mods["xfuser.model_executor.layers.usp"]
    mods["xdit_model"].USP = xfuser_usp
    sys.modules.update(mods)
    return mods["xdit_model"]


def check_xdit(rank, case, pat, ug, geo):
    """xDiT's joint attention: the video sharded, the text replicated and
    after it ('rear', HunyuanVideo) or before it ('front'), [B, H, S, D]."""
    from sieve.parallel import xdit
    model = stub_modules(ug, None)
    ours = xdit.install(pat, geo["grid"], layers=2, local=sp.ReferenceLocal())
    assert model.USP is ours
    rear, T = case.get("strategy", "rear") == "rear", geo["text"]
    usp = ours._for(T, rear)
    shape = usp.shape(geo["batch"], geo["heads"], geo["head_dim"])
    q, k, v = (x.transpose(1, 2) for x in inputs(shape, 11))   # [B, H, S, D], text where it goes
    S, P = shape.tokens, dist.get_world_size()
    video, text = (slice(0, S - T), slice(S - T, S)) if rear else (slice(T, S), slice(0, T))
    s = (S - T) // P
    mine = slice(video.start + rank * s, video.start + (rank + 1) * s)
    o = model.USP(q[:, :, mine], k[:, :, mine], v[:, :, mine], joint_query=q[:, :, text],
                  joint_key=k[:, :, text], joint_value=v[:, :, text],
                  joint_strategy="rear" if rear else "front",
                  attention_kwargs={"sieve_step": 0, "sieve_layer": 0})
    ow, _ = sp.ReferenceLocal()(pat, shape, q, k, v, None, 0, 0, None)
    parts = [ow[:, :, mine], ow[:, :, text]]
    want = torch.cat(parts if rear else parts[::-1], dim=2)
    return {"err_o": (o - want).abs().max().item(), "err_lse": 0.0, "same_inf": True,
            "skipped": 0, "computed": 1, "empty_rows": 0}


def check(rank, case):
    """Runs one case; returns this rank's errors against the whole call."""
    if True:
        name, params, U, R, geo = case["pattern"], case.get("params", {}), case["U"], case["R"], case["geo"]
        if "source" in case:
            pat = sieve.Pattern.from_string(case["source"], name, **params)
        else:
            pat = sieve.Pattern(name, **params)
        ug, rg = groups(U, R)
        if case.get("adapter") == "xdit":
            return check_xdit(rank, case, pat, ug, geo)
        mod = None
        if case.get("adapter") == "yunchang":
            stub_modules(ug, rg)
            from sieve.parallel import yunchang
            mod = yunchang.LongContextAttention(pat, grid=geo["grid"], text=geo["text"],
                                                text_after=geo["text_after"], layer=case.get("layer", 0),
                                                local=sp.ReferenceLocal())
            usp = mod.usp
        else:
            usp = sp.USP(pat, grid=geo["grid"], text=geo["text"], text_after=geo["text_after"],
                         ulysses_group=ug, ring_group=rg, local=sp.ReferenceLocal())
        shape = usp.shape(geo["batch"], geo["heads"], geo["head_dim"])
        q, k, v = inputs(shape, 7)
        b, e = usp.bounds(shape.tokens)[rank]
        step, layer = case.get("step", 0), case.get("layer", 0)
        if mod is not None:
            o = mod(q[:, b:e], k[:, b:e], v[:, b:e], step=step)
            lse = None
        else:
            o, lse = usp(q[:, b:e], k[:, b:e], v[:, b:e], step=step, layer=layer, return_lse=True)

        # The whole call in one process: the same reference, no parts.
        ow, lw = sp.ReferenceLocal()(pat, shape, *(x.transpose(1, 2) for x in (q, k, v)), None,
                                      step, layer, None)
        ow, lw = ow.transpose(1, 2)[:, b:e], lw[:, :, b:e]
        err_o = (o - ow).abs().max().item()
        fin = torch.isfinite(lw)
        if lse is None:
            lse = lw
        same_inf = bool(torch.equal(fin, torch.isfinite(lse)))
        err_l = (lse[fin] - lw[fin]).abs().max().item() if fin.any() else 0.0
        counts = torch.tensor([usp.skipped, usp.computed, int((~fin).sum())])
        dist.all_reduce(counts)
        return {"err_o": err_o, "err_lse": err_l, "same_inf": same_inf, "skipped": int(counts[0]),
                "computed": int(counts[1]), "empty_rows": int(counts[2])}


def main(rank, world, port, cases, out):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank,
                            world_size=world)
    res = []
    try:
        for case in cases:
            try:
                res.append(check(rank, case))
            except Exception as e:  # reported per case; the others still run
                res.append({"error": "%s: %s" % (type(e).__name__, e)})
    finally:
        with open(os.path.join(out, "rank%d.json" % rank), "w") as f:
            json.dump(res, f)
        dist.destroy_process_group()


if __name__ == "__main__":
    rank, world, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    with open(sys.argv[4]) as f:
        main(rank, world, port, json.load(f), sys.argv[5])
