"""What the three model families share: the handle apply() returns, and
the token geometry each forward notes for its processors.

The geometry (latent grid after patchify, text count and side) is read off
the transformer's inputs by a forward pre-hook and kept per sequence
length, so the launch path reads it at run time and a compiled graph needs
no guard on it. Under torch.compile the note is taken once, at trace time
(assume_constant_result): the shapes it depends on are guarded anyway.
"""
import itertools
import weakref

import torch

from .._torch import Attention, Clock
from ..core import Pattern

_geometries = weakref.WeakValueDictionary()
_ids = itertools.count(1)


class TokenGeometry:
    """(grid, text, text_after) per sequence length, as the last forward saw it."""

    def __init__(self):
        self.by_tokens = {}
        # Valid text tokens per batch element, read off the prompt's mask
        # by an eager forward; None: the whole text.
        self.text_len = None
        self.id = next(_ids)
        _geometries[self.id] = self

    def note(self, grid, text, text_after):
        tokens = grid[0] * grid[1] * grid[2] + text
        entry = (tuple(grid), text, text_after)
        if self.by_tokens.get(tokens) != entry:
            self.by_tokens[tokens] = entry
        return tokens

    def lookup(self, tokens):
        entry = self.by_tokens.get(tokens)
        if entry is None:
            raise ValueError("q: no forward of this transformer has had %d tokens; call the transformer, "
                             "not its blocks, so sieve sees the latent grid" % tokens)
        return entry


def _note(gid, t, y, x, text, after):
    return _geometries[gid].note((t, y, x), text, bool(after))


try:
    _note_traced = torch._dynamo.assume_constant_result(_note)
except AttributeError:  # pragma: no cover
    _note_traced = _note


def note_geometry(geom, grid, text, text_after):
    f = _note_traced if torch.compiler.is_compiling() else _note
    f(geom.id, int(grid[0]), int(grid[1]), int(grid[2]), int(text), int(text_after))


def arg(args, kwargs, name, index):
    """A forward argument, whether the pipeline passed it by name or position."""
    if name in kwargs:
        return kwargs[name]
    return args[index] if index < len(args) else None


class Handle:
    """What sieve.diffusers.apply() installed: one sieve.Attention per layer.

    step: None counts steps from the calls each layer sees (calls_per_step
    to a step); an int sets the step for every layer, e.g. from a
    pipeline's callback_on_step_end. reset() starts a new video. remove()
    puts the model's own processors back."""

    def __init__(self, transformer, pattern, params, calls_per_step):
        self.transformer = transformer
        self.pattern = pattern if isinstance(pattern, Pattern) else Pattern(pattern, **params)
        self.clock = Clock(calls_per_step)
        self.geometry = TokenGeometry()
        self.states = []
        self._restore = []
        self._hook = None

    def state(self, layer, layout):
        st = Attention(self.pattern, layout=layout, layer=layer, clock=self.clock, geometry=self.geometry)
        self.states.append(st)
        return st

    def install(self, module, processor):
        self._restore.append((module, module.processor))
        module.set_processor(processor)

    def hook(self, fn):
        self._hook = self.transformer.register_forward_pre_hook(fn, with_kwargs=True)

    @property
    def step(self):
        return self.clock.step

    @step.setter
    def step(self, value):
        self.clock.step = None if value is None else int(value)

    def reset(self):
        self.clock.reset()

    def callback_on_step_end(self, pipe, i, t, callback_kwargs):
        """For a pipeline's callback_on_step_end: the next step is i + 1."""
        self.clock.step = i + 1
        return callback_kwargs

    def remove(self):
        for module, proc in reversed(self._restore):
            module.set_processor(proc)
        self._restore.clear()
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def __repr__(self):
        return "<sieve.diffusers handle: %s on %d layers of %s>" % (
            self.pattern, len(self.states), type(self.transformer).__name__)
