"""The ``array`` plugin: reductions, shape ops, indexing, concatenate/stack, stop_gradient.

Ops with an axis take it as their NumPy namesakes do (None, an int, a tuple of ints,
negative ones counting from the end); one NumPy refuses is a ``ShapeMismatchError``
naming the op, the axis and the input's shape, checked only once NumPy has refused it,
so that a valid call costs nothing more.

Backward rules use only Python operators and ``xp.<op>``, and avoid static shapes:
where a gradient must take the shape of an input, a "like" op does it at run time
(``broadcast_like`` and ``unbroadcast`` from the built-in plugin, ``reshape_like``,
``mean_grad``, ``scatter_add``, ``concat_part``/``concat_pad`` here). Each helper has
its own backward rule, so every op can be differentiated again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

import autodag
from autodag import REQUIRED, OpDef, Sample, ShapeMismatchError
from autodag.axes import checked_axes as _checked_axes
from autodag.axes import is_axis_int as _is_int

__all__ = ["OPS", "autodag_register_ops"]

_Rng = np.random.Generator


def _float_dtype(x: Any) -> np.dtype[Any]:
    dt = np.result_type(x)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def _keepdims_form(xp: Any, g: Any, axis: Any, keepdims: bool) -> Any:
    """A reduction's output gradient with the reduced axes put back as length 1.

    ``expand_dims`` normalises negative axes against its output, whose rank is the
    reduced input's, so no shape is needed here.
    """
    if keepdims or axis is None:
        return g  # already keepdims-shaped, or 0-d: broadcasts as it is
    return xp.expand_dims(g, axis)


# --- forward rules ----------------------------------------------------------------
_add_reduce: Any = np.add.reduce


def _bad_axis(op: str, axis: Any, a: Any, *, legacy: bool) -> None:
    """Raise the named error if ``axis`` is what NumPy just refused; else return, and the
    caller re-raises NumPy's own error (an empty max, an unsupported dtype)."""
    _checked_axes(op, axis, np.shape(a), legacy=legacy)


# Sum and mean run once per training step on small arrays too, where numpy.sum's
# argument handling costs more than the addition; ndarray methods do the same reduction.
# The axis is checked only once NumPy has refused it, so the common call pays nothing.
def _sum(a: Any, axis: Any, keepdims: bool) -> Any:
    try:
        if a.__class__ is np.ndarray:
            return _add_reduce(a, axis, None, None, keepdims)  # what ndarray.sum calls
        if axis is None and not keepdims and (a.__class__ is float or a.__class__ is int):
            return a  # a Python scalar is its own sum, and stays a Python scalar
        return np.sum(a, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError):
        _bad_axis("sum", axis, a, legacy=True)
        raise


def _mean(a: Any, axis: Any, keepdims: bool) -> Any:
    try:
        if a.__class__ is np.ndarray:
            if axis is None and not keepdims and a.size and (
                    a.dtype == np.float64 or a.dtype == np.float32):
                # What ndarray.mean computes for these dtypes, without its Python layer.
                return _add_reduce(a, None) / a.size
            return a.mean(axis=axis, keepdims=keepdims)
        if axis is None and not keepdims and (a.__class__ is float or a.__class__ is int):
            return float(a)
        return np.mean(a, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError):
        _bad_axis("mean", axis, a, legacy=False)
        raise


def _max(a: Any, axis: Any, keepdims: bool) -> Any:
    try:
        return np.max(a, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError):
        _bad_axis("max", axis, a, legacy=True)
        raise


def _mean_grad(g: Any, like: Any, axis: Any, keepdims: bool) -> Any:
    shape = np.shape(like)
    size = math.prod(shape)
    count = math.prod(shape[ax] for ax in _checked_axes("mean", axis, shape))
    ge = g if keepdims or axis is None else np.expand_dims(g, axis)
    part = np.divide(ge, count) if count else ge
    if np.ndim(part) == 0 and size <= 4096:
        # A scalar spread over a small array: cheaper made than a broadcast view.
        return np.full(shape, part)
    return np.broadcast_to(part, shape)


def _max_weights(a: Any, axis: Any) -> Any:
    top = np.max(a, axis=axis, keepdims=True)
    hit = a == top
    count = np.sum(hit, axis=axis, keepdims=True)
    return np.divide(hit, np.maximum(count, 1), dtype=_float_dtype(a))


def _has_array_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, tuple, np.ndarray)) for p in parts)


def _scatter_add(g: Any, like: Any, index: Any) -> Any:
    z = np.zeros(np.shape(like), dtype=_float_dtype(g))
    if _has_array_index(index):
        np.add.at(z, index, g)  # repeated indices accumulate, as the forward read them twice
    else:
        z[index] += g
    return z


def _getitem(a: Any, index: Any) -> Any:
    return np.asarray(a)[index]


def _join_axis(op: str, likes: Sequence[Any], axis: Any) -> int | None:
    """concatenate's axis checked against its inputs: an axis of them, or None (flattened)."""
    if axis is None:
        return None
    shape = np.shape(likes[0])
    if axis.__class__ is int and -len(shape) <= axis < len(shape):
        return int(axis % len(shape))  # the common call, without building a message
    what = f"inputs of shapes {[np.shape(x) for x in likes]}"
    if not shape and _is_int(axis):
        raise ShapeMismatchError(
            f"{op}: axis {axis!r} of {what}: 0-d inputs have no axis to join along; "
            f"concatenate them with axis=None, or stack them")
    (ax,) = _checked_axes(op, axis, shape, tuples=False, what=what)
    return ax


def _concatenate(*arrays: Any, axis: Any) -> Any:
    try:
        return np.concatenate(arrays, axis=axis)
    except (TypeError, ValueError):
        if arrays:
            _join_axis("concatenate", arrays, axis)
        raise  # not the axis: NumPy's error says what else (shapes that do not match)


def _part(likes: Sequence[Any], index: int, axis: Any) -> tuple[int | None, int, int]:
    """Where ``likes[index]`` lies in ``concatenate(likes, axis)``: the axis (None: the
    flattened result) and the part's start and stop along it."""
    ax = _join_axis("concatenate", likes, axis)
    if ax is None:
        start = sum(math.prod(np.shape(x)) for x in likes[:index])
        return None, start, start + math.prod(np.shape(likes[index]))
    start = sum(int(np.shape(x)[ax]) for x in likes[:index])
    return ax, start, start + int(np.shape(likes[index])[ax])


def _concat_part(g: Any, *likes: Any, index: int, axis: Any) -> Any:
    ax, start, stop = _part(likes, index, axis)
    if ax is None:
        return np.reshape(g[start:stop], np.shape(likes[index]))
    return g[(slice(None),) * ax + (slice(start, stop),)]


def _concat_pad(h: Any, *likes: Any, index: int, axis: Any) -> Any:
    ax, start, stop = _part(likes, index, axis)
    dtype = _float_dtype(h)
    if ax is None:
        z = np.zeros(sum(math.prod(np.shape(x)) for x in likes), dtype=dtype)
        z[start:stop] = np.ravel(h)
        return z
    full = list(np.shape(likes[0]))
    full[ax] = sum(np.shape(x)[ax] for x in likes)
    z = np.zeros(tuple(full), dtype=dtype)
    z[(slice(None),) * ax + (slice(start, stop),)] = h
    return z


def _stack(*arrays: Any, axis: Any) -> Any:
    try:
        return np.stack(arrays, axis=axis)
    except (TypeError, ValueError):
        if arrays:
            shape = np.shape(arrays[0])
            # The new axis is one of the result's, which has one axis more than each input.
            _checked_axes("stack", axis, shape, tuples=False, none=False, rank=len(shape) + 1,
                          what=f"the result of stacking inputs of shape {shape}")
        raise


def _transpose(a: Any, axes: Any) -> Any:
    try:
        return np.transpose(a, axes)
    except (TypeError, ValueError) as exc:
        shape = np.shape(a)
        if axes is not None:
            what = f"an input of shape {shape}"
            if not isinstance(axes, (tuple, list)):
                raise ShapeMismatchError(
                    f"transpose: axes must be None or a tuple of ints, got {axes!r} for "
                    f"{what}") from exc
            _checked_axes("transpose", tuple(axes), shape, none=False, what=what, name="axes")
            if len(axes) != len(shape):
                raise ShapeMismatchError(
                    f"transpose: axes {tuple(axes)!r} name {len(axes)} axes, but {what} "
                    f"has {len(shape)}: give a permutation of all of them") from exc
        raise


def _stack_index(k: int, axis: int) -> tuple[Any, ...]:
    """Index picking entry ``k`` of ``axis`` of a stacked array, without knowing its rank."""
    if axis >= 0:
        return (slice(None),) * axis + (k,)
    return (Ellipsis, k) + (slice(None),) * (-axis - 1)


# --- backward rules ---------------------------------------------------------------
def _sum_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any, keepdims: bool) -> Any:
    if axis is None:
        return xp.broadcast_like(g, a)  # g has no axes to restore: one call
    return xp.broadcast_like(_keepdims_form(xp, g, axis, keepdims), a)


def _transpose_vjp(xp: Any, g: Any, out: Any, a: Any, axes: Any) -> Any:
    if axes is None:
        return xp.transpose(g)
    n = len(axes)
    inverse = tuple(sorted(range(n), key=lambda i: int(axes[i]) % n))
    return xp.transpose(g, inverse)


def _concatenate_vjp(xp: Any, g: Any, out: Any, *arrays: Any, axis: Any) -> tuple[Any, ...]:
    return tuple(
        xp.concat_part([g, *arrays], index=k, axis=axis) for k in range(len(arrays))
    )


def _stack_vjp(xp: Any, g: Any, out: Any, *arrays: Any, axis: int) -> tuple[Any, ...]:
    return tuple(xp.getitem(g, _stack_index(k, axis)) for k in range(len(arrays)))


def _concat_part_vjp(xp: Any, h: Any, out: Any, g: Any, *likes: Any, index: int,
                     axis: Any) -> tuple[Any, ...]:
    return (xp.concat_pad([h, *likes], index=index, axis=axis), *(None for _ in likes))


def _concat_pad_vjp(xp: Any, h: Any, out: Any, g: Any, *likes: Any, index: int,
                    axis: Any) -> tuple[Any, ...]:
    return (xp.concat_part([h, *likes], index=index, axis=axis), *(None for _ in likes))


# --- sample inputs for autodag.testing.check_op -------------------------------------
def _reduction_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    x = r((2, 3, 4))
    return [
        Sample((x,)),
        Sample((x,), {"axis": 0}),
        Sample((x,), {"axis": -1}),
        Sample((x,), {"axis": (0, 2)}),
        Sample((x,), {"axis": (-1, 0), "keepdims": True}),
        Sample((x,), {"axis": 1, "keepdims": True}),
        Sample((x,), {"keepdims": True}),
        Sample((x,), {"axis": ()}),
        Sample((r(()),)),
        Sample((r(()),), {"axis": (), "keepdims": True}),
    ]


def _max_samples(rng: _Rng) -> list[Sample]:
    ties = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.5]])
    return [*_reduction_samples(rng), Sample((ties,), {"axis": 1}), Sample((ties,))]


def _reshape_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)),), {"shape": (3, 2)}),
        Sample((r((2, 3)),), {"shape": (-1,)}),
        Sample((r((6,)),), {"shape": (2, 1, 3)}),
        Sample((r(()),), {"shape": (1, 1)}),
    ]


def _transpose_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3, 4))
    return [
        Sample((x,)),
        Sample((x,), {"axes": (2, 0, 1)}),
        Sample((x,), {"axes": (-1, 0, 1)}),
        Sample((rng.standard_normal((3,)),)),
    ]


def _broadcast_to_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)),), {"shape": (2, 3)}),
        Sample((r((2, 1)),), {"shape": (2, 4)}),
        Sample((r(()),), {"shape": (3,)}),
    ]


def _getitem_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((4, 5))
    return [
        Sample((x,), {"index": (slice(1, None), np.array([0, 2, 2]))}),
        Sample((x,), {"index": np.array([3, 0, 3, 3])}),
        Sample((x,), {"index": (1, slice(None, None, 2))}),
        Sample((x,), {"index": (Ellipsis, None, -1)}),
        Sample((x,), {"index": x[:, 0] > 0}),
        Sample((x,), {"index": (np.array([[0, 1], [1, 3]]), np.array([[4, 4], [0, 2]]))}),
        Sample((x,), {"index": 2}),
    ]


def _concatenate_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)), r((1, 3)))),
        Sample((r((2, 1)), r((2, 3)), r((2, 2))), {"axis": -1}),
        Sample((r((4,)),)),
        Sample((r((2, 3)), r(()), r((4,))), {"axis": None}),  # flattened: any shapes
    ]


def _stack_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((3,)))),
        Sample((r((2, 3)), r((2, 3)), r((2, 3))), {"axis": -1}),
        Sample((r((2, 3)), r((2, 3))), {"axis": 1}),
        Sample((r(()), r(()))),
        Sample((r((2, 3)), r((2, 3))), {"axis": -3}),
    ]


def _unary_samples(rng: _Rng) -> list[Sample]:
    return [Sample((rng.standard_normal((2, 3)),)), Sample((rng.standard_normal(()),))]


def _max_weights_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3, 4))
    return [*_unary_samples(rng), Sample((x,), {"axis": (0, -1)}), Sample((x,), {"axis": ()})]


def _mean_grad_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((2, 3))), {"axis": 0}),
        Sample((r(()), r((2, 3)))),
        Sample((r((2, 1)), r((2, 3))), {"axis": -1, "keepdims": True}),
        Sample((r((3,)), r((2, 3, 4))), {"axis": (-1, 0)}),
        Sample((r((2, 3)), r((2, 3))), {"axis": ()}),
    ]


def _reshape_like_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((2, 3)), r((3, 2)))), Sample((r((6,)), r((1, 6, 1))))]


def _scatter_add_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((5,))), {"index": np.array([0, 4, 0])}),
        Sample((r((2, 2)), r((3, 4))), {"index": (slice(1, None), slice(None, 2))}),
    ]


def _concat_part_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3, 3)), r((1, 3)), r((2, 3))), {"index": 1, "axis": 0}),
        Sample((r((2, 5)), r((2, 2)), r((2, 3))), {"index": 0, "axis": -1}),
        Sample((r((7,)), r((2, 3)), r(())), {"index": 0, "axis": None}),
    ]


def _concat_pad_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)), r((1, 3)), r((2, 3))), {"index": 1, "axis": 0}),
        Sample((r((2, 2)), r((2, 2)), r((2, 3))), {"index": 0, "axis": -1}),
        Sample((r(()), r((2, 3)), r(())), {"index": 1, "axis": None}),
    ]


_AXIS_DOC: Final = (
    "axis is None (every axis, the default), an int or a tuple of ints in any order, "
    "negative ones counting from the end; () reduces nothing. keepdims keeps the reduced "
    "axes as length 1. An axis out of range or named twice is a ShapeMismatchError."
)


def _reduction(name: str, forward: Callable[..., Any], rule: Callable[..., Any],
               samples: Callable[[_Rng], list[Sample]], doc: str) -> OpDef:
    return OpDef(name=name, arity=1, forward=forward, backward=(rule,),
                 attributes={"axis": None, "keepdims": False}, input_names=("a",),
                 samples=samples, doc=doc)


OPS: Final[tuple[OpDef, ...]] = (
    _reduction(
        "sum", _sum, _sum_vjp,
        _reduction_samples, "Sum over axis, as numpy.sum. " + _AXIS_DOC,
    ),
    _reduction(
        "mean", _mean,
        lambda xp, g, out, a, axis, keepdims: xp.mean_grad(g, a, axis=axis,
                                                           keepdims=keepdims),
        _reduction_samples, "Arithmetic mean over axis, as numpy.mean. " + _AXIS_DOC
        + " Unlike sum and max (as in NumPy), a 0-d input takes no int axis.",
    ),
    _reduction(
        "max", _max,
        lambda xp, g, out, a, axis, keepdims: _keepdims_form(xp, g, axis, keepdims)
        * xp.max_weights(a, axis=axis),
        _max_samples, "Maximum over axis, as numpy.max; ties share the gradient evenly. "
        + _AXIS_DOC,
    ),
    OpDef(
        name="reshape", arity=1, attributes={"shape": REQUIRED},
        forward=lambda a, shape: np.reshape(a, shape),
        backward=(lambda xp, g, out, a, shape: xp.reshape_like(g, a),),
        input_names=("a",), samples=_reshape_samples, doc="Give a new shape, as numpy.reshape.",
    ),
    OpDef(
        name="transpose", arity=1, attributes={"axes": None},
        forward=_transpose, backward=(_transpose_vjp,),
        input_names=("a",), samples=_transpose_samples,
        doc="Permute the axes (reverse them by default), as numpy.transpose; x.T builds it. "
            "axes is a permutation of all the input's axes, negative ones counting from "
            "the end.",
    ),
    OpDef(
        name="broadcast_to", arity=1, attributes={"shape": REQUIRED},
        forward=lambda a, shape: np.broadcast_to(a, shape),
        backward=(lambda xp, g, out, a, shape: xp.unbroadcast(g, a),),
        input_names=("a",), samples=_broadcast_to_samples,
        doc="Broadcast to a shape, as numpy.broadcast_to.",
    ),
    OpDef(
        name="getitem", arity=1, attributes={"index": REQUIRED}, forward=_getitem,
        backward=(lambda xp, g, out, a, index: xp.scatter_add(g, a, index=index),),
        input_names=("a",), samples=_getitem_samples,
        doc="a[index], basic and integer-array indexing; x[...] builds it. Repeated "
            "indices accumulate their gradients (numpy.add.at).",
    ),
    OpDef(
        name="concatenate", arity=None, attributes={"axis": 0},
        forward=_concatenate,
        backward=_concatenate_vjp, samples=_concatenate_samples,
        doc="Join a sequence of arrays along an existing axis (an int, negative counting "
            "from the end; None joins them flattened, whatever their shapes), as "
            "numpy.concatenate.",
    ),
    OpDef(
        name="stack", arity=None, attributes={"axis": 0},
        forward=_stack,
        backward=_stack_vjp, samples=_stack_samples,
        doc="Join a sequence of arrays of one shape along a new axis, as numpy.stack: "
            "an int axis of the result, negative counting from its end.",
    ),
    OpDef(
        name="stop_gradient", arity=1, forward=lambda a: a, backward=None,
        input_names=("a",), samples=_unary_samples,
        doc="The input unchanged; no gradient flows back through it.",
    ),
    # Helpers that backward rules call through xp; each is differentiable again.
    OpDef(
        name="mean_grad", arity=2, attributes={"axis": None, "keepdims": False},
        forward=_mean_grad,
        backward=(lambda xp, h, out, g, like, axis, keepdims: xp.mean(h, axis=axis,
                                                                      keepdims=keepdims),
                  None),
        samples=_mean_grad_samples,
        doc="The gradient of mean: g spread evenly over the axes of `like` mean reduced.",
    ),
    OpDef(
        name="max_weights", arity=1, attributes={"axis": None}, forward=_max_weights,
        backward=None, samples=_max_weights_samples,
        doc="1/count where a equals its maximum over axis, else 0 (the gradient of max).",
    ),
    OpDef(
        name="reshape_like", arity=2, forward=lambda a, like: np.reshape(a, np.shape(like)),
        backward=(lambda xp, h, out, a, like: xp.reshape_like(h, a), None),
        samples=_reshape_like_samples, doc="Reshape a to the shape of `like`.",
    ),
    OpDef(
        name="scatter_add", arity=2, attributes={"index": REQUIRED}, forward=_scatter_add,
        backward=(lambda xp, h, out, g, like, index: xp.getitem(h, index=index), None),
        samples=_scatter_add_samples,
        doc="Zeros shaped like `like` with g added at index (numpy.add.at): getitem's "
            "gradient.",
    ),
    OpDef(
        name="concat_part", arity=None, attributes={"index": REQUIRED, "axis": 0},
        forward=_concat_part, backward=_concat_part_vjp, samples=_concat_part_samples,
        doc="The slice of g = concatenate(likes, axis) that came from likes[index].",
    ),
    OpDef(
        name="concat_pad", arity=None, attributes={"index": REQUIRED, "axis": 0},
        forward=_concat_pad, backward=_concat_pad_vjp, samples=_concat_pad_samples,
        doc="Zeros shaped like concatenate(likes, axis) with h in the place of "
            "likes[index].",
    ),
)


@autodag.hookimpl
def autodag_register_ops() -> list[OpDef]:
    """The ops of autodag-array."""
    return list(OPS)
