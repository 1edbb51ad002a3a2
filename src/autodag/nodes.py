"""Node kinds (Variable, Constant, Placeholder, Operator) and how operator nodes are built.

A node's Python operators and array methods (``x * y``, ``x.sum()``) come from the
``autodag.overloading`` mixin, which hands each to ``_binary_op`` or ``_call_op`` here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np

from .backend import is_array, is_numpy
from .errors import ArgumentError, FeedError, GraphMismatchError
from .graph import Graph, NodeSet, active_graph, get_default_graph
from .overloading import Overloads
from .shapehook import static_shape
from .sites import creation_site
from .valuecheck import as_value, foreign_feed

if TYPE_CHECKING:
    from .opdef import OpDef
    from .plugins import PluginInfo
    from .registry import RegisteredOp, Registry

__all__ = [
    "Constant",
    "Node",
    "Operator",
    "Placeholder",
    "Variable",
    "as_value",
    "make_operator",
]


def _label(kind: str, name: Any) -> str:
    return f"{kind} {name!r}" if isinstance(name, str) else kind


def _call_op(op_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Operator:
    return make_operator(_registry().get(op_name), args, kwargs)


def _registry() -> Registry:
    # registry imports this module, so it is reached at call time; rebinding the global
    # saves an import statement on every node built.
    global _registry
    from .registry import get_registry

    _registry = get_registry
    return get_registry()


def _is_operand(x: Any) -> bool:
    return isinstance(x, (Node, bool, int, float, np.ndarray, np.generic, list, tuple)) or (
        is_array(x))


def _binary_op(op_name: str, a: Any, b: Any) -> Any:
    ta, tb = a.__class__, b.__class__
    if ta in _PLAIN_OPERANDS and tb in _PLAIN_OPERANDS:
        registered = _registry().get(op_name)
        op = registered.opdef
        if op.arity == 2 and not op.attributes:
            return _plain_binary(registered, a, b)
    if not (_is_operand(a) and _is_operand(b)):
        return NotImplemented
    return _call_op(op_name, (a, b), {})


class Node(Overloads):
    """Base of every graph node; supports the arithmetic operators.

    Nodes compare and hash by identity, so they can be keys of a feed dict.
    """

    # Slots: graphs hold many nodes; this halves their memory and speeds up building.
    __slots__ = ("__weakref__", "_value", "gradient", "graph", "name", "site")

    name: str
    graph: Graph
    gradient: Any
    site: tuple[str, int] | None

    # What the operators of Overloads build their nodes with.
    _binary = staticmethod(_binary_op)
    _call = staticmethod(_call_op)

    def __init__(self, name: str | None, prefix: str, graph: Graph | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise ArgumentError(f"node name must be a string, got {type(name).__name__}")
        self.graph = graph if graph is not None else get_default_graph()
        self.name = self.graph.next_name(prefix) if name is None else name
        self.gradient = None
        self.site = creation_site()

    @property
    def value(self) -> Any:
        """The node's current value (None before it is computed or fed)."""
        return self._value

    @value.setter
    def value(self, v: Any) -> None:
        self._value = v

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the current value, or None when there is no value yet."""
        v = self._value
        return None if v is None else tuple(np.shape(v))

    def where(self) -> str:
        """``file:line`` where the node was created, or ``unknown location``."""
        return f"{self.site[0]}:{self.site[1]}" if self.site else "unknown location"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter display: the picture of this node's graph, or text without Graphviz."""
        from .viz import mimebundle

        return mimebundle(self)

    def _repr_svg_(self) -> str | None:
        """Jupyter display as SVG, or None (text instead) without Graphviz."""
        from .viz import mimebundle

        return mimebundle(self).get("image/svg+xml")


class Variable(Node):
    """A node holding a mutable value that gradients are usually taken for."""

    __slots__ = ()

    def __init__(self, value: Any, name: str | None = None, *, graph: Graph | None = None) -> None:
        # Checked before a default name is drawn, so a rejected value changes no graph.
        checked = as_value(value, _label("Variable", name))
        super().__init__(name, "Var", graph)
        self._value = checked
        self.graph._add(self, self.graph.variables)

    @Node.value.setter  # type: ignore[attr-defined,untyped-decorator]
    def value(self, v: Any) -> None:
        self._value = as_value(v, f"Variable {self.name!r}")

    def __repr__(self) -> str:
        return f"Variable: name:{self.name}, value:{self._value}"


class Constant(Node):
    """A node whose value cannot be reassigned."""

    __slots__ = ()

    def __init__(self, value: Any, name: str | None = None, *, graph: Graph | None = None) -> None:
        checked = as_value(value, _label("Constant", name))
        super().__init__(name, "Const", graph)
        self._value = checked
        self.graph._add(self, self.graph.constants)

    @Node.value.setter  # type: ignore[attr-defined,untyped-decorator]
    def value(self, v: Any) -> None:
        raise ArgumentError(f"cannot reassign Constant {self.name!r}")

    def __repr__(self) -> str:
        return f"Constant: name:{self.name}, value:{self._value}"


class Placeholder(Node):
    """A node that is given its value at run time through a feed dict."""

    __slots__ = ("_exact", "declared_shape", "dtype")

    def __init__(
        self,
        name: str | None = None,
        dtype: Any = float,
        shape: Sequence[int | None] | None = None,
        *,
        graph: Graph | None = None,
    ) -> None:
        super().__init__(name, "Plc", graph)
        self.dtype = np.dtype(dtype)
        # Python's `float` (the default) asks for a floating value of any precision, so
        # float32 data stays float32; a NumPy dtype asks for exactly that dtype.
        self._exact = dtype is not float
        self.declared_shape = None if shape is None else tuple(shape)
        self._value = None
        self.graph._add(self, self.graph.placeholders)

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the fed value, else the declared shape when fully known."""
        if self._value is not None:
            return tuple(np.shape(self._value))
        ds = self.declared_shape
        if ds is not None and all(d is not None for d in ds):
            return tuple(int(d) for d in ds if d is not None)
        return None

    def check_feed(self, value: Any) -> Any:
        """Validate a fed value against the declared dtype and shape."""
        v = as_value(value, f"feed for Placeholder {self.name!r}", FeedError)
        if not is_numpy(v):
            v = foreign_feed(v, self.dtype, self._exact, f"Placeholder {self.name!r}")
            self._check_shape(tuple(v.shape))
            return v
        have = np.result_type(v)
        if self._exact and have != self.dtype:
            if not np.can_cast(have, self.dtype, casting="same_kind"):
                raise FeedError(
                    f"feed for Placeholder {self.name!r} has dtype {have}, which does not "
                    f"convert safely to its declared dtype {self.dtype}"
                )
            v = np.asarray(v, dtype=self.dtype)
        elif self.dtype.kind == "f" and have.kind in "biu":
            v = np.asarray(v, dtype=self.dtype)
        if self.declared_shape is not None:
            self._check_shape(np.shape(v))
        return v

    def _check_shape(self, vs: tuple[Any, ...]) -> None:
        ds = self.declared_shape
        if ds is not None and (len(vs) != len(ds)
                               or any(d is not None and d != s for d, s in zip(ds, vs))):
            raise FeedError(
                f"feed for Placeholder {self.name!r} has shape {vs}, declared shape {ds}"
            )

    def __repr__(self) -> str:
        return f"Placeholder: name:{self.name}, value:{self._value}"


class Operator(Node):
    """A node that applies a registered op to its input nodes."""

    __slots__ = ("attrs", "inputs", "op", "plugin")

    op: OpDef
    plugin: PluginInfo
    inputs: tuple[Node, ...]
    attrs: Mapping[str, Any]

    def __init__(
        self,
        registered: RegisteredOp,
        inputs: tuple[Node, ...],
        attrs: Mapping[str, Any],
        name: str | None = None,
        *,
        graph: Graph | None = None,
    ) -> None:
        if attrs:
            _check_static(registered, attrs)
        super().__init__(name, registered.opdef.prefix, graph)
        self.op = registered.opdef
        self.plugin = registered.plugin
        self.inputs = inputs
        self.attrs = attrs
        self._value = None
        self.graph._add(self, self.graph.operators)

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the current value, or before it runs the statically inferred one
        (None when it cannot be inferred), so that NumPy code reading ``x.shape`` ports."""
        v = self._value
        if v is not None:
            return tuple(np.shape(v))
        return static_shape(self)

    def describe(self) -> str:
        """``node 'add/0' (op 'add' from plugin ..., created at file:line)``, for errors."""
        return (
            f"node {self.name!r} (op {self.op.name!r} from plugin {self.plugin.describe()}, "
            f"created at {self.where()})"
        )

    def __repr__(self) -> str:
        return f"Operator: name:{self.name}"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and copy by name: the op as its name and provider (``oprestore``)."""
        from .oprestore import operator_state

        return operator_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        from .oprestore import set_operator_state

        set_operator_state(self, state)


def _graph_for(inputs: Sequence[Any], op_name: str) -> Graph:
    """The graph a new operator joins: its inputs' graph, checked against ``with`` blocks."""
    graph: Graph | None = None
    first: Node | None = None
    for x in inputs:
        if isinstance(x, Node):
            if graph is None:
                graph, first = x.graph, x
            elif x.graph is not graph:
                assert first is not None
                raise GraphMismatchError(
                    f"op {op_name!r}: inputs {first.name!r} (created at {first.where()}) "
                    f"and {x.name!r} (created at {x.where()}) belong to different graphs "
                    f"({first.graph!r} and {x.graph!r})"
                )
    active = active_graph()
    if graph is None:
        return get_default_graph()
    if active is not None and active is not graph:
        assert first is not None
        raise GraphMismatchError(
            f"op {op_name!r}: input {first.name!r} (created at {first.where()}) belongs to "
            f"{graph!r}, not to the graph of the enclosing 'with' block ({active!r})"
        )
    return graph


def _check_static(registered: RegisteredOp, attrs: Mapping[str, Any]) -> None:
    """Attributes are fixed when the graph is built: a node there is a mistake."""
    for key, value in attrs.items():
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, Node):
                raise ArgumentError(
                    f"op {registered.opdef.name!r} (from plugin "
                    f"{registered.plugin.describe()}): attribute {key!r} is static, fixed "
                    f"when the graph is built, and cannot be node {v.name!r}; give a "
                    f"plain value (a number, or a tuple of numbers) instead"
                )
            if isinstance(v, (tuple, list)):
                stack.extend(v)


def make_operator(
    registered: RegisteredOp, args: Sequence[Any], kwargs: dict[str, Any]
) -> Operator:
    """Build an Operator node from a NumPy-style call; non-node inputs become Constants."""
    name = kwargs.pop("name", None)
    raw_inputs, attrs = registered.opdef.bind(args, kwargs)
    graph = _graph_for(raw_inputs, registered.opdef.name)
    # Every input is checked before any Constant joins the graph: a bad one adds nothing.
    values = [
        x if isinstance(x, Node) else as_value(x, f"op {registered.opdef.name!r} input {i}")
        for i, x in enumerate(raw_inputs)
    ]
    inputs = tuple(x if isinstance(x, Node) else Constant(x, graph=graph) for x in values)
    return Operator(registered, inputs, attrs, name, graph=graph)


def _plain_binary(registered: RegisteredOp, a: Any, b: Any) -> Operator:
    """``make_operator`` for two nodes or Python numbers and an op without attributes,
    which needs none of its checks: what graphs built by loops are made of. One frame
    walk gives the creation site of the op and its constants."""
    op = registered.opdef
    graph = _graph_for((a, b), op.name)
    site = creation_site()
    if a.__class__ is float or a.__class__ is int:
        a = _adopt(_bare_constant(a), graph, graph.constants, "Const", site)
    if b.__class__ is float or b.__class__ is int:
        b = _adopt(_bare_constant(b), graph, graph.constants, "Const", site)
    node = object.__new__(Operator)
    node.op, node.plugin, node.inputs, node.attrs = op, registered.plugin, (a, b), {}
    node._value = None
    return _adopt(node, graph, graph.operators, op.prefix, site)


def _bare_constant(value: float) -> Constant:
    c = object.__new__(Constant)
    c._value = value
    return c


_N = TypeVar("_N", bound=Node)


def _adopt(node: _N, graph: Graph, kind: NodeSet[Any], prefix: str,
           site: tuple[str, int] | None) -> _N:
    """What ``Node.__init__`` does, for a node made without it."""
    node.graph, node.gradient, node.site = graph, None, site
    graph.adopt(node, kind, prefix)
    return node


#: Operands ``_plain_binary`` takes (bool, a subclass of int, is not among them).
_PLAIN_OPERANDS: Final = frozenset({float, int, Variable, Constant, Placeholder, Operator})
