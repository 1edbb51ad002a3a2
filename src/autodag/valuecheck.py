"""The check every value entering a graph passes: a number or an array, never a node."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from .backend import is_array, namespace_of
from .errors import ArgumentError, FeedError
from .overloading import Overloads

__all__ = ["as_value", "foreign_feed"]

_NUMERIC_KINDS: Final = frozenset("biuf")


def as_value(value: Any, what: str, error: type[ArgumentError] = ArgumentError) -> Any:
    """Check that ``value`` is numeric; keep Python and NumPy scalars and arrays as they are."""
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise error(f"{what}: value must be numeric, got an array of dtype {value.dtype}")
        return value
    if isinstance(value, np.generic):
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise error(f"{what}: value must be numeric, got {type(value).__name__}")
        return value
    if isinstance(value, (list, tuple)):
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nesting
            raise error(f"{what}: value is not a rectangular numeric array: {exc}") from None
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise error(
                f"{what}: value must be numeric, got a sequence of dtype {arr.dtype}"
            )
        return arr
    if isinstance(value, Overloads):  # a graph node
        name = getattr(value, "name", value)
        raise error(f"{what}: value must be a number or array, got node {name!r}")
    if is_array(value):
        return _foreign_value(value, what, error)
    raise error(f"{what}: value must be numeric, got {type(value).__name__}: {value!r:.60}")


def _foreign_value(value: Any, what: str, error: type[ArgumentError]) -> Any:
    """An array of another array-API library (Dask, CuPy...): numeric, kept as it is."""
    try:
        xp = namespace_of(value)
        numeric = xp.isdtype(value.dtype, ("bool", "integral", "real floating",
                                           "complex floating"))
    except Exception as exc:  # never convert to find out; say what is not understood
        raise error(f"{what}: {type(value).__module__}.{type(value).__name__} is not an "
                    f"array autodag can compute with: {exc}") from None
    if not numeric:
        raise error(f"{what}: value must be numeric, got an array of dtype {value.dtype}")
    return value


def foreign_feed(v: Any, dtype: np.dtype[Any], exact: bool, label: str) -> Any:
    """A feed that is an array of another library, converted to the declared ``dtype``
    by that library (asked of its own namespace); FeedError where that is unsafe."""
    xp = namespace_of(v)
    want = getattr(xp, dtype.name, None)
    if exact and want is not None and v.dtype != want:
        if not xp.can_cast(v.dtype, want) and not (
                xp.isdtype(v.dtype, "real floating") and xp.isdtype(want, "real floating")):
            raise FeedError(
                f"feed for {label} has dtype {v.dtype}, which does not convert safely to "
                f"its declared dtype {dtype}"
            )
        v = xp.astype(v, want)
    elif dtype.kind == "f" and want is not None and xp.isdtype(v.dtype, ("bool", "integral")):
        v = xp.astype(v, want)
    return v
