"""Topological sort, forward and backward passes.

``evaluate`` and ``grad`` run cached plans, made once per outputs and wrt and dropped
when the graph grows. A plan starts interpreted (``Interpreted``: the passes as loops
over the sorted nodes, cheap to make) and is replaced by generated straight-line Python
(``program.Plan``) once the same request comes again and compiling is likely to pay
off. Values and gradients live in the passes' locals, never on nodes, so two threads
can run one graph at once. ``forward_pass``/``backward_pass`` keep the tutorial's
behaviour of also storing results on the nodes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ._arrays import grad_dtype, owned, quiet_numpy, sum_to
from .errors import (
    AutodagError,
    GradientError,
    GraphMismatchError,
    MissingFeedError,
    OpExecutionError,
    ShapeMismatchError,
)
from .graph import Graph, get_default_graph
from .nodes import Constant, Node, Operator, Placeholder, Variable, as_value
from .registry import get_registry

if TYPE_CHECKING:
    from .program import Plan

__all__ = [
    "backward_pass",
    "cached_plan",
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


def _resolve_feeds(order: Sequence[Node], feed_dict: Mapping[Any, Any] | None) -> Values:
    """Feed dict keyed by nodes (or node names), validated against the placeholders."""
    if not feed_dict:
        return {}
    feeds: Values = {}
    by_name: dict[str, Node] | None = None
    for key, value in feed_dict.items():
        if (key.__class__ is Placeholder and value.__class__ is float
                and key.dtype.kind == "f" and key.declared_shape in (None, ())):
            feeds[key] = value  # the common case of scalar graphs, with nothing to check
            continue
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
            # A Python float for a float placeholder of any or scalar shape: nothing to check.
            if value.__class__ is float and node.dtype.kind == "f" and (
                node.declared_shape is None or node.declared_shape == ()
            ):
                feeds[node] = value
            else:
                feeds[node] = node.check_feed(value)
        elif isinstance(node, Variable):
            feeds[node] = as_value(value, f"feed for Variable {node.name!r}")
        else:
            raise TypeError(f"cannot feed constant {node.name!r}")
    return feeds


def forward_error(node: Operator, args: Sequence[Any], exc: Exception) -> OpExecutionError:
    """The error for a forward rule that raised: op, node, plugin, site, input shapes."""
    ins = ", ".join(
        f"{i.name!r} {getattr(np.result_type(a), 'name', '?')} shape {np.shape(a)}"
        for i, a in zip(node.inputs, args, strict=False)
    )
    attrs = f" with {dict(node.attrs)}" if node.attrs else ""
    msg = f"op {node.op.name!r} failed at {node.describe()}{attrs}; inputs: {ins}: {exc}"
    cls = ShapeMismatchError if isinstance(exc, ValueError) else OpExecutionError
    return cls(msg)


_forward_error = forward_error


def backward_error(node: Operator, g: Any, args: Sequence[Any], exc: Exception) -> GradientError:
    """The error for a backward rule that raised: op, plugin, node, site and shapes."""
    ins = ", ".join(f"{i.name!r} shape {np.shape(a)}" for i, a in zip(node.inputs, args))
    return GradientError(
        f"backward rule of op {node.op.name!r} from plugin {node.plugin.describe()} failed "
        f"at {node.describe()}; incoming gradient shape {np.shape(g)}, inputs: {ins}: "
        f"{type(exc).__name__}: {exc}"
    )


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
            raise _missing(node)
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


def reduce_grad(g: Any, like: Any, node: Operator, k: int) -> Any:
    """``g`` summed to the shape of ``like`` (a value or a shape token), for input ``k``."""
    lc = like.__class__
    shape = like if lc is tuple else like.shape if lc is np.ndarray else np.shape(like)
    gs = g.shape if g.__class__ is np.ndarray else np.shape(g)
    if gs == shape:
        return g
    try:
        return sum_to(g, shape)
    except ValueError:
        raise GradientError(
            f"backward of op {node.op.name!r} from plugin {node.plugin.describe()} returned "
            f"a gradient of shape {gs} for input {k} ({node.inputs[k].name!r}) of "
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
    with quiet_numpy():
        for node in reversed(order):
            g = grads.get(node)
            if g is None or not isinstance(node, Operator):
                continue
            ins = node.inputs
            if needs is None:
                want = [True] * len(ins)
            else:
                want = [i in needs for i in ins]
                if True not in want:
                    continue
            op = node.op
            args = [values[i] for i in ins]
            out = values[node]
            vjps = op.vjps
            attrs = node.attrs
            try:
                if vjps is not None:
                    results: Sequence[Any] = [
                        rule(xp, g, out, *args, **attrs)
                        if rule is not None and want[k] else None
                        for k, rule in enumerate(vjps)
                    ]
                elif op.joint_backward is not None:
                    results = op.joint_backward(xp, g, out, *args, **attrs)
                else:
                    continue
            except (AutodagError, ArithmeticError):
                raise  # already named; Python float arithmetic is retried in NumPy
            except Exception as exc:
                raise backward_error(node, g, args, exc) from exc
            if vjps is None and (
                not isinstance(results, (tuple, list)) or len(results) != len(ins)
            ):
                n = len(results) if isinstance(results, (tuple, list)) else "a non-sequence"
                raise GradientError(
                    f"backward of op {op.name!r} from plugin {node.plugin.describe()} "
                    f"returned {n} gradients for {len(ins)} inputs, at {node.describe()}"
                )
            for k, gk in enumerate(results):
                if gk is None or not want[k]:
                    continue
                inp = ins[k]
                gk = reduce_grad(gk, args[k], node, k)
                prev = grads.get(inp)
                # Never in place: the same array may have been handed to two inputs.
                grads[inp] = gk if prev is None else prev + gk
    return grads


def _finish(g: Any, value: Any) -> np.ndarray[Any, Any]:
    dt = grad_dtype(value)
    if g is None:
        return np.zeros(np.shape(value), dtype=dt)
    out: np.ndarray[Any, Any] = owned(np.asarray(g, dtype=dt))
    return out


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
    seen: set[int] = set()
    for node in order:
        g = _finish(grads.get(node), values[node])
        if id(g) in seen:  # one rule's result handed to two inputs: never alias them
            g = g.copy()
        seen.add(id(g))
        node.gradient = g
        result.append(g)
    return result


#: Key of the plan cache in ``Graph.cache``; holds (graph version, {key: plan}).
_PLANS = "autodag.execute.plans"
#: Plans kept per graph version; a program asking for more distinct ones starts over.
_MAX_PLANS = 128
#: When to compile a plan (measured on scalar and array chains, 2-core machine): the
#: interpreter costs about 4 us per node and call on Python floats and 6-17 us on small
#: arrays; generated code 0.25 us and 3.5-4 us; generating and compiling it costs about
#: 50 us per node for a scalar graph and 200-400 us for arrays, so compiling pays off
#: after roughly 13 calls (scalars) to 55 calls (arrays). A plan of at most
#: ``COMPILE_AT_ONCE`` nodes is compiled on its second call: that costs at most a few
#: milliseconds, and for small graphs (W1) the per-call overhead is what matters. A
#: larger plan is compiled once its interpreted calls have taken ``COMPILE_COST`` seconds
#: per node in all (the expected compile time), so a caller never spends much more than
#: twice the best of interpreting every call and compiling at once.
COMPILE_AT_ONCE: Final = 100
COMPILE_COST: Final = 1.5e-4


class PlanBase:
    """What every plan knows: the sorted nodes, outputs, wrt nodes and leaves.

    ``leaves`` are the non-constant leaf nodes whose values each call passes in, in that
    order; ``run(xp, leaf_values)`` returns the output values and the raw gradients of
    ``outputs[0]`` for ``wrt`` (None where none reached).
    """

    def __init__(
        self, order: Sequence[Node], outputs: Sequence[Node], wrt: Sequence[Node] | None
    ) -> None:
        self.order: tuple[Node, ...] = tuple(order)
        self.outputs = tuple(outputs)
        self.wrt = None if wrt is None else tuple(wrt)
        #: Filled in by ``grad``: where each wrt node's value comes from.
        self.wrt_sources: list[tuple[int, Any]] | None = None
        self.leaves = tuple(n for n in self.order if not isinstance(n, (Operator, Constant)))


class Interpreted(PlanBase):
    """The passes for ``outputs`` as loops over the sorted nodes: no code to generate."""

    def __init__(
        self, order: Sequence[Node], outputs: Sequence[Node], wrt: Sequence[Node] | None
    ) -> None:
        super().__init__(order, outputs, wrt)
        self.uses_xp = True
        self._needs = None if self.wrt is None else _depends_on(self.order, self.wrt)
        #: Calls so far and the seconds they took, to decide when compiling pays off.
        self.calls = 0
        self.spent = 0.0

    @functools.cached_property
    def slot(self) -> dict[Node, int]:
        """Position of each node in ``order`` (made only if asked for)."""
        return {n: i for i, n in enumerate(self.order)}

    def ripe(self) -> bool:
        """Whether this request has come often enough to compile it."""
        n = len(self.order)
        return self.calls >= 1 and (n <= COMPILE_AT_ONCE or self.spent >= n * COMPILE_COST)

    def run(self, xp: Any, leaf_values: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Output values and raw gradients for these leaf values (in ``leaves`` order)."""
        t0 = time.perf_counter()
        values = _forward(self.order, dict(zip(self.leaves, leaf_values, strict=True)))
        grads: tuple[Any, ...] = ()
        if self.wrt is not None:
            try:
                gs = _backward(self.order, values, self.outputs[0], self._needs)
            except ArithmeticError:
                # A formula Python refuses on floats (x / 0.0 after an underflow): redo
                # it in NumPy floats, which answer inf or nan, as the compiled plan does.
                floats = [np.float64(v) if v.__class__ is float else v for v in leaf_values]
                values = _forward(self.order, dict(zip(self.leaves, floats, strict=True)))
                gs = _backward(self.order, values, self.outputs[0], self._needs)
            grads = tuple(gs.get(w) for w in self.wrt)
        outs = tuple(values[o] for o in self.outputs)
        self.calls += 1
        self.spent += time.perf_counter() - t0
        return outs, grads


def cached_plan(
    outputs: tuple[Node, ...], wrt: tuple[Node, ...] | None
) -> Interpreted | Plan:
    """The plan for ``outputs`` (and the gradient of the first for ``wrt``), made once.

    Plans live in the graph's cache and are dropped together when a node is added. A
    new request gets an ``Interpreted`` plan; a repeated one whose plan is ``ripe`` gets
    the generated code.
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
        if len(plans) >= _MAX_PLANS:
            plans.clear()
        plans[key] = plan
    elif isinstance(plan, Interpreted) and plan.ripe():
        from .program import Plan

        compiled = Plan(plan.order, plan.outputs, plan.wrt)
        compiled.wrt_sources = plan.wrt_sources
        plans[key] = plan = compiled
    return plan


def _missing(node: Node) -> MissingFeedError:
    return MissingFeedError(
        f"Placeholder {node.name!r} (created at {node.where()}) needs a value: "
        f"pass feed_dict={{placeholder: value}}"
    )


def leaf_values(plan: Interpreted | Plan, feeds: Values) -> list[Any]:
    """Current values of the plan's leaves: fed values, else the Variables' own."""
    out = []
    for node in plan.leaves:
        v = feeds.get(node, feeds) if feeds else feeds
        if v is feeds:
            if isinstance(node, Placeholder):
                raise _missing(node)
            v = node.value
        out.append(v)
    return out


def evaluate(
    outputs: Node | Sequence[Node], feed_dict: Mapping[Any, Any] | None = None
) -> Any:
    """Value of one node, or a list of values for a list of nodes; stores nothing."""
    outs = tuple(_as_nodes(outputs, "outputs"))
    if not outs:
        return []
    plan = cached_plan(outs, None)
    feeds = _resolve_feeds(plan.order, feed_dict)
    values, _ = plan.run(get_registry().numeric if plan.uses_xp else None, leaf_values(plan, feeds))
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
        raise TypeError(f"output must be a node, got {type(output).__name__}")
    targets = tuple(_as_nodes(wrt, "wrt"))
    plan = cached_plan((output,), targets)
    feeds = _resolve_feeds(plan.order, feed_dict)
    leaves = leaf_values(plan, feeds)
    values, grads = plan.run(get_registry().numeric if plan.uses_xp else None, leaves)
    src = plan.wrt_sources
    if src is None:
        src = plan.wrt_sources = _wrt_sources(plan, targets)
    result: list[np.ndarray[Any, Any]] = []
    seen: set[int] = set()
    for node, (kind, where), g in zip(targets, src, grads, strict=True):
        if kind == 0:
            v = values[where]
        elif kind == 1:
            v = leaves[where]
        elif kind == 2:
            v = where
        else:
            v = _unrelated_value(node, feeds)
        if g.__class__ is float and v.__class__ is float:
            result.append(np.array(g))  # a new float64 array of shape ()
            continue
        g = _finish(g, v)
        if id(g) in seen:  # one rule's result handed to two inputs: never alias them
            g = g.copy()
        seen.add(id(g))
        result.append(g)
    return result


def _wrt_sources(plan: Interpreted | Plan, targets: Sequence[Node]) -> list[tuple[int, Any]]:
    """Where each wrt node's value comes from: (0, output), (1, leaf), (2, the Constant's
    value) or (3, None) for a node the output does not depend on."""
    outs = {n: k for k, n in enumerate(plan.outputs)}
    leaves = {n: k for k, n in enumerate(plan.leaves)}
    src: list[tuple[int, Any]] = []
    for node in targets:
        if node in outs:
            src.append((0, outs[node]))
        elif node in leaves:
            src.append((1, leaves[node]))
        elif node in plan.slot and not isinstance(node, Operator):
            src.append((2, node.value))  # a Constant
        else:
            src.append((3, None))
    return src


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
