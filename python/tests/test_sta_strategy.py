"""STA's JSON mask strategies as sieve mask-search files (no GPU, no torch):
the converted file passes the plan's checks (pattern, shape, candidates),
which a plan makes before it needs the driver; what is not STA's format or
not this pattern's candidates is refused, naming why."""
import ctypes as C
import json

import pytest

import sieve
from sieve import core, sta_strategy
from sieve._lib import lib

T, Y, X, H = 12, 16, 16, 4


def _gpus():
    n = C.c_int()
    return 0 if lib().L.sieve_device_count(lib().ctx, C.byref(n)) else n.value


def strategy(steps=14, layers=2, window=(3, 3, 3), full=(3, 6, 10)):
    """As select_best_mask_strategy writes it: full attention below step 12."""
    return {"%d_%d_%d" % (t, l, h): list(full if t < 12 else window)
            for t in range(steps) for l in range(layers) for h in range(H)}


def test_converts_the_sparse_steps():
    s = strategy()
    s["13_1_2"] = [1, 5, 7]
    text = sta_strategy.convert(s, T, Y, X, H, text=8)
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert lines[:5] == ["sieve-mask-search 1", "pattern sta", "shape T12 Y16 X16 text8 after0 heads4",
                         "classes 3x1x10 1x5x7 3x3x3 1x6x5 1x3x10 3x6x1", "calls 1"]
    assert lines[5:] == ["at 12 0 3x3x3 3x3x3 3x3x3 3x3x3", "at 12 1 3x3x3 3x3x3 3x3x3 3x3x3",
                         "at 13 0 3x3x3 3x3x3 3x3x3 3x3x3", "at 13 1 3x3x3 3x3x3 1x5x7 3x3x3"]


@pytest.mark.parametrize("bad, why", [
    ({"12_0": [3, 3, 3]}, "STEP_LAYER_HEAD"),
    ({"12_0_0": [2, 2, 2]}, "not among the candidates"),
    ({"12_0_9": [3, 3, 3]}, "head 9 of 4"),
    ({"12_0_0": [3, 3]}, "not [t, y, x]"),
    ({"12_0_0": [3, 3, 3]}, "no window for heads [1, 2, 3]"),
    ({"3_0_0": [3, 6, 10]}, "no entry at step 12"),
])
def test_refuses_what_is_not_sta_or_not_the_candidates(bad, why):
    with pytest.raises(ValueError) as ei:
        sta_strategy.convert(bad, T, Y, X, H)
    assert why in str(ei.value)


def test_command_line(tmp_path, capsys):
    src, out = tmp_path / "mask_strategy.json", tmp_path / "sta.search"
    src.write_text(json.dumps(strategy()))
    assert sta_strategy.main([str(src), str(out), "--shape", "12,16,16,4,8"]) == 0
    assert "shape T12 Y16 X16 text8 after0 heads4" in out.read_text()
    src.write_text(json.dumps({"12_0_0": [9, 9, 9]}))
    assert sta_strategy.main([str(src), str(out), "--shape", "12,16,16,4"]) == 1
    assert "not among the candidates" in capsys.readouterr().err


@pytest.mark.skipif(_gpus() > 0, reason="a GPU is present: the plan would be made")
def test_a_plan_takes_the_converted_file(tmp_path):
    path = tmp_path / "sta.search"
    path.write_text(sta_strategy.convert(strategy(), T, Y, X, H, text=8))
    p = sieve.Pattern("sta", tile_t=2, tile_y=4, tile_x=4, strategy=str(path))
    with pytest.raises(sieve.SieveError) as ei:  # past the file's checks: the driver is missing
        core.DynPlan(p, p.shape(heads=H, head_dim=64, frames=T, height=Y, width=X, text=8))
    assert ei.value.status in ("no_driver", "no_gpu", "cuda"), str(ei.value)
    with pytest.raises(sieve.SieveError) as ei:  # a file for another shape is refused first
        core.DynPlan(p, p.shape(heads=H, head_dim=64, frames=T, height=Y, width=X, text=16))
    assert ei.value.status == "arg" and "shape" in str(ei.value), str(ei.value)
