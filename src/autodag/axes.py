"""Axis arguments checked the way NumPy checks them, for op authors' forward rules.

A forward rule that takes ``axis=`` can normalise it with ``checked_axes`` and get, for
an axis NumPy would refuse, a ``ShapeMismatchError`` naming the op, the axis and the
input's shape instead of NumPy's bare ``AxisError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ShapeMismatchError

__all__ = ["checked_axes", "is_axis_int"]


def is_axis_int(ax: Any) -> bool:
    """Whether ``ax`` is an int NumPy takes as an axis (NumPy integers too, not bools)."""
    # NumPy takes NumPy integers as axes, but not bools ("an integer is required").
    return isinstance(ax, (int, np.integer)) and not isinstance(ax, bool)


def checked_axes(op: str, axis: Any, shape: tuple[int, ...], *, tuples: bool = True,
                  none: bool = True, legacy: bool = False, rank: int | None = None,
                  what: str = "", name: str = "axis") -> tuple[int, ...]:
    """``axis`` as distinct non-negative axes of an input of ``shape``, checked the way
    NumPy checks it, or a ShapeMismatchError naming the op, the axis and the shape.

    ``tuples``/``none``: whether a tuple of axes, and None (every axis), are allowed.
    ``legacy``: a 0-d input also takes the int axis 0 or -1, which NumPy's ufunc
    reductions (numpy.sum, numpy.max) accept for backward compatibility and
    numpy.mean refuses. ``rank`` is the number of axes the axis counts, for an op whose
    axis is one of its result's (stack); ``what`` then describes the input. ``name`` is
    the attribute's, for messages.
    """
    ndim = len(shape) if rank is None else rank
    if axis.__class__ is int and -ndim <= axis < ndim:
        return (axis % ndim,)  # the common call: one axis, in range
    if axis is None and none:
        return tuple(range(ndim))
    desc = what or f"an input of shape {shape}"
    many = tuples and isinstance(axis, tuple)
    items: tuple[Any, ...] = axis if many else (axis,)
    if not all(is_axis_int(ax) for ax in items):
        kinds = ["an int"] + (["a tuple of ints"] if tuples else [])
        kinds = (["None"] if none else []) + kinds
        allowed = ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
        raise ShapeMismatchError(f"{op}: {name} must be {allowed}, got {axis!r} for {desc}")
    out = []
    for ax in items:
        i = int(ax)
        if not -ndim <= i < ndim:
            if legacy and not many and ndim == 0 and i in (0, -1):
                return ()
            span = "which has no axes" if ndim == 0 else f"axes run from {-ndim} to {ndim - 1}"
            inside = f" (in {name}={axis!r})" if many else ""
            raise ShapeMismatchError(
                f"{op}: axis {i}{inside} is out of range for {desc} ({span})")
        out.append(i % ndim)
    if len(set(out)) < len(out):
        raise ShapeMismatchError(f"{op}: {name}={axis!r} names an axis twice, for {desc}")
    return tuple(out)
