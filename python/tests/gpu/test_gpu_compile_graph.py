"""torch.compile traces the models with no graph break from sieve and
computes what eager does; a CUDA graph of one step replays equal."""
import pytest

import sieve

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytestmark = [pytest.mark.gpu, pytest.mark.torch]

from gpu_models import build, rel_err  # noqa: E402


@pytest.mark.parametrize("family, pattern", [("wan", "lvsa"), ("hunyuan", "dense"), ("cogvideox", "lvsa")])
def test_cuda_graph_replay(family, pattern):
    m, inputs = build(family)
    # lvsa as first checked here: rotating anchors (GPU-built tables).
    h = sieve.diffusers.apply(m, pattern=pattern, **({"rotate_fixed": True} if pattern == "lvsa" else {}))
    h.step = 2
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(s):
        for _ in range(2):  # plans made and tables built before capture
            m(**inputs)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.no_grad():
        with torch.cuda.graph(g):
            static_out = m(**inputs)[0]
        g.replay()
        torch.cuda.synchronize()
        eager = m(**inputs)[0]
    assert torch.equal(static_out, eager) or rel_err(static_out, eager) < 1e-3
    first = static_out.clone()
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(static_out, first)


@pytest.mark.parametrize("family, backend", [("hunyuan", "aot_eager"), ("cogvideox", "aot_eager"),
                                             ("wan", "inductor")])
def test_compile_no_graph_break_from_sieve(family, backend):
    m, inputs = build(family)
    h = sieve.diffusers.apply(m, pattern="lvsa", window=1, interval=4, rotate_fixed=True)
    h.step = 0
    with torch.no_grad():
        eager = m(**inputs)[0]
        ex = torch._dynamo.explain(m)(**inputs)
        reasons = [str(b.reason) for b in ex.break_reasons]
        from_sieve = [str(b.reason) for b in ex.break_reasons
                      if any("/sieve/" in f.filename for f in getattr(b, "user_stack", []) or [])]
        print("%s (%s): %d graphs, %d breaks (%d from sieve): %s" % (
            family, backend, ex.graph_count, ex.graph_break_count, len(from_sieve), reasons[:3]))
        assert not from_sieve
        ops = sum(g.code.count("torch.ops.sieve.attention") for g in ex.graphs)
        assert ops == len(h.states)
        torch._dynamo.reset()
        cm = torch.compile(m, backend=backend)
        out = cm(**inputs)[0]
        h.step = 1  # another step: the same graph, no retrace
        out1 = cm(**inputs)[0]
    assert rel_err(out, eager) < 2e-2
    assert torch.isfinite(out1).all()
