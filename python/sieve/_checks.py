"""Argument checks for the torch layer. They read only metadata (shape,
stride, dtype, device), so the fake implementation runs them too and a bad
call fails while torch.compile traces, not at the first launch."""
import torch

DTYPES = (torch.bfloat16, torch.float16)
HEAD_DIMS = (64, 128)
LAYOUTS = ("bhsd", "bshd")


def dims(x, layout):
    """(B, H, S, D) of a [B, H, S, D] or [B, S, H, D] tensor."""
    b, a, c, d = x.shape
    return (b, a, c, d) if layout == "bhsd" else (b, c, a, d)


def layout_arg(layout):
    if layout not in LAYOUTS:
        raise ValueError("layout must be 'bhsd' ([B, H, S, D]) or 'bshd' ([B, S, H, D]), got %r" % (layout,))
    return layout


def inputs(q, k, v, layout):
    """Checks q, k, v for one launch; returns (B, H, S, D)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise ValueError("%s must be a torch.Tensor, got %s" % (name, type(x).__name__))
        if x.dim() != 4:
            raise ValueError("%s must have 4 dims (%s), got shape %s"
                             % (name, "[B, H, S, D]" if layout == "bhsd" else "[B, S, H, D]", tuple(x.shape)))
        if x.dtype not in DTYPES:
            raise ValueError("%s must be bfloat16 or float16, got %s" % (name, x.dtype))
        if x.device.type not in ("cuda", "meta"):
            raise ValueError("%s must be on a CUDA device, got %s" % (name, x.device))
        st = x.stride()
        if st[3] != 1:
            raise ValueError("%s: the last dim must be contiguous (stride 1), got strides %s" % (name, st))
        if any(s % 8 for s in st[:3]):
            raise ValueError("%s: strides must be multiples of 8 elements (16-byte rows), got %s" % (name, st))
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError("k and v must have q's dtype %s, got %s and %s" % (q.dtype, k.dtype, v.dtype))
    if k.device != q.device or v.device != q.device:
        raise ValueError("k and v must be on q's device %s, got %s and %s" % (q.device, k.device, v.device))
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError("k and v must have q's shape %s, got %s and %s"
                         % (tuple(q.shape), tuple(k.shape), tuple(v.shape)))
    B, H, S, D = dims(q, layout)
    if D not in HEAD_DIMS:
        raise ValueError("q: head dim %d is not supported (sieve runs %s)" % (D, " and ".join(map(str, HEAD_DIMS))))
    return B, H, S, D


def new_output(q, layout):
    """O in q's layout, contiguous: BSHD output flattens to [B, S, H*D] free."""
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)


def new_lse(B, H, S, device):
    return torch.empty((B, H, S), dtype=torch.float32, device=device)
