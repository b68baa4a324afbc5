"""Pattern loading through the core binding (no torch)."""
import os
import re
import subprocess
import sys

import pytest

import sieve
from sieve import core


def test_import_needs_no_torch():
    code = "import sys, sieve; sieve.Pattern('dense'); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["dense", "causal", "token_window", "frame_window", "lvsa", "svg", "sta",
                                  "adaspa"])
def test_shipped_patterns_load(name):
    assert name in sieve.shipped_patterns()
    p = sieve.Pattern(name)
    assert p.name == name
    assert p.ir.startswith("pattern %s\n" % name)


def test_selection_kinds():
    assert sieve.Pattern("lvsa").selection == "static"
    assert sieve.Pattern("adaspa").dynamic
    assert sieve.Pattern("svg", profile=True).selection == "profile"
    assert sieve.Pattern("svg").dynamic              # SVG profiles every sparse step
    assert not sieve.Pattern("svg", profile=False).dynamic


def test_params_change_the_ir():
    a, b = sieve.Pattern("frame_window", window=1), sieve.Pattern("frame_window", window=3)
    assert a.hash != b.hash
    assert sieve.Pattern("frame_window", window=3).hash == b.hash
    assert sieve.Pattern("lvsa", text=False).hash != sieve.Pattern("lvsa", text=True).hash


def test_unknown_param_names_it():
    with pytest.raises(ValueError, match=r"lvsa\.lua:\d+: unknown param 'nope'"):
        sieve.Pattern("lvsa", nope=1)


def test_unknown_pattern_name():
    with pytest.raises(ValueError, match="not shipped"):
        sieve.Pattern("no_such_pattern")
    with pytest.raises(FileNotFoundError):
        sieve.Pattern("/no/such/script.lua")


def test_pattern_from_path(tmp_path):
    f = tmp_path / "mine.lua"
    f.write_text('return sieve.pattern { name = "mine", mask = sieve.frame_window(2) }\n')
    p = sieve.Pattern(str(f))
    assert p.name == "mine" and p.path == str(f)


@pytest.mark.parametrize("src, line", [
    ("local x = 1\nlocal y = \nreturn 1\n", 3),                                  # syntax
    ("local a = 1\nlocal b = nil\nreturn b.c\n", 3),                              # runtime
    ('return sieve.pattern { name = "x",\n mask = sieve.frame_window("w") }\n', 2),  # DSL argument
])
def test_broken_script_raises_with_file_and_line(tmp_path, src, line):
    f = tmp_path / "broken.lua"
    f.write_text(src)
    with pytest.raises(sieve.ScriptError) as ei:
        sieve.Pattern(str(f))
    assert re.search(r"broken\.lua:%d:" % line, str(ei.value)), str(ei.value)
    assert ei.value.status == "script"


def test_runaway_script_hits_its_limit():
    with pytest.raises(sieve.ScriptError) as ei:
        sieve.Pattern.from_string("while true do end", "spin.lua")
    assert ei.value.status == "limit"


def test_shape_takes_the_script_geometry():
    p = sieve.Pattern.from_string(
        'return sieve.pattern { name = "g", mask = sieve.dense(),\n'
        '  geometry = { frames = 3, height = 4, width = 5, text = 7, text_pos = "after" } }', "g.lua")
    s = p.shape(batch=2, heads=3, head_dim=64)
    assert (s.frames, s.height, s.width, s.text, s.text_after) == (3, 4, 5, 7, 1)
    assert s.tokens == 67
    s = p.shape(frames=2, height=8, width=8, text=0)
    assert (s.frames, s.height, s.width, s.text) == (2, 8, 8, 7)


def test_shape_presets():
    names = sieve.shape_presets()
    assert "hunyuan-720p" in names
    s = sieve.shape_preset("hunyuan-720p")
    assert (s.heads, s.head_dim, s.tokens) == (24, 128, 118800)
    with pytest.raises(ValueError, match="unknown"):
        sieve.shape_preset("nope")


def test_version():
    assert re.match(r"\d+\.\d+\.\d+", sieve.version())


def test_library_is_the_packaged_one():
    from sieve._lib import lib
    if not os.environ.get("SIEVE_LIB_DIR"):
        assert os.path.dirname(lib().path) == os.path.join(os.path.dirname(core.__file__), "_lib")
    assert os.path.exists(os.path.join(os.path.dirname(lib().path), "liblua5.4.so.0"))
