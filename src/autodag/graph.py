"""Graph: the collections of nodes, their default names, and the default-graph stack."""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableSet
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .nodes import Constant, Node, Operator, Placeholder, Variable

__all__ = ["Graph", "NodeSet", "get_default_graph"]

N = TypeVar("N", bound="Node")


class NodeSet(MutableSet[N], Generic[N]):
    """A set of nodes that iterates in insertion order (so runs are reproducible)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[N, None] = {}

    def __contains__(self, node: object) -> bool:
        return node in self._items

    def __iter__(self) -> Iterator[N]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, value: N) -> None:
        """Add a node."""
        self._items[value] = None

    def discard(self, value: N) -> None:
        """Remove a node if present."""
        self._items.pop(value, None)

    def __repr__(self) -> str:
        return "{" + ", ".join(repr(n) for n in self._items) + "}" if self._items else "set()"


class Graph:
    """A computational graph: nodes created inside ``with Graph():`` belong to it.

    Default node names come from this graph's own counters (``Var/0``, ``add/0``), so
    graphs never share or reset each other's counts.
    """

    def __init__(self) -> None:
        self.operators: NodeSet[Operator] = NodeSet()
        self.constants: NodeSet[Constant] = NodeSet()
        self.variables: NodeSet[Variable] = NodeSet()
        self.placeholders: NodeSet[Placeholder] = NodeSet()
        #: Every node, in creation order.
        self.nodes: list[Node] = []
        #: Bumped whenever a node is added, so cached plans know they are stale.
        self.version = 0
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        #: Caches derived from the graph's structure (execution plans), keyed by users.
        self.cache: dict[Any, Any] = {}

    def next_name(self, prefix: str) -> str:
        """A fresh default name ``prefix/N`` from this graph's counter for ``prefix``."""
        with self._lock:
            n = self._counts.get(prefix, 0)
            self._counts[prefix] = n + 1
        return f"{prefix}/{n}"

    def adopt(self, node: Node, kind: NodeSet[Any], prefix: str) -> None:
        """Name ``node`` from the counter for ``prefix`` and add it, under one lock."""
        with self._lock:
            n = self._counts.get(prefix, 0)
            self._counts[prefix] = n + 1
            node.name = f"{prefix}/{n}"
            kind.add(node)
            self.nodes.append(node)
            self.version += 1

    def _add(self, node: Node, kind: NodeSet[Any]) -> None:
        with self._lock:
            kind.add(node)
            self.nodes.append(node)
            self.version += 1

    def __enter__(self) -> Graph:
        _stack().append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = _stack()
        if stack and stack[-1] is self:
            stack.pop()
        elif self in stack:
            stack.remove(self)

    def __repr__(self) -> str:
        return (
            f"<Graph {len(self.variables)} variables, {len(self.constants)} constants, "
            f"{len(self.placeholders)} placeholders, {len(self.operators)} operators>"
        )

    def __len__(self) -> int:
        return len(self.nodes)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and copy without the lock and without cached plans (they are rebuilt)."""
        state = self.__dict__.copy()
        del state["_lock"]
        state["cache"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter display: the picture of the graph, or text without Graphviz."""
        from .viz import mimebundle

        return mimebundle(self)

    def _repr_svg_(self) -> str | None:
        """Jupyter display as SVG, or None (text instead) without Graphviz."""
        from .viz import mimebundle

        return mimebundle(self).get("image/svg+xml")


_local = threading.local()
_default_graph = Graph()


def _stack() -> list[Graph]:
    try:
        stack: list[Graph] = _local.stack
    except AttributeError:
        stack = _local.stack = []
    return stack


def active_graph() -> Graph | None:
    """The innermost graph of an enclosing ``with`` block in this thread, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def get_default_graph() -> Graph:
    """The graph new nodes join: the innermost ``with`` graph, else the default graph."""
    stack = _stack()
    return stack[-1] if stack else _default_graph
