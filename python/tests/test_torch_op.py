"""The torch layer without a GPU: the custom op's fake implementation on
meta tensors, argument errors, and torch.compile tracing with no graph
break (torch._dynamo.explain)."""
import pytest

import sieve

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def T():
    import torch
    return torch


def meta(T, *shape, dtype=None, **kw):
    return T.empty(*shape, dtype=dtype or T.bfloat16, device="meta", **kw)


def test_ops_are_registered(T):
    import sieve._torch  # noqa: F401  (registers the ops)
    assert hasattr(T.ops.sieve, "attention") and hasattr(T.ops.sieve, "attention_lse")


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_fake_output_shapes(T, layout):
    st = sieve.Attention("dense", grid=(2, 8, 8), text=16, layout=layout)
    shape = (2, 3, 144, 64) if layout == "bhsd" else (2, 144, 3, 64)
    q = meta(T, *shape)
    o = st(q, q, q)
    assert o.shape == q.shape and o.dtype == q.dtype and o.is_contiguous()
    o, lse = st(q, q, q, return_lse=True)
    assert lse.shape == (2, 3, 144) and lse.dtype == T.float32


def test_strided_views_pass(T):
    st = sieve.Attention("frame_window", grid=(2, 8, 8), layout="bhsd")
    qkv = meta(T, 1, 128, 3, 2, 128)              # [B, S, 3, H, D], as a fused projection gives
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    assert st(q, k, v).shape == (1, 2, 128, 128)


def test_functional_api(T):
    q = meta(T, 1, 2, 128, 128)
    o = sieve.attention(q, q, q, sieve.Pattern("lvsa"), step=3, layer=1, grid=(2, 8, 8))
    assert o.shape == q.shape


@pytest.mark.parametrize("make, word", [
    (lambda T: (meta(T, 1, 2, 128, 64, dtype=T.float32),) * 3, r"q must be bfloat16"),
    (lambda T: (T.empty(1, 2, 128, 64, dtype=T.bfloat16),) * 3, r"q must be on a CUDA device"),
    (lambda T: (meta(T, 2, 128, 64),) * 3, r"q must have 4 dims"),
    (lambda T: (meta(T, 1, 2, 128, 64), meta(T, 1, 2, 128, 64).transpose(2, 3).contiguous().transpose(2, 3),
                meta(T, 1, 2, 128, 64)), r"k: the last dim must be contiguous"),
    (lambda T: (meta(T, 1, 2, 128, 64), meta(T, 1, 2, 128, 64), meta(T, 1, 2, 128, 68)[..., :64]),
     r"v: strides must be multiples of 8"),
    (lambda T: (meta(T, 1, 2, 128, 96),) * 3, r"q: head dim 96"),
    (lambda T: (meta(T, 1, 2, 128, 64), meta(T, 1, 2, 128, 64, dtype=T.float16), meta(T, 1, 2, 128, 64)),
     r"k and v must have q's dtype"),
    (lambda T: (meta(T, 1, 2, 128, 64), meta(T, 1, 2, 64, 64), meta(T, 1, 2, 128, 64)), r"k and v must have q's shape"),
    (lambda T: (meta(T, 1, 2, 100, 64),) * 3, r"q: sequence length 100"),
])
def test_bad_arguments_raise_value_error_naming_them(T, make, word):
    st = sieve.Attention("dense", grid=(2, 8, 8))
    with pytest.raises(ValueError, match=word):
        st(*make(T))


def test_text_len(T):
    st = sieve.Attention("dense", grid=(2, 8, 8), text=16)
    q = meta(T, 1, 2, 144, 64)
    assert st(q, q, q, text_len=16).shape == q.shape
    assert st(q, q, q, text_len=10).shape == q.shape
    with pytest.raises(ValueError, match=r"text_len=20: each length must be in 0\.\.16"):
        st(q, q, q, text_len=20)
    with pytest.raises(ValueError, match="text_len: one int"):
        st(q, q, q, text_len=[3])
    shape = st.shape_for(3, 2, 144, 64)
    assert st.text_lens(shape, [16, 5, 0]) == (16, 5, 0)
    assert st.text_lens(shape, 16) is None  # the whole text
    with pytest.raises(ValueError, match="text_len: 2 lengths for a batch of 3"):
        st.text_lens(shape, [1, 2])


def test_bad_layout_and_geometry(T):
    with pytest.raises(ValueError, match="layout"):
        sieve.Attention("dense", grid=(2, 8, 8), layout="sbhd")
    with pytest.raises(ValueError, match="grid"):
        sieve.Attention("dense", grid=(2, 8))
    q = meta(T, 1, 2, 128, 64)
    with pytest.raises(ValueError, match="grid: pattern dense declares no geometry"):
        sieve.Attention("dense")(q, q, q)


def test_token_offsets_are_not_built_yet():
    with pytest.raises(NotImplementedError, match="q_offset"):
        sieve.Attention("dense", grid=(2, 8, 8), q_offset=128)


def test_head_offset_gives_the_global_heads_classes():
    svg = sieve.Pattern("svg")
    a = sieve.Attention(svg, grid=(2, 8, 8), head_offset=3)
    heads = lambda p: next(x for x in p.ir.splitlines() if x.startswith("heads "))  # noqa: E731
    assert heads(a.pattern) != heads(svg)   # classes rotated by the odd offset
    assert sieve.Attention(svg, grid=(2, 8, 8), head_offset=2).pattern.ir == svg.ir


def test_compile_traces_with_no_graph_break(T):
    st = sieve.Attention("lvsa", grid=(2, 8, 8), text=16, layout="bshd", layer=3)

    def f(x, w):
        q = (x @ w).unflatten(-1, (2, 64))
        o, lse = st(q, q, q, return_lse=True)
        return o.flatten(2) * 2, lse.sum()

    x, w = meta(T, 1, 144, 128), meta(T, 128, 128)
    ex = T._dynamo.explain(f)(x, w)
    assert ex.graph_break_count == 0 and ex.graph_count == 1, ex
    code = ex.graphs[0].code
    # The state id is a constant and the step -1 ("the state's clock"):
    # one graph serves every denoising step.
    assert "torch.ops.sieve.attention_lse(" in code and ", %d, -1, -1)" % st.id in code


def test_functional_compile_has_no_graph_break(T):
    pat = sieve.Pattern("frame_window", window=1)

    def f(q):
        return sieve.attention(q, q, q, pat, step=0, layer=2, grid=(2, 8, 8))

    ex = T._dynamo.explain(f)(meta(T, 1, 2, 128, 128))
    assert ex.graph_break_count == 0, ex


@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_launch_descriptors(T, layout, monkeypatch):
    """The packed q, k, v, o descriptors the C call reads, with the plan
    replaced by a recorder (no GPU here)."""
    from sieve import _torch
    st = sieve.Attention("dense", grid=(1, 16, 16), layout=layout)
    B, H, S, D = 2, 3, 256, 64
    qkv = T.empty(B, S, 3, H, D, dtype=T.bfloat16)        # a fused projection's output
    q, k, v = (qkv[:, :, i] for i in range(3))             # [B, S, H, D] views
    if layout == "bhsd":
        q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    seen = {}

    class Plan:
        text_len = None

        def launch(self, descs, lse, stream, scale, step, layer):
            seen.update(descs=[st._descs[i] for i in range(4)], step=step, layer=layer)

    b = _torch._Bound()
    b.plan, b.lse, b.dev = Plan(), T.empty(B, H, S), 0
    b.B, b.H, b.S, b.D, b.shape = B, H, S, D, None
    b.o_strides = (H * S * D, S * D, D) if layout == "bhsd" else (S * H * D, D, H * D)
    monkeypatch.setattr(st, "_validate", lambda *a: b)
    monkeypatch.setattr(_torch, "_raw_stream", lambda dev: 0)
    o = st(q, k, v, step=5)
    d = seen["descs"]
    # q, k, v: element (b, h, s, 0) of the fused buffer, in (b, h, s) order.
    assert [(x.stride_b, x.stride_h, x.stride_s) for x in d[:3]] == [(S * 3 * H * D, D, 3 * H * D)] * 3
    assert [x.ptr for x in d[:3]] == [qkv.data_ptr() + 2 * i * H * D for i in range(3)]
    assert (d[3].ptr, d[3].stride_b, d[3].stride_h, d[3].stride_s) == (o.data_ptr(), *b.o_strides)
    assert o.shape == q.shape and o.is_contiguous()
    assert (seen["step"], seen["layer"]) == (5, 0)
