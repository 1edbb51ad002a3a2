"""Ops that copy input elements to fixed places: repeat, tile, take, pad (modes constant,
edge, reflect), and diff, each with a "_grad" helper (its transpose) for the rule.

Which input element lands where depends on the input's shape only, so it is read with
NumPy off an ``arange`` of that shape (``positions``: the flat input position of each
output element, -1 for pad's constants). On NumPy values the forward is NumPy's own
function; on another library's arrays one ``take`` of the flattened input at those
positions. Backward rules need the input's shape, which a symbolic rule does not have:
each calls its helper ``<op>_grad(g, like, ...)``, which reads ``like``'s shape at run
time and sums ``g`` into the positions (``scatter_add``); the helper's own gradient is
the op again, so both differentiate to any order. diff is linear too: its helper is
the transpose of a difference, repeated n times.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import namespace_of

from ._xp import as_array, float_dtype, foreign, index_array, reshape, shape_of
from .indexing import _scatter_add

__all__ = ["DIFF", "DIFF_GRAD", "PAD", "PAD_GRAD", "REPEAT", "REPEAT_GRAD", "TAKE",
           "TAKE_GRAD", "TILE", "TILE_GRAD"]

_Rng = np.random.Generator
Positions = Callable[..., np.ndarray[Any, Any]]


def _arange(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    return np.arange(math.prod(shape), dtype=np.intp).reshape(shape)


def _pad_positions(shape: tuple[int, ...], pad_width: Any, mode: str,
                   constant_values: Any) -> np.ndarray[Any, Any]:
    if mode == "constant":
        return np.asarray(np.pad(_arange(shape), pad_width, mode="constant", constant_values=-1))
    if mode not in ("edge", "reflect"):
        raise ValueError(f"pad: mode must be 'constant', 'edge' or 'reflect', got {mode!r}")
    how: Any = mode
    return np.asarray(np.pad(_arange(shape), pad_width, mode=how))


_POSITIONS: Final[dict[str, Positions]] = {
    "repeat": lambda shape, repeats, axis: np.repeat(_arange(shape), repeats, axis),
    "tile": lambda shape, reps: np.tile(_arange(shape), reps),
    "take": lambda shape, indices, axis: np.asarray(np.take(_arange(shape), indices, axis)),
    "pad": _pad_positions,
}


def _np_forward(op: str, a: Any, attrs: dict[str, Any]) -> Any:
    if op == "pad":
        if attrs["mode"] == "constant":
            return np.pad(a, attrs["pad_width"], mode="constant",
                          constant_values=attrs["constant_values"])
        _pad_positions((), 0, attrs["mode"], 0)  # refuses other modes
        return np.pad(a, attrs["pad_width"], mode=attrs["mode"])
    if op == "tile":
        return np.tile(a, attrs["reps"])
    if op == "take":
        return np.take(a, attrs["indices"], attrs["axis"])
    return np.repeat(a, attrs["repeats"], attrs["axis"])


def _gather(op: str) -> Callable[..., Any]:
    def forward(a: Any, **attrs: Any) -> Any:
        if not foreign(a):
            return _np_forward(op, a, attrs)
        xp = namespace_of(a)
        shape = shape_of(a)
        pos = _POSITIONS[op](shape, **attrs)
        flat = reshape(xp, a, (-1,))
        if op == "pad" and attrs["mode"] == "constant":
            fill = xp.asarray([attrs["constant_values"]], dtype=a.dtype)
            flat = xp.concat([flat, fill])  # position size: the constant
            pos = np.where(pos < 0, math.prod(shape), pos)
        picked = xp.take(flat, index_array(xp, pos.reshape(-1)), axis=0)
        return reshape(xp, picked, pos.shape)

    return forward


def _scatter(op: str) -> Callable[..., Any]:
    def forward(g: Any, like: Any, **attrs: Any) -> Any:
        shape = shape_of(like)
        size = math.prod(shape)
        pos = _POSITIONS[op](shape, **attrs)
        pos = np.where(pos < 0, size, pos)  # pad's constants: into a slot cut off below
        if foreign(g) or foreign(like):
            xp = namespace_of(g, like)
            ext: Any = xp.zeros((size + 1,), dtype=float_dtype(xp, g))
        else:
            xp = np
            ext = np.broadcast_to(np.empty((), dtype=np.bool_), (size + 1,))
        z = _scatter_add(g, ext, pos)
        return reshape(xp, z[:size], shape)

    return forward


# --- diff ----------------------------------------------------------------------------
def _along(ax: int, part: slice) -> tuple[Any, ...]:
    return (slice(None),) * ax + (part, Ellipsis)


def _diff(a: Any, n: int, axis: Any) -> Any:
    if not foreign(a):
        return np.diff(a, n, axis)
    (ax,) = _checked_axes("diff", axis, shape_of(a), tuples=False, none=False)
    for _ in range(n):
        a = a[_along(ax, slice(1, None))] - a[_along(ax, slice(None, -1))]
    return a


def _diff_grad(g: Any, like: Any, n: int, axis: Any) -> Any:
    """The transpose of diff: each step puts -g before and +g after each difference."""
    xp = namespace_of(g, like) if foreign(g) or foreign(like) else np
    shape = shape_of(like)
    (ax,) = _checked_axes("diff", axis, shape, tuples=False, none=False)
    h = as_array(xp, g)
    dt = float_dtype(xp, h)
    h = xp.astype(xp.broadcast_to(h, (*shape[:ax], shape[ax] - n, *shape[ax + 1:])), dt)
    for _ in range(n):
        edge = (*shape_of(h)[:ax], 1, *shape_of(h)[ax + 1:])
        zero = xp.zeros(edge, dtype=dt)
        h = xp.concat([zero, h], axis=ax) - xp.concat([h, zero], axis=ax)
    return h


# --- samples ---------------------------------------------------------------------------
def _repeat_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3))
    return [
        Sample((x,), {"repeats": 2, "axis": 1}),
        Sample((x,), {"repeats": 3}),
        Sample((x,), {"repeats": [1, 0, 2], "axis": -1}),
        Sample((rng.standard_normal(()),), {"repeats": 2}),
    ]


def _tile_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3))
    return [
        Sample((x,), {"reps": 2}),
        Sample((x,), {"reps": (2, 1, 2)}),
        Sample((x,), {"reps": (1, 3)}),
    ]


def _take_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4))
    return [
        Sample((x,), {"indices": [0, 2, 2, -1], "axis": 1}),
        Sample((x,), {"indices": np.array([[11, 0], [5, 5]])}),
        Sample((x,), {"indices": 1, "axis": 0}),
    ]


def _pad_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4))
    return [
        Sample((x,), {"pad_width": 1}),
        Sample((x,), {"pad_width": ((1, 2), (0, 3)), "mode": "reflect"}),
        Sample((x,), {"pad_width": ((2, 0), (1, 1)), "mode": "edge"}),
        Sample((x,), {"pad_width": (1, 2), "constant_values": 1.5}),
    ]


def _diff_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 5))
    return [
        Sample((x,)),
        Sample((x,), {"n": 2, "axis": 0}),
        Sample((x,), {"n": 3, "axis": -1}),
    ]


def _grad_samples(op: str, base: Callable[[_Rng], list[Sample]],
                  defaults: dict[str, Any]) -> Callable[[_Rng], list[Sample]]:
    """The op's own samples, made (g, like) pairs of the helper: g shaped like the op's
    output."""
    forward = _diff if op == "diff" else _gather(op)

    def samples(rng: _Rng) -> list[Sample]:
        out = []
        for s in base(rng):
            shape = np.shape(forward(*s.inputs, **{**defaults, **s.attrs}))
            out.append(Sample((rng.standard_normal(shape), s.inputs[0]), s.attrs))
        return out

    return samples


def _linear(attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes of an op's linear part: pad's constants are not the input's, so
    the transpose of its gradient pads with zeros."""
    return {**attrs, "constant_values": 0} if "constant_values" in attrs else attrs


def _pair(name: str, forward: Callable[..., Any], grad: Callable[..., Any],
          attrs: dict[str, Any], samples: Callable[[_Rng], list[Sample]], doc: str,
          input_name: str = "a", helper_doc: str = "") -> tuple[OpDef, OpDef]:
    """An op and its "_grad" helper, each the other's gradient."""
    helper = f"{name}_grad"
    op = OpDef(
        name=name, arity=1, forward=forward, attributes=attrs, input_names=(input_name,),
        backward=(lambda xp, g, out, a, **kw: getattr(xp, helper)(g, a, **kw),),
        samples=samples, doc=doc, array_api=True,
    )
    transpose = OpDef(
        name=helper, arity=2, forward=grad, attributes=attrs,
        backward=(lambda xp, h, out, g, like, **kw: getattr(xp, name)(h, **_linear(kw)), None),
        samples=_grad_samples(name, samples, attrs), array_api=True,
        doc=helper_doc or f"The gradient of {name}: g summed back onto the elements of "
                          "`like` it copies.",
    )
    return op, transpose


REPEAT, REPEAT_GRAD = _pair(
    "repeat", _gather("repeat"), _scatter("repeat"), {"repeats": REQUIRED, "axis": None},
    _repeat_samples, "Repeat each element repeats times (an int, or one count per "
    "element) along axis (None: flattened), as numpy.repeat.",
)
TILE, TILE_GRAD = _pair(
    "tile", _gather("tile"), _scatter("tile"), {"reps": REQUIRED}, _tile_samples,
    "The input repeated reps times along each axis, as numpy.tile.", input_name="A",
)
TAKE, TAKE_GRAD = _pair(
    "take", _gather("take"), _scatter("take"), {"indices": REQUIRED, "axis": None},
    _take_samples, "Elements at static integer indices along axis (None: of the "
    "flattened input), as numpy.take; repeats accumulate their gradients.",
)
PAD, PAD_GRAD = _pair(
    "pad", _gather("pad"), _scatter("pad"),
    {"pad_width": REQUIRED, "mode": "constant", "constant_values": 0}, _pad_samples,
    "Pad with pad_width as numpy.pad, in mode 'constant' (constant_values, not "
    "differentiated), 'edge' or 'reflect'.", input_name="array",
)
DIFF, DIFF_GRAD = _pair(
    "diff", _diff, _diff_grad, {"n": 1, "axis": -1}, _diff_samples,
    "The n-th discrete difference along axis, as numpy.diff.",
    helper_doc="The gradient of diff: g through the transpose of n differences, shaped "
               "like `like`.",
)
