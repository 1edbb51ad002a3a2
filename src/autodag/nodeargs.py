"""Node arguments of the public functions: one node or several, all of one graph."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import ArgumentError, GraphMismatchError
from .graph import Graph
from .nodes import Node

__all__ = ["as_nodes", "common_graph", "node_list"]


def as_nodes(nodes: Node | Iterable[Node] | None, what: str) -> list[Node]:
    """``nodes`` as a list of nodes (one node, any iterable of them, or None for none)."""
    if nodes is None:
        return []
    out = [nodes] if isinstance(nodes, Node) else list(nodes)
    for n in out:
        if not isinstance(n, Node):
            raise ArgumentError(f"{what} must be nodes, got {type(n).__name__}: {n!r:.60}")
    return out


def node_list(nodes: Node | Sequence[Node], what: str) -> list[Node]:
    """``nodes`` as a non-empty list, each checked to be a node."""
    out = as_nodes(nodes, what)
    if not out:
        raise ArgumentError(f"{what} is empty")
    return out


def common_graph(nodes: Sequence[Node], what: str) -> Graph:
    """The graph all of ``nodes`` belong to, or GraphMismatchError."""
    graph = nodes[0].graph
    for n in nodes[1:]:
        if n.graph is not graph:
            raise GraphMismatchError(
                f"{what}: nodes {nodes[0].name!r} and {n.name!r} belong to different graphs "
                f"({graph!r} and {n.graph!r})"
            )
    return graph
