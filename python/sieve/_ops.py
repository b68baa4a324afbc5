"""sieve as torch custom ops, so torch.compile keeps it in the graph.

Two ops, because an op's outputs are fixed by its schema: `sieve::attention`
returns O; `sieve::attention_lse` returns O and the row LSE. The state id,
step and text length are ints; -1 means "the state's own" (its clock's
step, its compiled text length), so a compiled graph does not specialise on
the denoising step and is traced once for every step.

The real kernels are registered for CUDA only: on meta tensors (and under
torch.compile's fake tensors) the fake implementation answers, with the
same checks as the eager path.
"""
import weakref

import torch

from . import _checks

# Live states by id: the op carries the id, a plain int that torch.compile
# bakes into the graph as a constant; the states (_torch.py) enter here.
_states = weakref.WeakValueDictionary()


def _state(state):
    st = _states.get(state)
    if st is None:
        raise ValueError("state: sieve.Attention %d no longer exists" % state)
    return st


def _opt(x):
    return None if x < 0 else x


def _fake_checks(q, k, v, state, text_len):
    """The eager path's checks, at trace time: arguments, geometry, text length."""
    st = _state(state)
    dims = _checks.inputs(q, k, v, st.layout)
    st.text_lens(st.shape_for(*dims), _opt(text_len))
    return dims


@torch.library.custom_op("sieve::attention", mutates_args=(), device_types="cuda")
def attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: int, step: int,
                 text_len: int) -> torch.Tensor:
    return _state(state).run(q, k, v, _opt(step), _opt(text_len), False)[0]


@attention_op.register_fake
def _attention_fake(q, k, v, state, step, text_len):
    _fake_checks(q, k, v, state, text_len)
    return _checks.new_output(q, _state(state).layout)


@torch.library.custom_op("sieve::attention_lse", mutates_args=(), device_types="cuda")
def attention_lse_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: int, step: int,
                     text_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    return _state(state).run(q, k, v, _opt(step), _opt(text_len), True)


@attention_lse_op.register_fake
def _attention_lse_fake(q, k, v, state, step, text_len):
    B, H, S, _ = _fake_checks(q, k, v, state, text_len)
    return _checks.new_output(q, _state(state).layout), _checks.new_lse(B, H, S, q.device)


def call(state, q, k, v, step=None, text_len=None, return_lse=False):
    step = -1 if step is None else int(step)
    if text_len is not None and not isinstance(text_len, int):
        raise ValueError("text_len: one int for the whole batch under torch.compile "
                         "(lengths per batch element run eagerly)")
    text_len = -1 if text_len is None else text_len
    if return_lse:
        return tuple(torch.ops.sieve.attention_lse(q, k, v, state, step, text_len))
    return torch.ops.sieve.attention(q, k, v, state, step, text_len)
