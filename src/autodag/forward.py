"""Forward mode: Jacobian-vector products, built as graph nodes and evaluated.

Tangents flow from the inputs to the outputs, one op at a time. An op's tangent comes
from its optional ``OpDef.jvp`` rule; without one it is derived from the backward rule
by the transpose trick: a backward rule is linear in its cotangent ``u``, so the
gradient of ``sum_k <vjp_k(u), t_k>`` with respect to ``u`` is ``J t``, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._arrays import grad_dtype
from .backend import is_numpy
from .errors import ArgumentError
from .execute import evaluate, topological_sort
from .graph import Graph
from .nodeargs import common_graph, node_list
from .nodes import Node, Operator, Placeholder, as_value
from .symbolic import _Builder, _seeds, call_rule

__all__ = ["jvp", "jvp_nodes"]

_CACHE_KEY = "autodag.forward.jvp"


def _op_tangent(b: _Builder, node: Operator, tangents: Sequence[Node | None]) -> Node | None:
    """Tangent node of ``node``'s output from its inputs' tangents (None: zero)."""
    op = node.op
    if op.jvp is not None:
        xp = b.xp
        prev, xp.current = xp.current, node
        try:
            t = call_rule(op.jvp, node, "jvp rule", xp, tuple(tangents), node,
                          *node.inputs, **node.attrs)
        finally:
            xp.current = prev
        return None if t is None else b.reduce(node, 0, b.const(t), node)
    # The transpose trick needs the cotangent only for its shape: zeros will do.
    u = b.zeros_like(node)
    cot = b.apply_rule(node, u, [t is not None for t in tangents])
    targets = [c for c, t in zip(cot, tangents, strict=True) if c is not None and t is not None]
    seeds = [t for c, t in zip(cot, tangents, strict=True) if c is not None and t is not None]
    if not targets:
        return None
    return b.backward(targets, seeds, [u]).get(u)


def jvp_nodes(
    outputs: Node | Sequence[Node],
    inputs: Node | Sequence[Node],
    tangents: Sequence[Any] | Any,
) -> list[Node]:
    """Tangent nodes of ``outputs`` when ``inputs`` move along ``tangents`` (J @ t).

    ``tangents`` are nodes (e.g. Placeholders, to evaluate for many directions) or
    values, one per input of that input's shape.
    """
    outs = node_list(outputs, "outputs")
    ins = node_list(inputs, "inputs")
    tl: list[Any] = [tangents] if isinstance(inputs, Node) else list(tangents)
    if len(tl) != len(ins):
        raise ArgumentError(f"jvp: {len(tl)} tangents for {len(ins)} inputs")
    graph = common_graph(outs + ins, "jvp")
    with graph:
        b = _Builder(graph)
        seeds = _seeds(b, ins, tl, "tangent for input")
        tan: dict[Node, Node | None] = dict(zip(ins, seeds, strict=True))
        for node in topological_sort(outs):
            if node in tan or not isinstance(node, Operator):
                continue
            ts = [tan.get(i) for i in node.inputs]
            if any(t is not None for t in ts):
                tan[node] = _op_tangent(b, node, ts)
        result = []
        for o in outs:
            t = tan.get(o)
            result.append(b.zeros_like(o) if t is None else t)
        return result


def _cached(graph: Graph, outs: tuple[Node, ...], ins: tuple[Node, ...]
            ) -> tuple[list[Placeholder], list[Node]]:
    """Tangent placeholders and tangent nodes for (outputs, inputs), built once per graph."""
    key = (_CACHE_KEY, outs, ins)
    hit = graph.cache.get(key)
    if hit is not None:
        plan: tuple[list[Placeholder], list[Node]] = hit
        return plan
    with graph:
        b = _Builder(graph)
        places = []
        for x in ins:
            info = b.shapes.info(x)
            shape, dtype = (None, np.float64) if info is None else (info[0], info[1])
            # Tangents live in the input's gradient dtype: float32 stays float32.
            dtype = grad_dtype(np.zeros((), dtype=dtype))
            places.append(Placeholder(graph.next_name("tangent"), dtype=dtype, shape=shape,
                                      graph=graph))
    nodes = jvp_nodes(list(outs), list(ins), places)
    graph.cache[key] = (places, nodes)
    return places, nodes


def jvp(
    outputs: Node | Sequence[Node],
    inputs: Node | Sequence[Node],
    tangents: Sequence[Any] | Any,
    feed_dict: Mapping[Any, Any] | None = None,
) -> Any:
    """Forward-mode directional derivative J @ t of ``outputs``, as array(s).

    One array for one output node, else a list. The tangent graph is built on the first
    call for these outputs and inputs, and reused by later calls.
    """
    outs = tuple(node_list(outputs, "outputs"))
    ins = tuple(node_list(inputs, "inputs"))
    tl: list[Any] = [tangents] if isinstance(inputs, Node) else list(tangents)
    if len(tl) != len(ins):
        raise ArgumentError(f"jvp: {len(tl)} tangents for {len(ins)} inputs")
    graph = common_graph(list(outs + ins), "jvp")
    places, nodes = _cached(graph, outs, ins)
    feeds: dict[Any, Any] = dict(feed_dict or {})
    for p, t, x in zip(places, tl, ins, strict=True):
        if isinstance(t, Node):
            raise ArgumentError(
                f"jvp: the tangent for {x.name!r} is node {t.name!r}; jvp takes values "
                f"(use jvp_nodes for symbolic tangents)"
            )
        t = as_value(t, f"jvp: the tangent for {x.name!r}")
        ds = p.declared_shape
        if ds is not None and np.shape(t) != ds:
            raise ArgumentError(
                f"jvp: the tangent for {x.name!r} has shape {np.shape(t)}, but {x.name!r} "
                f"has shape {ds}"
            )
        if not is_numpy(t):
            feeds[p] = t  # another backend's tangent: the placeholder checks and casts it
        else:
            feeds[p] = np.asarray(t, dtype=p.dtype) if np.ndim(t) else float(t)
    values = evaluate(nodes, feeds)
    return values[0] if isinstance(outputs, Node) else values
