"""Shape ops (reshape, transpose, broadcast_to), joining (concatenate, stack) and
stop_gradient, with the helpers their rules use (reshape_like, concat_part, concat_pad).

On another library's arrays each is the standard's namesake (``reshape``,
``permute_dims``, ``broadcast_to``, ``concat``, ``stack``); concat_pad puts zeros on
either side of its part with ``concat`` rather than writing into a zero array, which
not every library allows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample, ShapeMismatchError
from autodag.axes import checked_axes as _checked_axes
from autodag.axes import is_axis_int as _is_int
from autodag.backend import is_array, namespace_of

from ._xp import NUMPY, PY_NUMBERS, as_array, float_dtype, reshape, shape_of

__all__ = ["BROADCAST_TO", "CONCATENATE", "CONCAT_PAD", "CONCAT_PART", "RESHAPE",
           "RESHAPE_LIKE", "STACK", "STOP_GRADIENT", "TRANSPOSE", "permutation"]

_Rng = np.random.Generator


def _float_dtype(x: Any) -> np.dtype[Any]:
    dt = np.result_type(x)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def _shape_arg(shape: Any) -> tuple[int, ...]:
    """A ``shape=`` attribute as the standard's functions take it: a tuple."""
    if isinstance(shape, (tuple, list, np.ndarray)):
        return tuple(int(s) for s in shape)
    return (int(shape),)


# --- forward rules ----------------------------------------------------------------
def _reshape(a: Any, shape: Any) -> Any:
    if a.__class__ in NUMPY or not is_array(a):
        return np.reshape(a, shape)
    return reshape(namespace_of(a), a, _shape_arg(shape))


def _reshape_like(a: Any, like: Any) -> Any:
    if ((a.__class__ not in NUMPY and is_array(a))
            or (like.__class__ not in NUMPY and is_array(like))):
        xp = namespace_of(a, like)
        return reshape(xp, as_array(xp, a), shape_of(like))
    return np.reshape(a, np.shape(like))


def _broadcast_to(a: Any, shape: Any) -> Any:
    if a.__class__ in NUMPY or not is_array(a):
        return np.broadcast_to(a, shape)
    return namespace_of(a).broadcast_to(a, _shape_arg(shape))


def _join_axis(op: str, likes: Sequence[Any], axis: Any) -> int | None:
    """concatenate's axis checked against its inputs: an axis of them, or None (flattened)."""
    if axis is None:
        return None
    shape = shape_of(likes[0])
    if axis.__class__ is int and -len(shape) <= axis < len(shape):
        return int(axis % len(shape))  # the common call, without building a message
    what = f"inputs of shapes {[shape_of(x) for x in likes]}"
    if not shape and _is_int(axis):
        raise ShapeMismatchError(
            f"{op}: axis {axis!r} of {what}: 0-d inputs have no axis to join along; "
            f"concatenate them with axis=None, or stack them")
    (ax,) = _checked_axes(op, axis, shape, tuples=False, what=what)
    return ax


def _any_foreign(arrays: Sequence[Any]) -> bool:
    # A loop, not any(...): a generator would cost more than the class tests it runs.
    for x in arrays:  # noqa: SIM110
        if x.__class__ not in NUMPY and is_array(x):
            return True
    return False


def _concatenate(*arrays: Any, axis: Any) -> Any:
    for x in arrays:  # the test of _any_foreign, without a call on the NumPy path
        if x.__class__ not in NUMPY and is_array(x):
            xp = namespace_of(*arrays)
            ax = _join_axis("concatenate", arrays, axis)
            return xp.concat([as_array(xp, x) for x in arrays], axis=ax)
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
        start = sum(math.prod(shape_of(x)) for x in likes[:index])
        return None, start, start + math.prod(shape_of(likes[index]))
    start = sum(int(shape_of(x)[ax]) for x in likes[:index])
    return ax, start, start + int(shape_of(likes[index])[ax])


def _concat_part(g: Any, *likes: Any, index: int, axis: Any) -> Any:
    ax, start, stop = _part(likes, index, axis)
    if g.__class__ not in NUMPY and is_array(g):
        # Only g's values are read (the likes give shapes): g's library slices them. The
        # trailing Ellipsis: strict libraries want every axis indexed.
        if ax is None:
            return reshape(namespace_of(g), g[start:stop], shape_of(likes[index]))
        return g[(slice(None),) * ax + (slice(start, stop), Ellipsis)]
    if ax is None:
        return np.reshape(g[start:stop], np.shape(likes[index]))
    return g[(slice(None),) * ax + (slice(start, stop),)]


def _concat_pad(h: Any, *likes: Any, index: int, axis: Any) -> Any:
    if h.__class__ is not np.ndarray and (
            (h.__class__ not in NUMPY and is_array(h))
            or ((h.__class__ in PY_NUMBERS or isinstance(h, np.generic))
                and _any_foreign(likes))):
        return _xp_concat_pad(h, likes, index, axis)
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


def _xp_concat_pad(h: Any, likes: Sequence[Any], index: int, axis: Any) -> Any:
    xp = namespace_of(h, *likes)
    ax, start, stop = _part(likes, index, axis)
    dtype = float_dtype(xp, h)
    if h.__class__ in PY_NUMBERS or isinstance(h, np.generic):
        h = xp.asarray(h, dtype=dtype)  # a number beside another library's likes
    elif h.dtype != dtype:
        h = xp.astype(h, dtype)
    before: tuple[int, ...]
    after: tuple[int, ...]
    if ax is None:
        total = sum(math.prod(shape_of(x)) for x in likes)
        before, after = (start,), (total - stop,)
        h, ax = reshape(xp, h, (-1,)), 0
    else:
        full = list(shape_of(likes[0]))
        total = sum(shape_of(x)[ax] for x in likes)
        before = (*full[:ax], start, *full[ax + 1:])
        after = (*full[:ax], total - stop, *full[ax + 1:])
    return xp.concat([xp.zeros(before, dtype=dtype), h, xp.zeros(after, dtype=dtype)],
                     axis=ax)


def _stack_axis(arrays: Sequence[Any], axis: Any) -> int:
    shape = shape_of(arrays[0])
    # The new axis is one of the result's, which has one axis more than each input.
    (ax,) = _checked_axes("stack", axis, shape, tuples=False, none=False, rank=len(shape) + 1,
                          what=f"the result of stacking inputs of shape {shape}")
    return ax


def _stack(*arrays: Any, axis: Any) -> Any:
    for x in arrays:  # the test of _any_foreign, without a call on the NumPy path
        if x.__class__ not in NUMPY and is_array(x):
            xp = namespace_of(*arrays)
            return xp.stack([as_array(xp, x) for x in arrays], axis=_stack_axis(arrays, axis))
    try:
        return np.stack(arrays, axis=axis)
    except (TypeError, ValueError):
        if arrays:
            _stack_axis(arrays, axis)
        raise


def _permutation(shape: tuple[int, ...], axes: Any) -> tuple[int, ...]:
    """transpose's ``axes`` as a permutation of every axis of ``shape``, or the error."""
    what = f"an input of shape {shape}"
    if not isinstance(axes, (tuple, list)):
        raise ShapeMismatchError(
            f"transpose: axes must be None or a tuple of ints, got {axes!r} for {what}")
    perm = _checked_axes("transpose", tuple(axes), shape, none=False, what=what, name="axes")
    if len(axes) != len(shape):
        raise ShapeMismatchError(
            f"transpose: axes {tuple(axes)!r} name {len(axes)} axes, but {what} "
            f"has {len(shape)}: give a permutation of all of them")
    return perm


def permutation(shape: tuple[int, ...], axes: Any) -> tuple[int, ...]:
    """transpose's ``axes`` (None: reversed) as a permutation of the axes of ``shape``,
    or the ShapeMismatchError naming what is wrong."""
    return tuple(reversed(range(len(shape)))) if axes is None else _permutation(shape, axes)


def _transpose(a: Any, axes: Any) -> Any:
    if a.__class__ not in NUMPY and is_array(a):
        return namespace_of(a).permute_dims(a, permutation(shape_of(a), axes))
    try:
        return np.transpose(a, axes)
    except (TypeError, ValueError) as exc:
        if axes is not None:
            try:
                _permutation(np.shape(a), axes)
            except ShapeMismatchError as err:
                raise err from exc
        raise


def _stack_index(k: int, axis: int) -> tuple[Any, ...]:
    """Index picking entry ``k`` of ``axis`` of a stacked array, without knowing its rank."""
    if axis >= 0:
        return (slice(None),) * axis + (k,)
    return (Ellipsis, k) + (slice(None),) * (-axis - 1)


# --- backward rules ---------------------------------------------------------------
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


def _reshape_like_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((2, 3)), r((3, 2)))), Sample((r((6,)), r((1, 6, 1))))]


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


RESHAPE: Final = OpDef(
    name="reshape", arity=1, attributes={"shape": REQUIRED},
    forward=_reshape,
    backward=(lambda xp, g, out, a, shape: xp.reshape_like(g, a),),
    input_names=("a",), samples=_reshape_samples, array_api=True,
    doc="Give a new shape, as numpy.reshape.",
)
TRANSPOSE: Final = OpDef(
    name="transpose", arity=1, attributes={"axes": None},
    forward=_transpose, backward=(_transpose_vjp,),
    input_names=("a",), samples=_transpose_samples, array_api=True,
    doc="Permute the axes (reverse them by default), as numpy.transpose; x.T builds it. "
        "axes is a permutation of all the input's axes, negative ones counting from "
        "the end.",
)
BROADCAST_TO: Final = OpDef(
    name="broadcast_to", arity=1, attributes={"shape": REQUIRED},
    forward=_broadcast_to,
    backward=(lambda xp, g, out, a, shape: xp.unbroadcast(g, a),),
    input_names=("a",), samples=_broadcast_to_samples, array_api=True,
    doc="Broadcast to a shape, as numpy.broadcast_to.",
)
CONCATENATE: Final = OpDef(
    name="concatenate", arity=None, attributes={"axis": 0},
    forward=_concatenate,
    backward=_concatenate_vjp, samples=_concatenate_samples, array_api=True,
    doc="Join a sequence of arrays along an existing axis (an int, negative counting "
        "from the end; None joins them flattened, whatever their shapes), as "
        "numpy.concatenate.",
)
STACK: Final = OpDef(
    name="stack", arity=None, attributes={"axis": 0},
    forward=_stack,
    backward=_stack_vjp, samples=_stack_samples, array_api=True,
    doc="Join a sequence of arrays of one shape along a new axis, as numpy.stack: "
        "an int axis of the result, negative counting from its end.",
)
STOP_GRADIENT: Final = OpDef(
    name="stop_gradient", arity=1, forward=lambda a: a, backward=None,
    input_names=("a",), samples=_unary_samples, array_api=True,
    doc="The input unchanged; no gradient flows back through it.",
)
RESHAPE_LIKE: Final = OpDef(
    name="reshape_like", arity=2, forward=_reshape_like,
    backward=(lambda xp, h, out, a, like: xp.reshape_like(h, a), None),
    samples=_reshape_like_samples, array_api=True, doc="Reshape a to the shape of `like`.",
)
CONCAT_PART: Final = OpDef(
    name="concat_part", arity=None, attributes={"index": REQUIRED, "axis": 0},
    forward=_concat_part, backward=_concat_part_vjp, samples=_concat_part_samples,
    array_api=True,
    doc="The slice of g = concatenate(likes, axis) that came from likes[index].",
)
CONCAT_PAD: Final = OpDef(
    name="concat_pad", arity=None, attributes={"index": REQUIRED, "axis": 0},
    forward=_concat_pad, backward=_concat_pad_vjp, samples=_concat_pad_samples,
    array_api=True,
    doc="Zeros shaped like concatenate(likes, axis) with h in the place of "
        "likes[index].",
)
