"""sieve.parallel on CPUs: 2 and 4 gloo processes, sieve's float64 reference
for each part standing in for the kernel (parallel_worker.py), against the
single-process reference of the whole call. Checks the token sharding, the
Ulysses all-to-alls and head offsets (svg's classes alternate by head, so
an offset that lost the global index picks the other class), the ring's
global token offsets, empty chunk pairs skipped and the LSE merge,
including rows that see no key at all; and the yunchang and xDiT
adapters on stand-ins for the two names they import from those packages.

The shape is small and ragged: a 4 x 8 x 12 latent grid and 29 text tokens
after it (413 tokens, 128-token blocks: the last ring chunk is short)."""
import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.torch

HERE = os.path.dirname(os.path.abspath(__file__))
GEO = {"grid": [4, 8, 12], "text": 29, "text_after": True, "batch": 1, "head_dim": 64}
GEO_FRONT = dict(GEO, text_after=False, batch=2)
NOTEXT = {"window": 0, "text": False}  # frame_window: far chunk pairs are empty, text rows see nothing
ROT = {"rotate_fixed": True}  # lvsa with anchors that move with the step (its default is static)
# A mask that reads the head itself: the frame window is the head's parity,
# so a local head that forgot its global index gets the wrong window.
HEADWIN = """return sieve.pattern { name = "headwin",
  mask = sieve.union(sieve.frame_window(sieve.head % 2), sieve.text_rows(), sieve.text_cols()) }"""


def case(pattern, U, R, heads, geo=GEO, **kw):
    return dict({"pattern": pattern, "U": U, "R": R, "geo": dict(geo, heads=heads)}, **kw)


CASES = {
    2: [
        case("frame_window", 2, 1, 6),
        case("frame_window", 1, 2, 6),
        case("frame_window", 1, 2, 2, params=NOTEXT),
        case("lvsa", 2, 1, 6, step=3, layer=5, params=ROT),
        case("lvsa", 1, 2, 6, geo=GEO_FRONT, step=3, layer=5),
        case("svg", 2, 1, 6),   # local heads start at global head 3: classes swap
        case("headwin", 2, 1, 6, source=HEADWIN),
        case("lvsa", 1, 2, 6, adapter="yunchang", step=2, layer=1, params=ROT),
        case("svg", 2, 1, 6, adapter="xdit"),
    ],
    4: [
        case("frame_window", 4, 1, 4),
        case("frame_window", 1, 4, 2, params=NOTEXT),
        case("frame_window", 2, 2, 6),
        case("lvsa", 2, 2, 6, step=1, layer=2, params=ROT),
        case("lvsa", 1, 4, 2, geo=GEO_FRONT),
        case("svg", 4, 1, 4),   # global heads 1, 2, 3 on ranks 1..3
        case("headwin", 2, 2, 6, source=HEADWIN),
        case("frame_window", 2, 2, 6, adapter="yunchang"),
        case("lvsa", 4, 1, 4, adapter="xdit"),
        case("frame_window", 4, 1, 4, geo=dict(GEO_FRONT, batch=1), adapter="xdit", strategy="front"),
        case("svg", 2, 2, 6, expect="identity layout"),  # transposed heads cannot be cut
    ],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=[2, 4])
def results(request, tmp_path_factory):
    world = request.param
    out = tmp_path_factory.mktemp("parallel%d" % world)
    cases = out / "cases.json"
    cases.write_text(json.dumps(CASES[world]))
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "parallel_worker.py"), str(r),
                               str(world), str(port), str(cases), str(out)], env=env)
             for r in range(world)]
    rcs = [p.wait(timeout=900) for p in procs]
    assert rcs == [0] * world, "worker exits %s" % rcs
    ranks = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(world)]
    return world, ranks


def test_parts_match_whole(results):
    world, ranks = results
    for i, c in enumerate(CASES[world]):
        what = "%s U=%d R=%d on %d processes" % (c["pattern"], c["U"], c["R"], world)
        for r, res in enumerate(ranks):
            got = res[i]
            if "expect" in c:
                assert c["expect"] in got.get("error", ""), (what, r, got)
                continue
            assert "error" not in got, (what, r, got)
            assert got["err_o"] < 1e-12, (what, r, got)
            assert got["err_lse"] < 1e-12, (what, r, got)
            assert got["same_inf"], (what, r, got)


def test_empty_pairs_skipped(results):
    world, ranks = results
    for i, c in enumerate(CASES[world]):
        if c.get("params") == NOTEXT:
            got = ranks[0][i]
            # Frame chunks far apart share no block: skipped, never launched;
            # text rows see no key (LSE -inf) and survive the merge as such.
            if c["R"] == 4:
                assert got["skipped"] > 0 and got["computed"] > 0, got
            assert got["empty_rows"] > 0, got


def test_merge_lse_is_stable():
    """Two halves of a row's keys merge to the row: scores far past exp's
    range, and halves (or whole rows) with no key at all."""
    import torch
    from sieve.parallel import merge_lse
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, 3, 5, 40, generator=g, dtype=torch.float64) * 50 + 800  # e^800 overflows
    allow = torch.rand(2, 3, 5, 40, generator=g) < 0.5
    allow[0, 0, 0] = False                        # a row with no key at all
    allow[0, 1, 1, :20] = False                   # a row whose first half is empty
    vals = torch.randn(2, 40, 8, generator=g, dtype=torch.float64)

    def part(lo, hi):
        x = s[..., lo:hi].masked_fill(~allow[..., lo:hi], float("-inf"))
        lse = torch.logsumexp(x, -1)
        w = torch.exp(x - torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse)).unsqueeze(-1))
        return torch.einsum("bhsk,bkd->bhsd", w, vals[:, lo:hi]), lse

    ow, lw = part(0, 40)
    o, lse = merge_lse(*part(0, 20), *part(20, 40))
    fin = torch.isfinite(lw)
    assert torch.equal(fin, torch.isfinite(lse)) and not fin[0, 0, 0]
    assert torch.allclose(lse[fin], lw[fin], rtol=0, atol=1e-9)
    assert torch.allclose(o, ow, rtol=0, atol=1e-12) and torch.all(o[0, 0, 0] == 0)
    o32, _ = merge_lse(*(t.float() for t in part(0, 20)), *(t.float() for t in part(20, 40)))
    assert o32.dtype == torch.float32 and torch.allclose(o32.double(), ow, atol=1e-5)
