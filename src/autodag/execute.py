"""The public passes: ``forward_pass``, ``backward_pass``, ``evaluate``, ``grad``, and
the plan cache behind the last two.

``evaluate`` and ``grad`` run cached plans, made once per outputs and wrt and dropped
when the graph grows. A plan starts interpreted (``interpreter.Interpreted``: cheap to
make) and is replaced by the compiler's ``Plan`` once the same request comes again and
compiling is likely to pay off. ``forward_pass``/``backward_pass`` keep the tutorial's
behaviour of also storing results on the nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import debugnans
from .compiler import limits
from .errors import ArgumentError, GraphMismatchError, MissingFeedError
from .feeds import leaf_values, resolve_feeds
from .foreign import checked_rules_namespace, foreign_namespace, run_foreign
from .interpreter import Interpreted, Values
from .nodeargs import as_nodes
from .nodes import Node, Operator, Placeholder
from .registry import get_registry
from .runtime import FROM_LEAF, finish_gradients, wrt_sources
from .traversal import topological_sort

if TYPE_CHECKING:
    from .compiler.plan import Plan

__all__ = [
    "backward_pass",
    "cached_plan",
    "evaluate",
    "forward_pass",
    "grad",
    "topological_sort",
]

#: Key of the plan cache in ``Graph.cache``; holds (graph version, {key: plan}).
_PLANS = "autodag.execute.plans"


def forward_pass(order: Sequence[Node], feed_dict: Mapping[Any, Any] | None = None) -> Any:
    """Compute every node of ``order``, store values on the nodes, return the last one's."""
    if not order:
        return None
    plan = (debugnans.Checked if debugnans.mode() else Interpreted)(order, order[-1:], None)
    leaves = leaf_values(plan, resolve_feeds(order, feed_dict))
    ns = foreign_namespace(plan, leaves)
    if ns is not None:
        checked_rules_namespace(plan, ns)  # every op can run on that backend
    vals = plan.forward(leaves)
    for node, v in zip(plan.order, vals, strict=True):
        if isinstance(node, (Operator, Placeholder)):
            node.value = v
    return vals[-1]


def backward_pass(order: Sequence[Node], target_node: Node | None = None) -> list[Any]:
    """Gradients of ``target_node`` (default: the last node) after a ``forward_pass``.

    Stores each gradient on its node and returns them in the order of ``order``. The
    target's gradient is ones of its shape, so a non-scalar target gives the gradient of
    its sum.
    """
    if not order:
        return []
    target = order[-1] if target_node is None else target_node
    vals: list[Any] = []
    for node in order:
        v = node.value
        if v is None:
            raise ArgumentError(
                f"node {node.name!r} has no value: run forward_pass before backward_pass"
            )
        vals.append(v)
        node.gradient = None
    if target not in order:
        raise ArgumentError(f"target node {target.name!r} is not in the order")
    plan = (debugnans.Checked if debugnans.mode() else Interpreted)(
        order, [target], None, every=True)
    ns = foreign_namespace(plan, [n.value for n in plan.leaves])
    xp = None if ns is None else checked_rules_namespace(plan, ns)
    grads = plan.backward(vals, list(order).index(target), xp)
    sources = [(FROM_LEAF, k) for k in range(len(order))]
    result = finish_gradients(sources, grads, (), vals, scalars=False)
    for node, g in zip(order, result, strict=True):
        node.gradient = g
    return result


def _ripe(plan: Interpreted) -> bool:
    """Whether this request has come often enough to compile it."""
    n = len(plan.order)
    return plan.calls >= 1 and (
        n <= limits.COMPILE_AT_ONCE or plan.spent >= n * limits.COMPILE_COST)


def cached_plan(outputs: tuple[Node, ...], wrt: tuple[Node, ...] | None) -> Interpreted | Plan:
    """The plan for ``outputs`` (and the gradient of the first for ``wrt``), made once.

    Plans live in the graph's cache and are dropped together when a node is added. A
    new request gets an ``Interpreted`` plan; a repeated one whose plan is ripe gets the
    compiler's.
    """
    graph = outputs[0].graph
    version = graph.version
    entry = graph.cache.get(_PLANS)
    if entry is None or entry[0] != version:
        entry = (version, {})
        graph.cache[_PLANS] = entry
    plans: dict[Any, Interpreted | Plan] = entry[1]
    key = (outputs, wrt)
    plan = plans.get(key)
    if plan is None:
        for w in wrt or ():
            if w.graph is not graph:
                raise GraphMismatchError(
                    f"wrt node {w.name!r} (created at {w.where()}) belongs to {w.graph!r}, "
                    f"not to the graph of output {outputs[0].name!r} ({graph!r})"
                )
        order = topological_sort(list(outputs))
        if wrt is not None:
            # A wrt operator's value gives its gradient's dtype: return it alongside.
            inside = set(order)
            extra = tuple(w for w in dict.fromkeys(wrt) if isinstance(w, Operator)
                          and w in inside and w not in outputs)
            outputs = outputs + extra
        plan = Interpreted(order, outputs, wrt)
        if len(plans) >= limits.MAX_PLANS:
            plans.clear()
        plans[key] = plan
    elif isinstance(plan, Interpreted) and _ripe(plan):
        from .compiler.plan import Plan  # the compiler loads when first needed

        compiled = Plan(plan.order, plan.outputs, plan.wrt, eager=True)
        compiled.wrt_sources = plan.wrt_sources
        plans[key] = plan = compiled
    return plan


def evaluate(
    outputs: Node | Sequence[Node], feed_dict: Mapping[Any, Any] | None = None
) -> Any:
    """Value of one node, or a list of values for a list of nodes; stores nothing."""
    outs = tuple(as_nodes(outputs, "outputs"))
    if not outs:
        return []
    plan = cached_plan(outs, None)
    feeds = resolve_feeds(plan.order, feed_dict)
    values, _ = _run(plan, leaf_values(plan, feeds))
    if isinstance(outputs, Node):
        return values[0]
    return list(values[: len(outs)])


def grad(
    output: Node, wrt: Node | Sequence[Node], feed_dict: Mapping[Any, Any] | None = None
) -> list[np.ndarray[Any, Any]]:
    """Gradient of ``output`` (of its sum, if not scalar) for each node of ``wrt``.

    Each gradient has its node's shape and a floating dtype; a node ``output`` does not
    depend on gets zeros. Stores nothing on the nodes. The passes are planned once per
    (output, wrt) and reused until a node is added to the graph.
    """
    if not isinstance(output, Node):
        raise ArgumentError(f"output must be a node, got {type(output).__name__}")
    targets = tuple(as_nodes(wrt, "wrt"))
    plan = cached_plan((output,), targets)
    feeds = resolve_feeds(plan.order, feed_dict)
    leaves = leaf_values(plan, feeds)
    values, grads = _run(plan, leaves)
    src = plan.wrt_sources
    if src is None:
        src = plan.wrt_sources = wrt_sources(plan.outputs, plan.leaves, set(plan.order),
                                             targets)
    return finish_gradients(src, grads, values, leaves, scalars=False,
                            unrelated=lambda j: _unrelated_value(targets[j], feeds))


def _run(plan: Interpreted | Plan, leaves: Sequence[Any],
         ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The plan's passes on NumPy values, or on the backend of another library's arrays."""
    if debugnans.ACTIVE and debugnans.mode():
        return debugnans.run_checked(plan, leaves)
    for v in leaves:
        c = v.__class__
        if c is not float and c is not np.ndarray and c is not int:
            break
    else:
        if plan.foreign_constants == ():  # the common case, asked at every call: NumPy
            return plan.run(get_registry().numeric if plan.uses_xp else None, leaves)
    ns = foreign_namespace(plan, leaves)
    if ns is not None:
        return run_foreign(plan, ns, leaves)
    return plan.run(get_registry().numeric if plan.uses_xp else None, leaves)


def _unrelated_value(node: Node, feeds: Values) -> Any:
    """Value of a ``wrt`` node the output does not depend on: only its shape matters."""
    if isinstance(node, Operator):
        order = topological_sort(node)
        plan = Interpreted(order, [node], None)
        return plan.forward(leaf_values(plan, resolve_feeds(order, feeds)))[-1]
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
