"""What the interpreter and generated code both call: the seed of a backward pass,
summing a gradient to its input's shape, in-place accumulation, the joint-rule result
check, and finishing the gradients handed to the caller (dtype, ownership, no aliases).

One definition each, so the interpreter, the compiler, ``compile`` and ``grad`` agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from ._arrays import grad_dtype, owned, sum_to
from .backend import broadcast_as, is_numpy, namespace_of, writable
from .errors import GradientError
from .nodes import Node, Operator

__all__ = [
    "FROM_CONSTANT",
    "FROM_LEAF",
    "FROM_OUTPUT",
    "UNRELATED",
    "acc_add",
    "acc_owned",
    "acc_sum",
    "check_joint",
    "finish_gradients",
    "iadd",
    "numpy_floats",
    "reduce_grad",
    "seed",
    "shape_token",
    "shaped_like",
    "wrt_sources",
]

#: Where the value of a ``wrt`` node (which gives its gradient's shape and dtype) comes
#: from: an output of the plan, a leaf value of the call, a Constant's own value, or
#: nowhere (the output does not depend on the node).
FROM_OUTPUT: Final = 0
FROM_LEAF: Final = 1
FROM_CONSTANT: Final = 2
UNRELATED: Final = 3

#: Elements from which summing gradients in place beats making a new array.
IN_PLACE_MIN: Final = 1024
_ONE: Final = np.float64(1.0)


def seed(value: Any) -> Any:
    """The gradient of an output with respect to itself: ones of its shape and dtype."""
    if value.__class__ is float:
        return 1.0  # stay a Python scalar: the fast path for scalar graphs
    if value.__class__ is np.float64:
        return _ONE
    if isinstance(value, np.generic):  # a reduction's result: a NumPy scalar seed
        dt = value.dtype
        return dt.type(1) if dt.kind in "fc" else np.float64(1.0)
    if not is_numpy(value):
        if not value.shape:
            # A loss: 1.0, a Python number, mixes with every library and keeps the
            # output's dtype; an array would make the backward pass wait on a task.
            return 1.0
        return namespace_of(value).ones_like(value, dtype=grad_dtype(value))
    return np.ones(np.shape(value), dtype=grad_dtype(value))


def reduce_grad(g: Any, like: Any, node: Operator, k: int) -> Any:
    """``g`` summed to the shape of ``like`` (a value or a shape token), for input ``k``."""
    lc = like.__class__
    shape = like if lc is tuple else like.shape if lc is np.ndarray else np.shape(like)
    gs = g.shape if g.__class__ is np.ndarray else np.shape(g)
    if gs == shape:
        return g
    try:
        return sum_to(g, shape)
    except ValueError:
        raise GradientError(
            f"backward of op {node.op.name!r} from plugin {node.plugin.describe()} returned "
            f"a gradient of shape {gs} for input {k} ({node.inputs[k].name!r}) of "
            f"shape {shape}, at {node.describe()}"
        ) from None


def iadd(g: Any, t: Any) -> Any:
    """``g + t``, written into ``g`` when it is an array the plan owns and may hold it."""
    # In place only where it saves more than NumPy's slower keyword-argument call costs.
    if g.__class__ is np.ndarray and g.size >= IN_PLACE_MIN:
        try:
            return np.add(g, t, out=g, casting="safe")
        except (TypeError, ValueError):  # a wider dtype or shape: make a new array
            pass
    return g + t


def check_joint(results: Any, node: Operator) -> Sequence[Any]:
    """The tuple a joint backward rule returned, checked: one entry per input."""
    n_in = len(node.inputs)
    if not isinstance(results, (tuple, list)) or len(results) != n_in:
        n = len(results) if isinstance(results, (tuple, list)) else "a non-sequence"
        raise GradientError(
            f"backward of op {node.op.name!r} from plugin {node.plugin.describe()} "
            f"returned {n} gradients for {n_in} inputs, at {node.describe()}"
        )
    return results


def shape_token(v: Any) -> Any:
    """What the backward pass needs of a value it no longer keeps: its shape (a float
    is its own token, read as shape ())."""
    if v.__class__ is np.ndarray:
        return v.shape
    if v.__class__ is float:
        return v
    return tuple(np.shape(v))  # a plain tuple: torch's shapes are a subclass of it


def numpy_floats(values: Sequence[Any]) -> list[Any]:
    """``values`` with Python floats as NumPy floats, which answer inf or nan, not raise."""
    return [np.float64(v) if v.__class__ is float else v for v in values]


def wrt_sources(outputs: Sequence[Node], leaves: Sequence[Node], inside: Any,
                targets: Sequence[Node]) -> list[tuple[int, Any]]:
    """Where each of ``targets`` finds its value: ``(FROM_OUTPUT, index)``,
    ``(FROM_LEAF, index)``, ``(FROM_CONSTANT, value)`` or ``(UNRELATED, None)``.
    ``inside`` is the set (or mapping) of the plan's nodes."""
    outs = {n: k for k, n in enumerate(outputs)}
    leaf = {n: k for k, n in enumerate(leaves)}
    src: list[tuple[int, Any]] = []
    for node in targets:
        if node in outs:
            src.append((FROM_OUTPUT, outs[node]))
        elif node in leaf:
            src.append((FROM_LEAF, leaf[node]))
        elif node in inside and not isinstance(node, Operator):
            src.append((FROM_CONSTANT, node.value))
        else:
            src.append((UNRELATED, None))
    return src


_PY_SCALAR: Final = (float, int, bool)


def _finish(g: Any, value: Any, scalars: bool) -> Any:
    """A gradient shaped and typed like ``value``; with ``scalars``, a float for a
    Python number and a NumPy scalar for a NumPy scalar, else always an array."""
    if scalars and value.__class__ in _PY_SCALAR:
        if g is None:
            return 0.0
        if g.__class__ is float:
            return g
        # Another backend's 0-d gradient stays one (float() would compute a lazy one).
        return float(g) if is_numpy(g) else g
    if not (is_numpy(value) and (g is None or is_numpy(g))):
        return _finish_foreign(g, value)
    if (g.__class__ is np.ndarray and value.__class__ is np.ndarray
            and g.dtype == value.dtype and g.dtype.kind in "fc"):
        return owned(g)  # already of the right dtype
    if g.__class__ is float and value.__class__ is float:
        return np.array(g)  # a new float64 array of shape ()
    dt = grad_dtype(value)
    if scalars and isinstance(value, np.generic):
        return dt.type(0 if g is None else g)
    if g is None:
        return np.zeros(np.shape(value), dtype=dt)
    return owned(np.asarray(g, dtype=dt))


def _finish_foreign(g: Any, value: Any) -> Any:
    """``_finish`` where the value or the gradient is another backend's array: kept in
    that library (a lazy Dask gradient stays lazy), never converted to NumPy."""
    like = value if not is_numpy(value) else g
    xp = namespace_of(like)
    dt = grad_dtype(value) if not is_numpy(value) else grad_dtype(g)
    shape = tuple(np.shape(value))
    if g is None:
        return xp.zeros_like(value, dtype=dt) if like is value else xp.zeros(shape, dtype=dt)
    if is_numpy(g):  # a gradient that came out as a number: spread over the value
        return writable(xp, broadcast_as(xp, xp.asarray(g, dtype=dt), value, shape))
    if g.dtype != dt:
        g = xp.astype(g, dt)
    return writable(xp, g)


def finish_gradients(
    sources: Sequence[tuple[int, Any]], raw: Sequence[Any], outs: Sequence[Any],
    leaves: Sequence[Any], scalars: bool,
    unrelated: Callable[[int], Any] | None = None,
) -> list[Any]:
    """The gradients handed to the caller, from a plan's raw gradients: each of its
    node's shape and a floating dtype (zeros where none reached), owned by the caller,
    and never two of them one array (a rule's result handed to two inputs)."""
    result: list[Any] = []
    seen: set[int] | None = None
    j = 0
    for kind, where in sources:
        g = raw[j]
        if kind == FROM_LEAF:
            v = leaves[where]
        elif kind == FROM_OUTPUT:
            v = outs[where]
        elif kind == FROM_CONSTANT:
            v = where
        else:
            assert unrelated is not None
            v = unrelated(j)
        j += 1
        if g.__class__ is float and v.__class__ is float:
            # The scalar graphs' common case: a float, or a new float64 array of shape ().
            result.append(g if scalars else np.array(g))
            continue
        g = _finish(g, v, scalars)
        if g.__class__ is np.ndarray and len(sources) > 1:
            if seen is None:
                seen = set()
            if id(g) in seen:
                g = g.copy()
            seen.add(id(g))
        result.append(g)
    return result


def shaped_like(t: Any, like: Any, node: Operator, k: int) -> Any:
    """``t`` summed to the shape of ``like`` (a value or a shape token) when it differs."""
    lc = like.__class__
    tc = t.__class__
    if tc is np.ndarray:
        if (lc is np.ndarray and t.shape == like.shape) or (lc is tuple and t.shape == like):
            return t
    elif tc is float and (lc is float or (lc is tuple and not like)):
        return t
    return reduce_grad(t, like, node, k)


def acc_add(g: Any, t: Any, like: Any, node: Operator, k: int) -> Any:
    """``g`` plus a contribution that may be missing; ``g`` may be missing too."""
    if t is None:
        return g
    t = shaped_like(t, like, node, k)
    return t if g is None else g + t


def acc_owned(g: Any, t: Any, like: Any, node: Operator, k: int) -> Any:
    """``g``, an array the plan owns, plus a contribution, in place where it can be."""
    if t is None:
        return g
    t = shaped_like(t, like, node, k)
    return g + t if g.__class__ is float else iadd(g, t)


def acc_sum(g: Any, t: Any) -> Any:
    """``g + t`` where either may be missing (None), for gradients of one shape."""
    if t is None:
        return g
    return t if g is None else g + t
