"""NumPy's functions and ufuncs called on nodes: ``np.dot(x, y)``, ``np.sin(x)``.

A node takes part in NumPy's dispatch protocols (NEP 13 ``__array_ufunc__``, NEP 18
``__array_function__``): a NumPy function or ufunc given a node builds a node of the
registered op of the same name, with the same arguments (``numpy.linalg.<f>`` is the op
``linalg_<f>``). A function no loaded plugin provides is a ``NumpyFunctionError`` (a
``TypeError``) naming ``numpy.<name>`` and the installed plugin that would provide it;
nothing falls back to NumPy's object arrays, whose answers would be silently wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from .errors import NumpyFunctionError, OpNotFoundError
from .registry import get_registry

__all__ = ["array_function", "array_ufunc", "numpy_name", "op_name_of"]

Call = Callable[[str, tuple[Any, ...], dict[str, Any]], Any]

#: NumPy's names whose op is named otherwise.
_RENAMED: Final = {"absolute": "abs", "negative": "negate", "true_divide": "divide",
                   "amax": "max", "amin": "min", "concat": "concatenate"}
#: Keywords NumPy's ufuncs take that have no meaning for a node (nothing is written).
_UFUNC_ONLY: Final = ("out", "where", "casting", "order", "dtype", "subok", "signature")


def numpy_name(func: Any) -> str:
    """``numpy.linalg.inv`` for NumPy's ``inv``: the name a user wrote."""
    module = getattr(func, "__module__", None) or "numpy"
    if not module.startswith("numpy"):
        module = "numpy"
    # NumPy's own modules are private (numpy._core...): users write numpy.<name>.
    public = [p for p in module.split(".") if not p.startswith("_")]
    return ".".join([*public, func.__name__])


def op_name_of(func: Any) -> str:
    """The op a NumPy function or ufunc maps to: its name, ``linalg_<name>`` for
    ``numpy.linalg``, and the few NumPy aliases of differently named ops."""
    parts = numpy_name(func).split(".")[1:]
    name = "_".join(parts)
    return _RENAMED.get(name, name)


def _build(call: Call, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    name = op_name_of(func)
    try:
        custom = get_registry().get(name).opdef.numpy_function
    except OpNotFoundError as exc:
        raise NumpyFunctionError(
            f"{numpy_name(func)} was called on an autodag node, but no loaded plugin "
            f"provides an op {name!r} for it ({exc}); build the graph with "
            f"autodag.ops, or evaluate the node first (autodag.evaluate) to compute "
            f"with NumPy on its value"
        ) from None
    if custom is not None:
        return custom(*args, **kwargs)
    return call(name, args, kwargs)


def array_ufunc(call: Call, ufunc: Any, method: str, inputs: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
    """A node for ``ufunc(*inputs, **kwargs)`` called through NumPy (``__call__`` only)."""
    if method != "__call__":
        raise NumpyFunctionError(
            f"numpy.{ufunc.__name__}.{method} is not supported on autodag nodes; use the "
            f"reduction op instead (autodag.ops.sum, autodag.ops.max, ...)"
        )
    bad = [k for k in _UFUNC_ONLY if kwargs.get(k) is not None]
    if bad:
        raise NumpyFunctionError(
            f"numpy.{ufunc.__name__} on an autodag node does not take "
            f"{', '.join(repr(k) for k in bad)}: a node's value is computed by "
            f"autodag.evaluate, never written into an array"
        )
    kwargs = {k: v for k, v in kwargs.items() if k not in _UFUNC_ONLY}
    if ufunc.__name__ in ("equal", "not_equal"):
        # ``==`` on nodes is identity (they are dict keys): an elementwise node here
        # would be truthy, and False would be a silent wrong answer.
        raise NumpyFunctionError(
            f"numpy.{ufunc.__name__} (or ==, != between an array and a node): nodes "
            f"compare by identity; for an elementwise comparison use "
            f"autodag.ops.{ufunc.__name__}"
        )
    if ufunc.__name__ == "positive" and len(inputs) == 1:
        return inputs[0]
    return _build(call, ufunc, inputs, kwargs)


def array_function(call: Call, func: Any, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
    """A node for NumPy function ``func(*args, **kwargs)`` called with a node."""
    if kwargs.get("out") is not None:
        raise NumpyFunctionError(
            f"{numpy_name(func)} on an autodag node does not take 'out': a node's value "
            f"is computed by autodag.evaluate, never written into an array"
        )
    kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    name = numpy_name(func)
    if name in _METADATA and len(args) == 1 and not kwargs:
        return _metadata(name, args[0])
    return _build(call, func, args, kwargs)


#: What NumPy asks of a node's shape: answered from its static shape.
_METADATA: Final = ("numpy.shape", "numpy.ndim", "numpy.size")


def _metadata(name: str, node: Any) -> Any:
    shape = node.shape
    if shape is None:
        raise NumpyFunctionError(
            f"{name} of node {node.name!r}: its shape is not known before it runs "
            f"(evaluate it, or declare the Placeholder's shape)"
        )
    if name == "numpy.shape":
        return shape
    if name == "numpy.ndim":
        return len(shape)
    return math.prod(shape)
