"""Ops that reorder elements without combining them, or accumulate along an axis:
flip, roll, moveaxis, rot90, ravel, atleast_1d/2d/3d, sort, argsort, cumsum, cumprod.

Their gradients are their own kind run backwards (flip by flip, roll by the opposite
roll, rot90 by the opposite turn, a cumulative sum by a reversed one), so every rule is
written with ``xp`` ops and differentiates again. On another library's arrays each is
the standard's namesake (``flip``, ``roll``, ``permute_dims``, ``sort``,
``cumulative_sum``...) with the axes normalised first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample
from autodag.axes import checked_axes as _checked_axes
from autodag.backend import namespace_of

from ._xp import foreign, reshape, shape_of

__all__ = ["ARGSORT", "ATLEAST_1D", "ATLEAST_2D", "ATLEAST_3D", "CUMPROD", "CUMSUM", "FLIP",
           "MOVEAXIS", "RAVEL", "ROLL", "ROT90", "SORT"]

_Rng = np.random.Generator


def _one_axis(op: str, axis: Any, a: Any) -> int:
    (ax,) = _checked_axes(op, axis, shape_of(a), tuples=False, none=False)
    return ax


# --- forward rules ------------------------------------------------------------------
def _flip(m: Any, axis: Any) -> Any:
    if not foreign(m):
        return np.flip(m, axis)
    axes = _checked_axes("flip", axis, shape_of(m))
    return namespace_of(m).flip(m, axis=axes) if axes else m


def _roll(a: Any, shift: Any, axis: Any) -> Any:
    if not foreign(a):
        return np.roll(a, shift, axis)
    xp = namespace_of(a)
    if axis is None:
        return xp.roll(a, shift=shift)
    axes = _checked_axes("roll", axis, shape_of(a))
    shifts = tuple(shift) if isinstance(shift, (tuple, list)) else (shift,)
    # NumPy broadcasts the shifts against the axes: one shift for many axes, or many.
    both = np.broadcast_arrays(np.asarray(shifts, dtype=np.intp), np.asarray(axes))
    return xp.roll(a, shift=tuple(int(s) for s in both[0]),
                   axis=tuple(int(x) for x in both[1]))


def _move_perm(shape: tuple[int, ...], source: Any, destination: Any) -> tuple[int, ...]:
    src = _checked_axes("moveaxis", source, shape, none=False, name="source")
    dst = _checked_axes("moveaxis", destination, shape, none=False, name="destination")
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must name as many axes")
    order = [n for n in range(len(shape)) if n not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return tuple(order)


def _moveaxis(a: Any, source: Any, destination: Any) -> Any:
    if not foreign(a):
        return np.moveaxis(a, source, destination)
    return namespace_of(a).permute_dims(a, _move_perm(shape_of(a), source, destination))


def _ravel(a: Any) -> Any:
    if not foreign(a):
        return np.ravel(a)
    return reshape(namespace_of(a), a, (-1,))


def _rot90(m: Any, k: Any, axes: Any) -> Any:
    if not foreign(m):
        return np.rot90(m, k, axes)
    xp = namespace_of(m)
    shape = shape_of(m)
    if len(axes) != 2:
        raise ValueError(f"rot90: axes must name two different axes, got {axes!r}")
    ax0, ax1 = _checked_axes("rot90", tuple(axes), shape, none=False, name="axes")
    perm = list(range(len(shape)))
    perm[ax0], perm[ax1] = ax1, ax0
    turns = int(k) % 4
    if turns == 0:
        return m
    if turns == 2:
        return xp.flip(m, axis=(ax0, ax1))
    if turns == 1:
        return xp.permute_dims(xp.flip(m, axis=ax1), tuple(perm))
    return xp.flip(xp.permute_dims(m, tuple(perm)), axis=ax1)


def _atleast(fn: Callable[..., Any]) -> Callable[..., Any]:
    def forward(a: Any) -> Any:
        if not foreign(a):
            return fn(a)
        # The shape NumPy gives, read off a zero-stride array of the input's shape.
        dummy = np.broadcast_to(np.empty((), dtype=np.bool_), shape_of(a))
        return reshape(namespace_of(a), a, fn(dummy).shape)

    return forward


def _sort(a: Any, axis: Any) -> Any:
    if not foreign(a):
        return np.sort(a, axis=axis, kind="stable")
    xp = namespace_of(a)
    if axis is None:
        return xp.sort(reshape(xp, a, (-1,)), axis=0, stable=True)
    return xp.sort(a, axis=_one_axis("sort", axis, a), stable=True)


def _argsort(a: Any, axis: Any) -> Any:
    if not foreign(a):
        return np.argsort(a, axis=axis, kind="stable")
    xp = namespace_of(a)
    if axis is None:
        return xp.argsort(reshape(xp, a, (-1,)), axis=0, stable=True)
    return xp.argsort(a, axis=_one_axis("argsort", axis, a), stable=True)


def _cumulative(op: str, np_fn: Callable[..., Any], xp_name: str) -> Callable[..., Any]:
    def forward(a: Any, axis: Any) -> Any:
        if not foreign(a):
            return np_fn(a, axis=axis)
        xp = namespace_of(a)
        if axis is None:
            return getattr(xp, xp_name)(reshape(xp, a, (-1,)), axis=0)
        return getattr(xp, xp_name)(a, axis=_one_axis(op, axis, a))

    return forward


# --- backward rules -------------------------------------------------------------------
def _reverse_cumsum(xp: Any, g: Any, axis: Any) -> Any:
    """The sum of g from each position to the end along axis (cumsum's transpose)."""
    ax = 0 if axis is None else axis
    return xp.flip(xp.cumsum(xp.flip(g, axis=ax), axis=ax), axis=ax)


def _cumsum_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any) -> Any:
    r = _reverse_cumsum(xp, g, axis)
    return xp.reshape_like(r, a) if axis is None else r


def _cumprod_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any) -> Any:
    r = _reverse_cumsum(xp, g * out, axis)
    return (xp.reshape_like(r, a) if axis is None else r) / a


def _roll_vjp(xp: Any, g: Any, out: Any, a: Any, shift: Any, axis: Any) -> Any:
    back = tuple(-int(s) for s in shift) if isinstance(shift, (tuple, list)) else -int(shift)
    return xp.roll(g, back, axis=axis)


def _sort_vjp(xp: Any, g: Any, out: Any, a: Any, axis: Any) -> Any:
    order = xp.argsort(a, axis=axis)
    if axis is None:
        return xp.reshape_like(xp.put_along_axis_add(g, order, xp.ravel(a), axis=0), a)
    return xp.put_along_axis_add(g, order, a, axis=axis)


# --- samples ----------------------------------------------------------------------------
def _axis_samples(*axes: Any, shape: tuple[int, ...] = (2, 3, 4)) -> Callable[[_Rng], list[Sample]]:
    def samples(rng: _Rng) -> list[Sample]:
        x = rng.standard_normal(shape)
        return [Sample((x,), {"axis": ax}) for ax in axes]

    return samples


def _cumprod_samples(rng: _Rng) -> list[Sample]:
    x = rng.uniform(0.5, 1.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    return [Sample((x,), {"axis": 1}), Sample((x,)), Sample((x,), {"axis": -2})]


def _roll_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((3, 4))
    return [
        Sample((x,), {"shift": 1, "axis": 1}),
        Sample((x,), {"shift": -2}),
        Sample((x,), {"shift": (1, 2), "axis": (0, 1)}),
        Sample((x,), {"shift": 5, "axis": 0}),
    ]


def _moveaxis_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3, 4))
    return [
        Sample((x,), {"source": 0, "destination": -1}),
        Sample((x,), {"source": (0, 1), "destination": (2, 0)}),
        Sample((x,), {"source": -1, "destination": 1}),
    ]


def _rot90_samples(rng: _Rng) -> list[Sample]:
    x = rng.standard_normal((2, 3, 4))
    return [
        Sample((x[0],)),
        Sample((x,), {"k": 3, "axes": (2, 0)}),
        Sample((x,), {"k": 2, "axes": (0, 1)}),
        Sample((x,), {"k": -1, "axes": (1, 2)}),
    ]


def _shapes_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3,)),)), Sample((r(()),)), Sample((r((2, 3)),)), Sample((r((2, 1, 3)),))]


def _op(name: str, forward: Callable[..., Any], rule: Callable[..., Any] | None,
        attrs: dict[str, Any], samples: Callable[[_Rng], list[Sample]], doc: str,
        input_name: str = "a") -> OpDef:
    return OpDef(name=name, arity=1, forward=forward,
                 backward=None if rule is None else (rule,), attributes=attrs,
                 input_names=(input_name,), samples=samples, doc=doc, array_api=True)


FLIP: Final = _op(
    "flip", _flip, lambda xp, g, out, m, axis: xp.flip(g, axis=axis), {"axis": None},
    _axis_samples(1, None, (0, 2), -1), "Reverse the order along axis (None: every "
    "axis; an int or a tuple of ints), as numpy.flip.", input_name="m",
)
ROLL: Final = _op(
    "roll", _roll, _roll_vjp, {"shift": REQUIRED, "axis": None}, _roll_samples,
    "Shift elements cyclically along axis (None: the flattened array), as numpy.roll.",
)
MOVEAXIS: Final = _op(
    "moveaxis", _moveaxis,
    lambda xp, g, out, a, source, destination: xp.moveaxis(g, destination, source),
    {"source": REQUIRED, "destination": REQUIRED}, _moveaxis_samples,
    "Move axes to new positions, the others keeping their order, as numpy.moveaxis.",
)
ROT90: Final = _op(
    "rot90", _rot90, lambda xp, g, out, m, k, axes: xp.rot90(g, -k, axes),
    {"k": 1, "axes": (0, 1)}, _rot90_samples,
    "Rotate by 90 degrees k times in the plane of axes, as numpy.rot90.", input_name="m",
)
RAVEL: Final = _op(
    "ravel", _ravel, lambda xp, g, out, a: xp.reshape_like(g, a), {}, _shapes_samples,
    "The input flattened to 1-D (C order), as numpy.ravel.",
)
def _atleast_op(n: int, fn: Callable[..., Any]) -> OpDef:
    name = f"atleast_{n}d"

    def numpy_function(*arys: Any) -> Any:
        # NumPy's: one array for one input, a tuple of them for several.
        import autodag

        op = autodag.ops.get(name)
        return op(arys[0]) if len(arys) == 1 else tuple(op(a) for a in arys)

    return replace(_op(
        name, _atleast(fn), lambda xp, g, out, a: xp.reshape_like(g, a), {}, _shapes_samples,
        f"The input with at least {n} ax{'is' if n == 1 else 'es'}, as numpy.{name} (one "
        f"input; numpy.{name} on several nodes gives a tuple)."), numpy_function=numpy_function)


ATLEAST_1D: Final = _atleast_op(1, np.atleast_1d)
ATLEAST_2D: Final = _atleast_op(2, np.atleast_2d)
ATLEAST_3D: Final = _atleast_op(3, np.atleast_3d)
SORT: Final = _op(
    "sort", _sort, _sort_vjp, {"axis": -1}, _axis_samples(-1, 0, None),
    "Sorted along axis (None: flattened), stably, as numpy.sort; each gradient goes "
    "back to the element sorted there.",
)
ARGSORT: Final = _op(
    "argsort", _argsort, None, {"axis": -1}, _axis_samples(-1, 0, None),
    "Indices that sort along axis (None: flattened), stably, as numpy.argsort; not "
    "differentiable (no gradient flows through it).",
)
CUMSUM: Final = _op(
    "cumsum", _cumulative("cumsum", np.cumsum, "cumulative_sum"), _cumsum_vjp,
    {"axis": None}, _axis_samples(1, None, -1, 0),
    "Cumulative sum along axis (None: of the flattened input), as numpy.cumsum.",
)
CUMPROD: Final = _op(
    "cumprod", _cumulative("cumprod", np.cumprod, "cumulative_prod"), _cumprod_vjp,
    {"axis": None}, _cumprod_samples,
    "Cumulative product along axis (None: flattened), as numpy.cumprod. The gradient "
    "divides by the input: nan where it is 0.",
)
