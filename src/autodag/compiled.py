"""``autodag.compile``: a graph's forward and backward passes as one reusable program."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from ._arrays import grad_dtype, owned
from .errors import MissingFeedError
from .execute import topological_sort
from .nodes import Constant, Node, Operator, Placeholder, as_value
from .program import Plan
from .registry import get_registry

__all__ = ["Program", "compile"]

_PY_SCALAR: Final = (float, int, bool)


def _nodes(x: Node | Sequence[Node] | None, what: str) -> tuple[Node, ...]:
    if x is None:
        return ()
    if isinstance(x, Node):
        return (x,)
    out = tuple(x)
    for n in out:
        if not isinstance(n, Node):
            raise TypeError(f"{what} must be nodes, got {type(n).__name__}: {n!r:.60}")
    return out


def _finish(g: Any, value: Any) -> Any:
    """A gradient shaped and typed like ``value``: a float for a Python scalar."""
    if value.__class__ in _PY_SCALAR:
        if g is None:
            return 0.0
        return g if g.__class__ is float else float(g)
    if (g.__class__ is np.ndarray and value.__class__ is np.ndarray
            and g.dtype == value.dtype and g.dtype.kind in "fc"):
        return owned(g)  # already of the right dtype
    dt = grad_dtype(value)
    if isinstance(value, np.generic):  # a NumPy scalar's gradient: a NumPy scalar
        return dt.type(0 if g is None else g)
    if g is None:
        return np.zeros(np.shape(value), dtype=dt)
    return owned(np.asarray(g, dtype=dt))


#: (shape or None for any, dtype or None for any floating dtype) of an array that
#: ``Placeholder.check_feed`` would return unchanged.
_Fast = tuple[tuple[int, ...] | None, np.dtype[Any] | None]


def _fast_check(node: Node) -> _Fast | None:
    """What an array fed to ``node`` needs for the checks to pass it unchanged."""
    if not isinstance(node, Placeholder):
        return None  # a Variable's value: as_value passes any numeric array
    ds = node.declared_shape
    if ds is not None and any(d is None for d in ds):
        return None
    shape = None if ds is None else tuple(int(d) for d in ds if d is not None)
    if node._exact:
        return (shape, node.dtype) if node.dtype.kind in "biufc" else None
    # Any floating array passes; the default dtype asks for a floating value.
    return (shape, None) if node.dtype.kind == "f" else None


class Program:
    """A compiled graph: call it with the input values, get ``(values, grads)``.

    ``values`` is the output's value (a list of values when ``outputs`` was a list);
    ``grads`` is a list with the gradient of the first output (of its sum, if it is not
    a scalar) for each node of ``wrt``: a float for a Python-scalar node, else an array
    of the node's shape and floating dtype, zeros where the output does not depend on
    the node, never two aliased arrays. Variables not among the inputs are read when
    the program is called. Safe to call from several threads at once.
    """

    def __init__(
        self,
        outputs: Node | Sequence[Node],
        wrt: Node | Sequence[Node] | None = None,
        inputs: Node | Sequence[Node] | None = None,
    ) -> None:
        outs = _nodes(outputs, "outputs")
        if not outs:
            raise ValueError("compile() needs at least one output node")
        self._single = isinstance(outputs, Node)
        self.outputs = outs
        self.wrt = _nodes(wrt, "wrt")
        self.inputs = _nodes(inputs, "inputs")
        for node in self.inputs:
            if isinstance(node, (Operator, Constant)):
                raise TypeError(
                    f"input {node.name!r} is {type(node).__name__.lower()} node; inputs must "
                    "be Placeholders or Variables"
                )
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError("compile() inputs must be distinct nodes")
        order = topological_sort(list(outs + self.wrt))
        inside = set(order)
        extra = tuple(w for w in dict.fromkeys(self.wrt)
                      if isinstance(w, Operator) and w not in outs)
        self._plan = Plan(order, outs + extra, self.wrt if wrt is not None else None)
        position = {n: j for j, n in enumerate(self.inputs)}
        # Each leaf's value: input j, or (-1) the Variable's value at call time; whether a
        # Python float needs no check; and what an array needs to pass unchanged.
        self._pick: list[tuple[int, Node, bool, _Fast | None]] = []
        for node in self._plan.leaves:
            if node in position:
                plain = not isinstance(node, Placeholder) or (
                    node.dtype.kind == "f" and node.declared_shape in (None, ()))
                self._pick.append((position[node], node, plain, _fast_check(node)))
            elif isinstance(node, Placeholder):
                raise MissingFeedError(
                    f"Placeholder {node.name!r} (created at {node.where()}) is not among "
                    f"compile()'s inputs: pass inputs=[..., {node.name}]"
                )
            else:
                self._pick.append((-1, node, True, None))
        self._n_out = len(outs)
        slot_of_leaf = {n: k for k, n in enumerate(self._plan.leaves)}
        slot_of_out = {n: k for k, n in enumerate(self._plan.outputs)}
        # Where each wrt node's value (for its gradient's shape and dtype) comes from.
        # (0, output index), (1, leaf index) or (2, the Constant's value).
        self._wrt_value: list[tuple[int, Any]] = []
        for w in self.wrt:
            if w in slot_of_out:
                self._wrt_value.append((0, slot_of_out[w]))
            elif w in slot_of_leaf:
                self._wrt_value.append((1, slot_of_leaf[w]))
            else:
                assert w in inside and isinstance(w, Constant)
                self._wrt_value.append((2, w.value))
        #: Whether two gradients may be one array (a rule's result handed to two inputs).
        self._may_alias = len(self._wrt_value) > 1
        #: Whether Python floats for the inputs go straight to the plan's scalar function
        #: and its float gradients straight back: the inputs are the leaves, in order,
        #: none with a declared dtype or shape, and every wrt node's gradient is a float
        #: when they are floats.
        self._direct = (
            self._plan.has_scalar
            and [p[0] for p in self._pick] == list(range(len(self.inputs)))
            and all(p[2] for p in self._pick)
            and all(kind == 1 or (kind == 2 and where.__class__ is float)
                    for kind, where in self._wrt_value)
        )

    @property
    def source(self) -> str:
        """The generated Python source of the plan (for inspection)."""
        return self._plan.source

    def _check(self, node: Node, value: Any) -> Any:
        if isinstance(node, Placeholder):
            return node.check_feed(value)
        return as_value(value, f"input for Variable {node.name!r}")

    def __call__(self, *values: Any) -> tuple[Any, list[Any]]:
        """Run the program on values for ``inputs`` (positional, in order)."""
        if len(values) != len(self.inputs):
            raise TypeError(
                f"compiled program takes {len(self.inputs)} input value(s) "
                f"({', '.join(repr(n.name) for n in self.inputs)}), got {len(values)}"
            )
        if self._direct:
            for v in values:
                if v.__class__ is not float:
                    break
            else:
                outs, raw = self._plan.run(None, values)
                for g in raw:
                    if g.__class__ is not float:
                        return self._pack(outs, raw, values)
                return (outs[0] if self._single else list(outs[: self._n_out])), list(raw)
        leaves: list[Any] = []
        for j, node, plain, fast in self._pick:
            if j < 0:
                leaves.append(node.value)
                continue
            v = values[j]
            # A Python float needs no checking unless a declared dtype or shape says so;
            # nor does an array of the declared shape and dtype.
            if (plain and v.__class__ is float) or (
                fast is not None and v.__class__ is np.ndarray
                and (fast[0] is None or v.shape == fast[0])
                and (v.dtype == fast[1] if fast[1] is not None else v.dtype.kind == "f")
            ):
                leaves.append(v)
            else:
                leaves.append(self._check(node, v))
        plan = self._plan
        outs, raw = plan.run(get_registry().numeric if plan.uses_xp else None, leaves)
        return self._pack(outs, raw, leaves)

    def _pack(self, outs: Sequence[Any], raw: Sequence[Any],
              leaves: Sequence[Any]) -> tuple[Any, list[Any]]:
        """The call's answer: the output values and each wrt node's finished gradient."""
        grads: list[Any] = []
        seen: set[int] | None = None
        may_alias = self._may_alias
        for (kind, where), g in zip(self._wrt_value, raw, strict=True):
            v = outs[where] if kind == 0 else leaves[where] if kind == 1 else where
            gc = g.__class__
            if gc is float and v.__class__ is float:
                grads.append(g)
                continue
            if (gc is np.ndarray and v.__class__ is np.ndarray and g.dtype == v.dtype
                    and g.dtype.kind in "fc"):
                g = owned(g)  # _finish's common case, without the call
            else:
                g = _finish(g, v)
            if may_alias and g.__class__ is np.ndarray:
                if seen is None:
                    seen = set()
                if id(g) in seen:  # one rule's result handed to two inputs
                    g = g.copy()
                seen.add(id(g))
            grads.append(g)
        if self._single:
            return outs[0], grads
        return list(outs[: self._n_out]), grads


def compile(
    outputs: Node | Sequence[Node],
    wrt: Node | Sequence[Node] | None = None,
    inputs: Node | Sequence[Node] | None = None,
) -> Program:
    """Plan the passes for ``outputs`` once; the program runs them for new input values.

    >>> import autodag as ad
    >>> with ad.Graph():
    ...     x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
    ...     z = x * y + x
    >>> prog = ad.compile(z, wrt=[x, y], inputs=[x, y])
    >>> prog(3.0, 4.0)
    (15.0, [5.0, 3.0])
    """
    return Program(outputs, wrt, inputs)

