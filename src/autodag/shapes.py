"""Static shape inference: the shape and dtype of a node before the graph is run.

Symbolic differentiation needs shapes while it builds nodes (rules branch on
``xp.ndim``, gradients are summed down to their input's shape). A node's shape is known
when it is a Variable or Constant (from its value), a Placeholder with a fully declared
shape, or an Operator whose inputs' shapes are known: the op's forward rule is then run
on dummies of those shapes (Constants keep their real value, since it may be structural).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Final, TypeAlias

import numpy as np

from .backend import is_array, is_numpy, namespace_of
from .errors import AutodagError
from .nodes import Constant, Node, Operator, Placeholder, Variable
from .shapehook import install

__all__ = ["FED", "ShapeInferenceError", "StaticShapes"]

#: (shape, dtype, whether the value is a Python scalar, the namespace of another
#: backend's array or None for NumPy). The dtype is NumPy's of the same name.
Info: TypeAlias = tuple[tuple[int, ...], np.dtype[Any], bool, Any]

#: The namespace entry of a value that depends on a feed: its backend is known only
#: when the graph runs, so nothing built from it may assume NumPy.
FED: Final = "fed"

#: Elements from which a NumPy dummy input is a zero-stride view, not an allocation.
_VIEW_MIN: Final = 4096


class ShapeInferenceError(AutodagError, ValueError):
    """The static shape of a node is needed but cannot be inferred."""


def _info_of(value: Any) -> Info:
    if is_numpy(value) or not is_array(value):
        return (tuple(np.shape(value)), np.result_type(value),
                type(value) in (int, float, bool), None)
    # Another library's array: shape and dtype read off it (a lazy Dask array stays lazy).
    name = str(value.dtype).rsplit(".", 1)[-1]
    return tuple(int(d) for d in value.shape), np.dtype(name), False, namespace_of(value)


def _backend_of(n: Operator, infos: list[Info]) -> tuple[Any, bool]:
    """The backend an op's output belongs to (another library's namespace, FED, or None
    for NumPy), and whether its dummies must be that library's own arrays: where a
    Constant of it is among the inputs, or a NumPy dummy would be large (Dask's are
    lazy). Small ones are NumPy's: shapes and dtypes are the same, and cheaper."""
    consts = [i.value for i in n.inputs if isinstance(i, Constant) and not is_numpy(i.value)]
    found = [inf[3] for inf in infos if inf[3] is not None and inf[3] != FED]
    backend = namespace_of(consts[0]) if consts else found[0] if found else None
    if backend is None:
        return (FED if any(inf[3] == FED for inf in infos) else None), False
    own = bool(consts) or any(math.prod(inf[0]) >= _VIEW_MIN for inf in infos)
    return backend, own


def _dummy(info: Info, own: bool = False) -> Any:
    shape, dtype, scalar, ns = info
    if scalar:
        # Keep Python scalars: forward rules treat them differently from 0-d arrays.
        return dtype.type(1).item()
    if own and ns is not None and ns != FED:  # the backend's own: lazy for Dask
        return ns.ones(shape, dtype=getattr(ns, dtype.name))
    if math.prod(shape) >= _VIEW_MIN:
        return np.broadcast_to(np.ones((), dtype=dtype), shape)  # no full-size input
    return np.ones(shape, dtype=dtype)


class StaticShapes:
    """Per-node cache of inferred (shape, dtype); one per symbolic construction."""

    def __init__(self) -> None:
        self._info: dict[Node, Info | None] = {}
        self._why: dict[Node, str] = {}

    def shape(self, node: Node) -> tuple[int, ...] | None:
        """The node's static shape, or None when it cannot be inferred."""
        info = self.info(node)
        return None if info is None else info[0]

    def dtype(self, node: Node) -> np.dtype[Any] | None:
        """The node's static dtype, or None when it cannot be inferred."""
        info = self.info(node)
        return None if info is None else info[1]

    def require(self, node: Node, context: str = "") -> tuple[int, ...]:
        """The node's static shape, or a ShapeInferenceError saying why it is unknown."""
        shape = self.shape(node)
        if shape is not None:
            return shape
        why = self._why.get(node, "its shape is unknown")
        where = f" (needed {context})" if context else ""
        raise ShapeInferenceError(
            f"the static shape of node {node.name!r} (created at {node.where()}) is not "
            f"known{where}: {why}. Declare placeholder shapes, e.g. "
            f"Placeholder(shape=(3, 4)), so shapes can be inferred before the graph runs"
        )

    def info(self, node: Node) -> Info | None:
        """(shape, dtype, is-Python-scalar) of a node, inferred iteratively and cached."""
        if node in self._info:
            return self._info[node]
        # Iterative post-order over the nodes not yet cached: chains of any depth work.
        stack: list[tuple[Node, bool]] = [(node, False)]
        while stack:
            n, ready = stack.pop()
            if n in self._info:
                continue
            if isinstance(n, Operator) and not ready:
                stack.append((n, True))
                stack.extend((i, False) for i in n.inputs if i not in self._info)
                continue
            self._info[n] = self._compute(n)
        return self._info[node]

    def _compute(self, n: Node) -> Info | None:
        if isinstance(n, (Variable, Constant)):
            return _info_of(n.value)
        if isinstance(n, Placeholder):
            ds = n.declared_shape
            if ds is None or any(d is None for d in ds):
                self._why[n] = f"Placeholder {n.name!r} has declared shape {ds}"
                return None
            return tuple(int(d) for d in ds if d is not None), n.dtype, False, FED
        if not isinstance(n, Operator):
            self._why[n] = f"node of unknown kind {type(n).__name__}"
            return None
        infos: list[Info] = []
        for i in n.inputs:
            if isinstance(i, Constant):
                continue
            info = self._info[i]
            if info is None:
                self._why[n] = f"the shape of its input {i.name!r} is unknown" + (
                    f" ({self._why[i]})" if i in self._why else ""
                )
                return None
            infos.append(info)
        backend, own = _backend_of(n, infos)
        args = []
        it = iter(infos)
        for i in n.inputs:
            args.append(i.value if isinstance(i, Constant) else _dummy(next(it), own))
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = n.op.forward(*args, **n.attrs)
        except Exception as exc:
            self._why[n] = (
                f"op {n.op.name!r} failed on inputs of shapes "
                f"{[np.shape(a) for a in args]}: {type(exc).__name__}: {exc}"
            )
            return None
        try:
            info = _info_of(out)
        except TypeError:
            self._why[n] = (f"op {n.op.name!r} from plugin {n.plugin.describe()} returned "
                            f"a {type(out).__name__}, not a number or array")
            return None
        if info[3] is None and backend is not None:
            return (*info[:3], backend)
        return info


def _static_shape_of(node: Node) -> tuple[int, ...] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a question about a shape warns about nothing
        try:
            return StaticShapes().shape(node)
        except AutodagError:
            return None


install(_static_shape_of)
