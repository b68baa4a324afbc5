"""sieve.diffusers on the three model families, built from their configs
on the meta device: which processors are installed, the token geometry
each forward notes, and that every self-attention reaches sieve's op."""
import pytest

import sieve

pytestmark = pytest.mark.torch
try:
    import diffusers
except ImportError:
    diffusers = None


def build(family, **kw):
    import torch

    import models
    with torch.device("meta"):
        m = getattr(models, family)(**kw).to(torch.bfloat16)
        inputs = getattr(models, family + "_inputs")(device="meta", dtype=torch.bfloat16)
    return m, inputs


@pytest.mark.skipif(diffusers is None, reason="diffusers is not installed")
@pytest.mark.parametrize("family, layers, geometry", [
    ("wan", 2, {1024: ((4, 16, 16), 0, False)}),
    ("hunyuan", 2, {1040: ((4, 16, 16), 16, True)}),
    ("cogvideox", 2, {1040: ((4, 16, 16), 16, False)}),
])
def test_processors_and_geometry(family, layers, geometry):
    m, inputs = build(family)
    before = dict(m.attn_processors)
    h = sieve.diffusers.apply(m, pattern="lvsa", window=2)
    assert [s.layer for s in h.states] == list(range(layers))
    changed = {k for k, p in m.attn_processors.items() if p is not before[k]}
    assert len(changed) == layers
    if family == "wan":
        assert all(".attn1." in k for k in changed)  # cross-attention stays dense
    out = m(**inputs)[0]
    assert out.shape == inputs["hidden_states"].shape
    assert h.geometry.by_tokens == geometry
    h.remove()
    assert all(p is before[k] for k, p in m.attn_processors.items())


@pytest.mark.skipif(diffusers is None, reason="diffusers is not installed")
def test_hunyuan_prompt_padding_becomes_text_len():
    import torch

    from sieve.diffusers import _common, hunyuan
    geom = _common.TokenGeometry()
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 12:] = 0
    hunyuan._note_text_len(geom, mask)
    assert geom.text_len == (16, 12)
    hunyuan._note_text_len(geom, torch.ones(2, 16, dtype=torch.long))
    assert geom.text_len is None


def test_unknown_model_is_refused():
    import torch
    with pytest.raises(ValueError, match="transformer: sieve has processors for"):
        sieve.diffusers.apply(torch.nn.Linear(2, 2))


def test_handle_steps():
    from sieve.diffusers import _common
    c = sieve.Clock(calls_per_step=2)
    st = sieve.Attention("dense", grid=(1, 8, 8), clock=c)
    seen = []
    for _ in range(5):
        seen.append(st._step(None))
        st.calls += 1
    assert seen == [0, 0, 1, 1, 2]
    c.step = 7
    assert st._step(None) == 7 and st._step(3) == 3
    c.reset()
    assert st._step(None) == 0
    assert _common.TokenGeometry().note((2, 3, 4), 5, True) == 29


@pytest.mark.skipif(diffusers is None, reason="diffusers is not installed")
@pytest.mark.parametrize("family", ["wan", "hunyuan", "cogvideox"])
def test_compile_traces_the_model_with_no_break_in_sieve(family):
    import torch
    m, inputs = build(family)
    h = sieve.diffusers.apply(m, pattern="lvsa")
    ex = torch._dynamo.explain(m)(**inputs)
    in_sieve = [b for b in ex.break_reasons
                if any("/sieve/" in f.filename for f in getattr(b, "user_stack", []) or [])]
    assert not in_sieve, [str(b.reason) for b in in_sieve]
    assert sum(g.code.count("torch.ops.sieve.attention(") for g in ex.graphs) == len(h.states)
    assert h.geometry.by_tokens  # noted at trace time
