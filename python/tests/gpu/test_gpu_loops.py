"""lvsa, svg (profiling) and adaspa (search) through a short denoising loop
with a diffusers scheduler: every layer and step goes through sieve, the
step and layer reach the plan, the output is finite."""
import pytest

import sieve

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytestmark = [pytest.mark.gpu, pytest.mark.torch]

from gpu_models import build  # noqa: E402

STEPS = 4
PATTERNS = {
    # lvsa's default is static; rotate_fixed (sieve's own rotation, the
    # default these checks first ran) keeps the step reaching its tables.
    "lvsa": dict(window=1, interval=4, rotate_fixed=True),
    # SVG keeps its first steps and layers dense (10-20 % of a 50-step run);
    # here one dense step, then profiling at every sparse step.
    "svg": dict(profile=True, dense_steps=1, dense_layers=0),
    "adaspa": dict(warmup=1, every=2, total_steps=STEPS),  # searches at steps 1 and 3
}


def scheduler(family):
    from diffusers import CogVideoXDDIMScheduler, FlowMatchEulerDiscreteScheduler
    s = CogVideoXDDIMScheduler() if family == "cogvideox" else FlowMatchEulerDiscreteScheduler()
    s.set_timesteps(STEPS, device="cuda")
    return s


@pytest.mark.parametrize("family", ["wan", "hunyuan", "cogvideox"])
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_denoising_loop(family, pattern, monkeypatch):
    m, inputs = build(family)
    h = sieve.diffusers.apply(m, pattern=pattern, **PATTERNS[pattern])
    seen, chose = [], []
    run = sieve.Attention.run

    def spy(self, *a, **kw):
        out = run(self, *a, **kw)
        seen.append((self.last_step, self.layer))
        chose.append((self.last_step, self.layer, self.chose))
        return out
    monkeypatch.setattr(sieve.Attention, "run", spy)
    sched = scheduler(family)
    x = inputs["hidden_states"]
    with torch.no_grad():
        for t in sched.timesteps:
            inputs["hidden_states"] = x
            inputs["timestep"] = t.expand(x.shape[0]).to(inputs["timestep"].dtype)
            noise = m(**inputs)[0]
            x = sched.step(noise, t, x, return_dict=False)[0]
    layers = len(h.states)
    assert seen == [(s, l) for s in range(STEPS) for l in range(layers)]
    assert torch.isfinite(x).all()
    if pattern == "adaspa":
        searched = sorted({s for s, _, c in chose if c})
        assert searched == [1, 3], chose
    if pattern == "svg":
        assert not any(c for s, _, c in chose if s == 0), chose
        assert all(c for s, _, c in chose if s >= 1), chose
    print("%s %s: %d steps x %d layers through sieve, finite, chose at %s" % (
        family, pattern, STEPS, layers, sorted({s for s, _, c in chose if c})))
