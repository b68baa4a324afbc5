"""With the dense pattern, each family's output equals the same model with
diffusers' default (SDPA) processors, within bf16 tolerance."""
import pytest

import sieve

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytestmark = [pytest.mark.gpu, pytest.mark.torch]

from gpu_models import build, rel_err  # noqa: E402


@pytest.mark.parametrize("family", ["wan", "hunyuan", "cogvideox"])
def test_dense_equals_sdpa(family, record_property):
    m, inputs = build(family)
    with torch.no_grad():
        ref = m(**inputs)[0]
        h = sieve.diffusers.apply(m, pattern="dense")
        out = m(**inputs)[0]
    calls = [s.calls for s in h.states]
    err = rel_err(out, ref)
    record_property("rel_err", err)
    print("%s dense vs SDPA: relative error %.2e, %d layers, calls %s" % (family, err, len(calls), calls))
    assert all(c == 1 for c in calls)
    assert torch.isfinite(out).all()
    assert err < 2e-2
