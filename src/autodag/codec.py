"""How a saved graph writes values and op attributes as JSON (arrays go beside it).

Plain JSON stands for itself: null, booleans, integers, finite floats, strings and lists.
Everything else is an object with exactly one key naming its kind::

    {"tuple": [...]}   {"float": "nan" | "inf" | "-inf"}   {"complex": [re, im]}
    {"slice": [start, stop, step]}   {"ellipsis": null}   {"dtype": "float32"}
    {"array": k}   (arrays/k.npy: a NumPy array)   {"scalar": k}   (a NumPy scalar)
    {"dict": {"key": ...}}   (string keys; for a checkpoint's metadata)

Decoding accepts exactly these, so a file cannot name a class, a function or code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from .errors import LoadError, SaveError

__all__ = ["decode", "dtype_named", "encode", "index"]

_KINDS: Final = "biufc"
_FLOATS: Final = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode(value: Any, arrays: list[np.ndarray[Any, Any]], where: str) -> Any:
    """``value`` as JSON, appending its arrays to ``arrays``; SaveError for what a graph
    file cannot hold (``where`` names the node and attribute in the message)."""
    cls = value.__class__
    if value is None or cls in (bool, int, str):
        return value
    if cls is float:
        return value if math.isfinite(value) else {"float": str(value)}
    if isinstance(value, (tuple, list)):
        items = [encode(v, arrays, where) for v in value]
        return {"tuple": items} if isinstance(value, tuple) else items
    if cls is complex:
        return {"complex": [encode(value.real, arrays, where), encode(value.imag, arrays, where)]}
    if isinstance(value, slice):
        return {"slice": [encode(v, arrays, where) for v in (value.start, value.stop,
                                                             value.step)]}
    if value is Ellipsis:
        return {"ellipsis": None}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode(v, arrays, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in _KINDS:
        arrays.append(np.asarray(value))
        return {"array" if isinstance(value, np.ndarray) else "scalar": len(arrays) - 1}
    if isinstance(value, np.dtype) or (isinstance(value, type) and (
            issubclass(value, np.generic) or value in (bool, int, float, complex))):
        dt = np.dtype(value)
        if dt.kind in _KINDS:
            return {"dtype": dt.name}
    raise SaveError(
        f"cannot save {where}: a value of type {cls.__module__}.{cls.__qualname__} "
        f"({value!r:.60}); a graph file holds numbers, strings, booleans, None, lists, "
        "tuples, dicts with string keys, slices, dtypes and NumPy arrays of numbers"
    )


def decode(data: Any, array: Callable[[int], np.ndarray[Any, Any]], where: str) -> Any:
    """The value ``encode`` wrote; LoadError naming ``where`` for anything else."""
    if data is None or data.__class__ in (bool, int, float, str):
        return data
    if isinstance(data, list):
        return [decode(v, array, where) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise LoadError(f"{where}: {_show(data)} is not a value a graph file may hold")
    ((kind, body),) = data.items()
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise LoadError(f"{where}: unknown value kind {kind!r} (known: "
                        f"{', '.join(sorted(_DECODERS))}); a graph file cannot hold objects")
    return decoder(body, array, where)


def _tuple(body: Any, array: Callable[[int], Any], where: str) -> Any:
    return tuple(decode(v, array, where) for v in _list(body, None, where, "tuple"))


def _float(body: Any, array: Callable[[int], Any], where: str) -> Any:
    if body not in _FLOATS:
        raise LoadError(f"{where}: {{'float': {_show(body)}}} is not nan, inf or -inf")
    return _FLOATS[body]


def _complex(body: Any, array: Callable[[int], Any], where: str) -> Any:
    re, im = (decode(v, array, where) for v in _list(body, 2, where, "complex"))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (re, im)):
        raise LoadError(f"{where}: complex parts must be numbers, got {_show(body)}")
    return complex(re, im)


def _slice(body: Any, array: Callable[[int], Any], where: str) -> Any:
    parts = [decode(v, array, where) for v in _list(body, 3, where, "slice")]
    if not all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
        raise LoadError(f"{where}: slice bounds must be integers or null, got {_show(body)}")
    return slice(*parts)


def _dict(body: Any, array: Callable[[int], Any], where: str) -> Any:
    if not isinstance(body, dict):
        raise LoadError(f"{where}: the body of 'dict' must be a JSON object")
    return {k: decode(v, array, f"{where}[{k!r}]") for k, v in body.items()}


def _ellipsis(body: Any, array: Callable[[int], Any], where: str) -> Any:
    return Ellipsis


def _dtype(body: Any, array: Callable[[int], Any], where: str) -> Any:
    return dtype_named(body, where)


def _array(body: Any, array: Callable[[int], Any], where: str) -> Any:
    return array(index(body, where))


def _scalar(body: Any, array: Callable[[int], Any], where: str) -> Any:
    arr = array(index(body, where))
    if arr.ndim:
        raise LoadError(f"{where}: scalar {body} is stored as an array of shape {arr.shape}")
    return arr[()]


_DECODERS: Final[dict[str, Callable[[Any, Callable[[int], Any], str], Any]]] = {
    "tuple": _tuple, "float": _float, "complex": _complex, "slice": _slice,
    "ellipsis": _ellipsis, "dict": _dict, "dtype": _dtype, "array": _array, "scalar": _scalar,
}


def dtype_named(name: Any, where: str) -> np.dtype[Any]:
    """The boolean or numeric NumPy dtype called ``name``, or LoadError."""
    try:
        dt = np.dtype(name) if isinstance(name, str) and name.isidentifier() else None
    except TypeError:
        dt = None
    if dt is None or dt.kind not in _KINDS:
        raise LoadError(f"{where}: {_show(name)} is not a boolean or numeric dtype name")
    return dt


def index(body: Any, where: str) -> int:
    """An array number of the file: a non-negative int."""
    if not isinstance(body, int) or isinstance(body, bool) or body < 0:
        raise LoadError(f"{where}: array reference {_show(body)} is not a non-negative integer")
    return body


def _list(body: Any, length: int | None, where: str, kind: str) -> list[Any]:
    if not isinstance(body, list) or (length is not None and len(body) != length):
        size = "a list" if length is None else f"a list of {length}"
        raise LoadError(f"{where}: the body of {kind!r} must be {size}, got {_show(body)}")
    return body


def _show(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."
