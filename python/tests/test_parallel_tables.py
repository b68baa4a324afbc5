"""The C side of sequence parallelism, without torch: patterns seen from
another first head, chunk-pair tables against slices of the whole
sequence's, and the refusals that name their reason."""
import pytest

import sieve
import sieve.parallel as sp

GEO = dict(batch=1, head_dim=64, frames=4, height=8, width=12, text=29, text_after=True)


def whole_rows(t, h, r0, r1, c0, c1):
    """Rows r0..r1 of head h's whole tables, columns in [c0, c1) as c - c0."""
    v = t.view(t.head_table[h])
    cut = lambda rows: [[c - c0 for c in row if c0 <= c < c1] for row in rows[r0:r1]]  # noqa: E731
    return cut(v["full"]), cut(v["partial"])


def test_heads_take_the_global_class():
    p = sieve.Pattern("svg")
    s = p.shape(heads=6, **GEO)
    whole = p.tables(s)
    for h0 in range(4):
        part = sp.heads_pattern(p, h0).tables(p.shape(heads=2, **GEO))
        for i in range(2):
            got, want = part.view(part.head_table[i]), whole.view(whole.head_table[h0 + i])
            assert got["klass"] == want["klass"], (h0, i)
            assert (got["full"], got["partial"]) == (want["full"], want["partial"]), (h0, i)


def test_heads_copy_keeps_the_ir_on_a_period():
    p = sieve.Pattern("svg")
    assert sp.heads_pattern(p, 2).ir == p.ir   # same kernel, same cache entry
    assert sp.heads_pattern(p, 1).ir != p.ir
    f = sieve.Pattern("frame_window")
    assert sp.heads_pattern(f, 5).ir == f.ir   # one class, no head in the mask


@pytest.mark.parametrize("name", ["frame_window", "lvsa"])
def test_chunk_tables_are_slices_of_the_whole(name):
    p = sieve.Pattern(name)
    s = p.shape(heads=2, **GEO)
    S = s.tokens  # 413: the last block is short
    whole = p.tables(s, step=2, layer=3)
    for qb, qe in [(0, 128), (128, 384), (384, S)]:
        for kb, ke in [(0, 256), (256, S), (0, S)]:
            t = sp.chunk_tables(p, s, sp.Chunk(qb, qe, kb, ke), step=2, layer=3)
            visits = 0
            for h in range(2):
                v = t.view(t.head_table[h])
                want = whole_rows(whole, h, qb // 128, -(-qe // 128), kb // 128, -(-ke // 128))
                assert (v["full"], v["partial"]) == want, (qb, qe, kb, ke, h)
                visits += v["full_blocks"] + v["partial_blocks"]
            assert t.visits == visits == sp.chunk_visits(p, s, sp.Chunk(qb, qe, kb, ke), 2, 3)


def test_empty_chunk_pair_visits_nothing():
    p = sieve.Pattern("frame_window", window=0, text=False)
    s = p.shape(heads=2, **GEO)
    assert sp.chunk_visits(p, s, sp.Chunk(0, 128, 256, 384)) == 0
    assert sp.chunk_visits(p, s, sp.Chunk(0, 128, 0, 128)) > 0


@pytest.mark.parametrize("chunk, words", [
    ((0, 100, 0, 0), "query blocks of 128"),
    ((0, 0, 64, 0), "key blocks of 128"),
    ((256, 128, 0, 0), "not a non-empty range"),
    ((0, 0, 0, 999), "not a non-empty range"),
])
def test_bad_chunks_name_the_rule(chunk, words):
    p = sieve.Pattern("frame_window")
    with pytest.raises(ValueError, match=words):
        sp.chunk_visits(p, p.shape(heads=2, **GEO), sp.Chunk(*chunk))


def test_chunks_need_identity_layouts_and_static_selection():
    s = dict(heads=2, **GEO)
    p = sieve.Pattern("svg")
    with pytest.raises(ValueError, match="identity layout"):
        sp.chunk_visits(p, p.shape(**s), sp.Chunk(0, 128, 0, 0))
    a = sieve.Pattern("adaspa")
    with pytest.raises(ValueError, match="static selection"):
        sp.chunk_visits(a, a.shape(**s), sp.Chunk(0, 128, 0, 0))
    # The whole sequence is no chunk: any layout and selection will do.
    assert sp.chunk_visits(p, p.shape(**s), sp.Chunk(0, 0, 0, 0)) > 0


def test_shard_bounds():
    assert sp.shard_bounds(413, 2, 1, 128) == [(0, 207), (207, 413)]
    assert sp.shard_bounds(413, 1, 4, 128) == [(0, 128), (128, 256), (256, 384), (384, 413)]
    assert sp.shard_bounds(413, 2, 2, 128) == [(0, 128), (128, 256), (256, 335), (335, 413)]
    with pytest.raises(ValueError, match="ring chunks"):
        sp.shard_bounds(300, 1, 4, 128)
