"""Block tables read back through the core binding (no torch)."""
import pytest

import sieve


def test_dense_is_one_full_table():
    p = sieve.Pattern("dense")
    t = p.tables(p.shape(heads=4, head_dim=64, frames=4, height=16, width=16, text=0))
    assert t.info.tables == 1 and t.head_table == [0, 0, 0, 0]
    v = t.view(0)
    assert v["density"] == pytest.approx(1.0)
    assert v["partial_blocks"] == 0 and v["empty_blocks"] == 0
    assert all(len(row) == t.info.k_blocks for row in v["full"])


def test_frame_window_density():
    # 4 frames of 256 tokens, window 1: query frames see 2, 3, 3, 2 frames.
    p = sieve.Pattern("frame_window", window=1, text=False)
    t = p.tables(p.shape(heads=2, head_dim=128, frames=4, height=16, width=16))
    v = t.view(0)
    assert v["density"] == pytest.approx(10 / 16)
    assert v["layout"] == "identity"
    # 256-token frames are whole 128-token blocks: nothing is partial.
    assert v["partial_blocks"] == 0
    nq = t.info.q_blocks
    assert len(v["full"]) == nq and nq == 8


def test_lvsa_tables_move_with_step_and_layer():
    # sieve's own rotation over a fixed interval moves the anchors with the
    # step; layer_stride (sieve's own too) moves them with the layer.
    p = sieve.Pattern("lvsa", window=1, interval=4, layer_stride=1, rotate_fixed=True)
    s = p.shape(heads=1, head_dim=128, frames=8, height=16, width=16, text=0)
    full = [p.tables(s, step, layer).view(0)["full"] for step, layer in ((0, 0), (1, 0), (0, 1))]
    assert full[0] != full[1] and full[0] != full[2]


def test_lvsa_defaults_are_static_and_rotation_starts_a_step_late():
    # LVSA's examples do not rotate; with --rotate-keyframes set_step(s) runs
    # after step s, so steps 0 and 1 share the anchors and step 2 moves them.
    p = sieve.Pattern("lvsa", window=1)
    s = p.shape(heads=1, head_dim=128, frames=8, height=16, width=16, text=0)
    assert p.tables(s, 0).view(0)["full"] == p.tables(s, 5, 3).view(0)["full"]
    p = sieve.Pattern("lvsa", window=1, train_frames=4, rotate=True)
    full = [p.tables(s, step).view(0)["full"] for step in (0, 1, 2)]
    assert full[0] == full[1] and full[1] != full[2]


def test_bad_shape_is_a_value_error():
    p = sieve.Pattern("dense")
    with pytest.raises(ValueError, match="head_dim"):
        p.tables(p.shape(heads=1, head_dim=96, frames=2, height=8, width=8))
