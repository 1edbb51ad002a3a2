"""The ``array`` plugin: reductions, shape ops, indexing, concatenate/stack, stop_gradient.

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
from autodag import REQUIRED, OpDef, Sample

__all__ = ["OPS", "autodag_register_ops"]

_Rng = np.random.Generator


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple) as a tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    seq = axis if isinstance(axis, tuple) else (axis,)
    return tuple(int(ax) % ndim if ndim else int(ax) for ax in seq)


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

# Sum and mean run once per training step on small arrays too, where numpy.sum's
# argument handling costs more than the addition; ndarray methods do the same reduction.
def _sum(a: Any, axis: Any, keepdims: bool) -> Any:
    if a.__class__ is np.ndarray:
        return _add_reduce(a, axis, None, None, keepdims)  # what ndarray.sum calls
    if axis is None and not keepdims and (a.__class__ is float or a.__class__ is int):
        return a  # a Python scalar is its own sum, and stays a Python scalar
    return np.sum(a, axis=axis, keepdims=keepdims)


def _mean(a: Any, axis: Any, keepdims: bool) -> Any:
    if a.__class__ is np.ndarray:
        if axis is None and not keepdims and a.size and (
                a.dtype == np.float64 or a.dtype == np.float32):
            # What ndarray.mean computes for these dtypes, without its Python layer.
            return _add_reduce(a, None) / a.size
        return a.mean(axis=axis, keepdims=keepdims)
    if axis is None and not keepdims and (a.__class__ is float or a.__class__ is int):
        return float(a)
    return np.mean(a, axis=axis, keepdims=keepdims)


def _mean_grad(g: Any, like: Any, axis: Any, keepdims: bool) -> Any:
    if like.__class__ is not np.ndarray:
        like = np.asarray(like)
    shape = like.shape
    count = like.size if axis is None else math.prod(shape[ax] for ax in _axes(axis, len(shape)))
    ge = g if keepdims or axis is None else np.expand_dims(g, axis)
    part = np.divide(ge, count) if count else ge
    if np.ndim(part) == 0 and like.size <= 4096:
        # A scalar spread over a small array: cheaper made than a broadcast view.
        return np.full(shape, part)
    return np.broadcast_to(part, shape)


def _max_weights(a: Any, axis: Any) -> Any:
    arr = np.asarray(a)
    top = np.max(arr, axis=axis, keepdims=True)
    hit = arr == top
    count = np.sum(hit, axis=axis, keepdims=True)
    return np.divide(hit, np.maximum(count, 1), dtype=_float_dtype(arr))


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


def _part_index(likes: Sequence[Any], index: int, axis: int) -> tuple[Any, ...]:
    ndim = np.ndim(likes[0])
    ax = axis % ndim
    start = sum(int(np.shape(x)[ax]) for x in likes[:index])
    stop = start + int(np.shape(likes[index])[ax])
    return (slice(None),) * ax + (slice(start, stop),)


def _concat_part(g: Any, *likes: Any, index: int, axis: int) -> Any:
    return np.asarray(g)[_part_index(likes, index, axis)]


def _concat_pad(h: Any, *likes: Any, index: int, axis: int) -> Any:
    shapes = [np.shape(x) for x in likes]
    ax = axis % len(shapes[0])
    full = list(shapes[0])
    full[ax] = sum(s[ax] for s in shapes)
    z = np.zeros(tuple(full), dtype=_float_dtype(h))
    z[_part_index(likes, index, axis)] = h
    return z


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


def _concatenate_vjp(xp: Any, g: Any, out: Any, *arrays: Any, axis: int) -> tuple[Any, ...]:
    return tuple(
        xp.concat_part([g, *arrays], index=k, axis=axis) for k in range(len(arrays))
    )


def _stack_vjp(xp: Any, g: Any, out: Any, *arrays: Any, axis: int) -> tuple[Any, ...]:
    return tuple(xp.getitem(g, _stack_index(k, axis)) for k in range(len(arrays)))


def _concat_part_vjp(xp: Any, h: Any, out: Any, g: Any, *likes: Any, index: int,
                     axis: int) -> tuple[Any, ...]:
    return (xp.concat_pad([h, *likes], index=index, axis=axis), *(None for _ in likes))


def _concat_pad_vjp(xp: Any, h: Any, out: Any, g: Any, *likes: Any, index: int,
                    axis: int) -> tuple[Any, ...]:
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
        Sample((x,), {"axis": 1, "keepdims": True}),
        Sample((x,), {"keepdims": True}),
        Sample((r(()),)),
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
    ]


def _stack_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((3,)))),
        Sample((r((2, 3)), r((2, 3)), r((2, 3))), {"axis": -1}),
        Sample((r((2, 3)), r((2, 3))), {"axis": 1}),
        Sample((r(()), r(()))),
    ]


def _unary_samples(rng: _Rng) -> list[Sample]:
    return [Sample((rng.standard_normal((2, 3)),)), Sample((rng.standard_normal(()),))]


def _mean_grad_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((3,)), r((2, 3))), {"axis": 0}),
        Sample((r(()), r((2, 3)))),
        Sample((r((2, 1)), r((2, 3))), {"axis": -1, "keepdims": True}),
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
    ]


def _concat_pad_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)), r((1, 3)), r((2, 3))), {"index": 1, "axis": 0}),
        Sample((r((2, 2)), r((2, 2)), r((2, 3))), {"index": 0, "axis": -1}),
    ]


def _reduction(name: str, forward: Callable[..., Any], rule: Callable[..., Any],
               samples: Callable[[_Rng], list[Sample]], doc: str) -> OpDef:
    return OpDef(name=name, arity=1, forward=forward, backward=(rule,),
                 attributes={"axis": None, "keepdims": False}, input_names=("a",),
                 samples=samples, doc=doc)


OPS: Final[tuple[OpDef, ...]] = (
    _reduction(
        "sum", _sum, _sum_vjp,
        _reduction_samples, "Sum over axis (all axes by default), as numpy.sum.",
    ),
    _reduction(
        "mean", _mean,
        lambda xp, g, out, a, axis, keepdims: xp.mean_grad(g, a, axis=axis,
                                                           keepdims=keepdims),
        _reduction_samples, "Arithmetic mean over axis, as numpy.mean.",
    ),
    _reduction(
        "max", lambda a, axis, keepdims: np.max(a, axis=axis, keepdims=keepdims),
        lambda xp, g, out, a, axis, keepdims: _keepdims_form(xp, g, axis, keepdims)
        * xp.max_weights(a, axis=axis),
        _max_samples, "Maximum over axis, as numpy.max; ties share the gradient evenly.",
    ),
    OpDef(
        name="reshape", arity=1, attributes={"shape": REQUIRED},
        forward=lambda a, shape: np.reshape(a, shape),
        backward=(lambda xp, g, out, a, shape: xp.reshape_like(g, a),),
        input_names=("a",), samples=_reshape_samples, doc="Give a new shape, as numpy.reshape.",
    ),
    OpDef(
        name="transpose", arity=1, attributes={"axes": None},
        forward=lambda a, axes: np.transpose(a, axes), backward=(_transpose_vjp,),
        input_names=("a",), samples=_transpose_samples,
        doc="Permute the axes (reverse them by default), as numpy.transpose; x.T builds it.",
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
        forward=lambda *arrays, axis: np.concatenate(arrays, axis=axis),
        backward=_concatenate_vjp, samples=_concatenate_samples,
        doc="Join a sequence of arrays along an existing axis, as numpy.concatenate.",
    ),
    OpDef(
        name="stack", arity=None, attributes={"axis": 0},
        forward=lambda *arrays, axis: np.stack(arrays, axis=axis),
        backward=_stack_vjp, samples=_stack_samples,
        doc="Join a sequence of arrays along a new axis, as numpy.stack.",
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
        backward=None, samples=_unary_samples,
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
