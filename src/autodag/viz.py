"""Graph pictures: DOT text with no dependency."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .execute import topological_sort
from .graph import Graph
from .nodes import Constant, Node, Operator, Placeholder, Variable

__all__ = ["dot_quote", "to_dot"]


def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string; nothing in it can escape the quotes."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")
    return f'"{escaped}"'


def _nodes_of(obj: Node | Iterable[Node] | Graph) -> list[Node]:
    if isinstance(obj, Graph):
        seen = topological_sort(graph=obj)
        linked = set(seen)
        return seen + [n for n in obj.nodes if n not in linked]
    if isinstance(obj, Node):
        return topological_sort(obj)
    return topological_sort(list(obj))


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    return f"{np.shape(value)} {np.result_type(value).name}"


def _label(node: Node) -> str:
    if isinstance(node, Operator):
        parts = [node.name, f"{node.op.name} [{node.plugin.name}]"]
    else:
        kind = {Variable: "Variable", Constant: "Constant", Placeholder: "Placeholder"}
        parts = [node.name, kind.get(type(node), type(node).__name__)]
    shape = _value_text(node.value)
    if shape:
        parts.append(shape)
    return "\n".join(parts)


def to_dot(obj: Node | Iterable[Node] | Graph, *, title: str | None = None) -> str:
    """DOT text of a node and what it depends on, a list of nodes, or a whole graph.

    Data nodes are boxes, operators circles; edges run from input to op. Node identity,
    not name, is the DOT id, so nodes sharing a name stay apart.
    """
    nodes = _nodes_of(obj)
    ids = {node: f"n{i}" for i, node in enumerate(nodes)}
    lines = ["digraph autodag {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    if title is not None:
        lines.append(f"  label={dot_quote(title)};")
    for node in nodes:
        shape = "circle" if isinstance(node, Operator) else "box"
        lines.append(f"  {ids[node]} [shape={shape}, label={dot_quote(_label(node))}];")
    for node in nodes:
        if isinstance(node, Operator):
            for k, inp in enumerate(node.inputs):
                if inp in ids:
                    lines.append(f"  {ids[inp]} -> {ids[node]} [label={dot_quote(str(k))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
