"""Topological sort, forward and backward passes.

The passes keep values and gradients in local dicts, never on nodes, so two threads can
run one graph at once. ``forward_pass``/``backward_pass`` keep the tutorial's behaviour
of also storing results on the nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._arrays import grad_dtype, sum_to
from .errors import GradientError, MissingFeedError, OpExecutionError, ShapeMismatchError
from .graph import Graph, get_default_graph
from .nodes import Node, Operator, Placeholder, Variable, as_value
from .registry import get_registry

__all__ = [
    "backward_pass",
    "evaluate",
    "forward_pass",
    "grad",
    "topological_sort",
]

Values = dict[Node, Any]


def _as_nodes(nodes: Node | Iterable[Node], what: str) -> list[Node]:
    if isinstance(nodes, Node):
        return [nodes]
    out = list(nodes)
    for n in out:
        if not isinstance(n, Node):
            raise TypeError(f"{what} must be nodes, got {type(n).__name__}: {n!r:.60}")
    return out


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
        roots = _as_nodes(head_node, "head_node")
    visited: set[Node] = set()
    order: list[Node] = []
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.inputs if isinstance(root, Operator) else ()))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append(
                        (child, iter(child.inputs if isinstance(child, Operator) else ()))
                    )
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _resolve_feeds(order: Sequence[Node], feed_dict: Mapping[Any, Any] | None) -> Values:
    """Feed dict keyed by nodes (or node names), validated against the placeholders."""
    if not feed_dict:
        return {}
    feeds: Values = {}
    by_name: dict[str, Node] | None = None
    for key, value in feed_dict.items():
        if isinstance(key, Node):
            node = key
        elif isinstance(key, str):
            if by_name is None:
                by_name = {n.name: n for n in order if not isinstance(n, Operator)}
            found = by_name.get(key)
            if found is None:
                continue  # a name the requested outputs do not depend on
            node = found
        else:
            raise TypeError(f"feed_dict keys must be nodes or names, got {type(key).__name__}")
        if isinstance(node, Operator):
            raise TypeError(f"cannot feed operator node {node.name!r}; feed placeholders")
        if isinstance(node, Placeholder):
            feeds[node] = node.check_feed(value)
        elif isinstance(node, Variable):
            feeds[node] = as_value(value, f"feed for Variable {node.name!r}")
        else:
            raise TypeError(f"cannot feed constant {node.name!r}")
    return feeds


def _forward_error(node: Operator, args: Sequence[Any], exc: Exception) -> OpExecutionError:
    ins = ", ".join(
        f"{i.name!r} {getattr(np.result_type(a), 'name', '?')} shape {np.shape(a)}"
        for i, a in zip(node.inputs, args, strict=False)
    )
    attrs = f" with {dict(node.attrs)}" if node.attrs else ""
    msg = f"op {node.op.name!r} failed at {node.describe()}{attrs}; inputs: {ins}: {exc}"
    cls = ShapeMismatchError if isinstance(exc, ValueError) else OpExecutionError
    return cls(msg)


def _forward(order: Sequence[Node], feeds: Values) -> Values:
    values: Values = {}
    for node in order:
        if isinstance(node, Operator):
            args = [values[i] for i in node.inputs]
            try:
                values[node] = node.op.forward(*args, **node.attrs)
            except Exception as exc:
                raise _forward_error(node, args, exc) from exc
        elif node in feeds:
            values[node] = feeds[node]
        elif isinstance(node, Placeholder):
            raise MissingFeedError(
                f"Placeholder {node.name!r} (created at {node.where()}) needs a value: "
                f"pass feed_dict={{placeholder: value}}"
            )
        else:
            values[node] = node.value
    return values


def _seed(value: Any) -> Any:
    if isinstance(value, float):
        return 1.0  # stay a Python scalar: the fast path for scalar graphs
    return np.ones(np.shape(value), dtype=grad_dtype(value))


def _depends_on(order: Sequence[Node], wrt: Iterable[Node]) -> set[Node]:
    """Nodes of ``order`` through which a gradient can reach one of ``wrt``."""
    needs = set(wrt)
    for node in order:
        if isinstance(node, Operator) and any(i in needs for i in node.inputs):
            needs.add(node)
    return needs


def _reduce(node: Operator, k: int, g: Any, value: Any) -> Any:
    """``g`` summed to the shape of input ``k`` of ``node``, or a GradientError."""
    shape = np.shape(value)
    if np.shape(g) == shape:
        return g
    try:
        return sum_to(g, shape)
    except ValueError:
        raise GradientError(
            f"backward of op {node.op.name!r} from plugin {node.plugin.describe()} returned "
            f"a gradient of shape {np.shape(g)} for input {k} ({node.inputs[k].name!r}) of "
            f"shape {shape}, at {node.describe()}"
        ) from None


def _backward(
    order: Sequence[Node], values: Values, target: Node, needs: set[Node] | None
) -> Values:
    """Reverse pass: gradient of ``target`` for every node in ``needs`` (all when None)."""
    xp = get_registry().numeric
    grads: Values = {target: _seed(values[target])}
    # Rules evaluate derivative formulas at points where they are infinite or undefined
    # (0 ** -0.5, log 0); the result is what NumPy says, without warnings about it.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for node in reversed(order):
            if not isinstance(node, Operator):
                continue
            g = grads.get(node)
            if g is None:
                continue
            ins = node.inputs
            want = [needs is None or i in needs for i in ins]
            if not any(want):
                continue
            op = node.op
            args = [values[i] for i in ins]
            out = values[node]
            vjps = op.vjps
            if vjps is not None:
                results: Sequence[Any] = [
                    rule(xp, g, out, *args, **node.attrs)
                    if rule is not None and want[k] else None
                    for k, rule in enumerate(vjps)
                ]
            elif op.joint_backward is not None:
                results = op.joint_backward(xp, g, out, *args, **node.attrs)
                if not isinstance(results, (tuple, list)) or len(results) != len(ins):
                    n = len(results) if isinstance(results, (tuple, list)) else "a non-sequence"
                    raise GradientError(
                        f"backward of op {op.name!r} from plugin {node.plugin.describe()} "
                        f"returned {n} gradients for {len(ins)} inputs, at {node.describe()}"
                    )
            else:
                continue
            for k, gk in enumerate(results):
                if gk is None or not want[k]:
                    continue
                inp = ins[k]
                gk = _reduce(node, k, gk, args[k])
                prev = grads.get(inp)
                # Never in place: the same array may have been handed to two inputs.
                grads[inp] = gk if prev is None else prev + gk
    return grads


def _finish(g: Any, value: Any) -> np.ndarray[Any, Any]:
    dt = grad_dtype(value)
    if g is None:
        return np.zeros(np.shape(value), dtype=dt)
    return np.asarray(g, dtype=dt)


def forward_pass(order: Sequence[Node], feed_dict: Mapping[Any, Any] | None = None) -> Any:
    """Compute every node of ``order``, store values on the nodes, return the last one's."""
    feeds = _resolve_feeds(order, feed_dict)
    values = _forward(order, feeds)
    for node, v in values.items():
        if isinstance(node, (Operator, Placeholder)):
            node.value = v
    return values[order[-1]] if order else None


def backward_pass(order: Sequence[Node], target_node: Node | None = None) -> list[Any]:
    """Gradients of ``target_node`` (default: the last node) after a ``forward_pass``.

    Stores each gradient on its node and returns them in the order of ``order``. The
    target's gradient is ones of its shape, so a non-scalar target gives the gradient of
    its sum.
    """
    if not order:
        return []
    target = order[-1] if target_node is None else target_node
    values: Values = {}
    for node in order:
        v = node.value
        if v is None:
            raise ValueError(
                f"node {node.name!r} has no value: run forward_pass before backward_pass"
            )
        values[node] = v
        node.gradient = None
    if target not in values:
        raise ValueError(f"target node {target.name!r} is not in the order")
    grads = _backward(order, values, target, None)
    result = []
    for node in order:
        node.gradient = _finish(grads.get(node), values[node])
        result.append(node.gradient)
    return result


def evaluate(
    outputs: Node | Sequence[Node], feed_dict: Mapping[Any, Any] | None = None
) -> Any:
    """Value of one node, or a list of values for a list of nodes; stores nothing."""
    outs = _as_nodes(outputs, "outputs")
    order = topological_sort(outs)
    values = _forward(order, _resolve_feeds(order, feed_dict))
    if isinstance(outputs, Node):
        return values[outputs]
    return [values[o] for o in outs]


def grad(
    output: Node, wrt: Node | Sequence[Node], feed_dict: Mapping[Any, Any] | None = None
) -> list[np.ndarray[Any, Any]]:
    """Gradient of ``output`` (of its sum, if not scalar) for each node of ``wrt``.

    Each gradient has its node's shape and a floating dtype; a node ``output`` does not
    depend on gets zeros. Stores nothing on the nodes.
    """
    if not isinstance(output, Node):
        raise TypeError(f"output must be a node, got {type(output).__name__}")
    targets = _as_nodes(wrt, "wrt")
    order = topological_sort(output)
    feeds = _resolve_feeds(order, feed_dict)
    values = _forward(order, feeds)
    grads = _backward(order, values, output, _depends_on(order, targets))
    result: list[np.ndarray[Any, Any]] = []
    seen: set[int] = set()
    for node in targets:
        v = values[node] if node in values else _unrelated_value(node, feeds)
        g = _finish(grads.get(node), v)
        if id(g) in seen:  # one rule's result handed to two inputs: never alias them
            g = g.copy()
        seen.add(id(g))
        result.append(g)
    return result


def _unrelated_value(node: Node, feeds: Values) -> Any:
    """Value of a ``wrt`` node the output does not depend on: only its shape matters."""
    if isinstance(node, Operator):
        order = topological_sort(node)
        return _forward(order, _resolve_feeds(order, feeds))[node]
    if node in feeds:
        return feeds[node]
    if isinstance(node, Placeholder):
        if node.shape is None:
            raise MissingFeedError(
                f"Placeholder {node.name!r} in wrt has no fed value and no declared shape, "
                "so the shape of its (zero) gradient is unknown"
            )
        return np.zeros(node.shape, dtype=node.dtype)
    return node.value
