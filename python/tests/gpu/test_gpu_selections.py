"""sieve's run-time choices (AdaSpa's blocks and tiers, SVG's head classes,
STA's windows) equal those of independent references of the originals:
tests/ref/check_selections.py, run whole on fresh random inputs."""
import importlib.util
import os

import pytest

torch = pytest.importorskip("torch")

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "ref",
                      "check_selections.py")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.skipif(not os.path.exists(SCRIPT), reason="not run from a source checkout")
def test_selections_equal_the_references():
    spec = importlib.util.spec_from_file_location("check_selections", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([]) == 0, "a selection differs from its reference (the log names it)"
