"""Walking a graph: topological order and reachability."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .graph import Graph, get_default_graph
from .nodeargs import as_nodes
from .nodes import Node, Operator

__all__ = ["depends_on", "topological_sort"]


def topological_sort(
    head_node: Node | Sequence[Node] | None = None, graph: Graph | None = None
) -> list[Node]:
    """Every node the head node(s) depend on, inputs before the ops that use them.

    Without a head node, sorts everything the graph's operators depend on. Iterative, so
    chains of any length work.
    """
    if head_node is None:
        roots: list[Node] = list((graph or get_default_graph()).operators)
    else:
        roots = as_nodes(head_node, "head_node")
    # Post-order DFS over a stack of plain nodes: a node is expanded the first time it
    # is on top and emitted the second time. No per-node tuples or iterators, so a long
    # chain does not keep the garbage collector busy.
    visited: set[Node] = set()
    emitted: set[Node] = set()
    order: list[Node] = []
    for root in roots:
        if root in emitted:
            continue
        stack = [root]
        while stack:
            node = stack[-1]
            if node in visited:
                stack.pop()
                if node not in emitted:
                    emitted.add(node)
                    order.append(node)
                continue
            visited.add(node)
            if isinstance(node, Operator):
                ins = node.inputs
                for k in range(len(ins) - 1, -1, -1):
                    if ins[k] not in visited:
                        stack.append(ins[k])
    return order


def depends_on(order: Sequence[Node], wrt: Iterable[Node]) -> set[Node]:
    """Nodes of ``order`` through which a gradient can reach one of ``wrt``."""
    needs = set(wrt)
    for node in order:
        if isinstance(node, Operator) and any(i in needs for i in node.inputs):
            needs.add(node)
    return needs
