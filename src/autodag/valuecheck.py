"""The check every value entering a graph passes: a number or an array, never a node."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from .backend import is_array, namespace_of
from .errors import ArgumentError
from .overloading import Overloads

__all__ = ["as_value"]

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
