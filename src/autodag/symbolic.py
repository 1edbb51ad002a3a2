"""Symbolic gradients: derivatives that are nodes of the same graph.

The backward rules an op already has build graph nodes when handed ``GraphNamespace``
as ``xp``, so gradients can be evaluated any number of times, pictured, and
differentiated again (Hessian-vector products, Hessians, Jacobians, forward mode).
The reverse pass mirrors the numeric one: reverse topological order, gradients summed
with ``+``, each summed down to its input's shape with the ``unbroadcast`` op.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import grad_dtype
from .errors import (
    ArgumentError,
    AutodagError,
    GradientError,
    NumpyFunctionError,
    SymbolicGradientError,
)
from .graph import Graph
from .graph_namespace import GraphNamespace
from .nodeargs import common_graph, node_list
from .nodes import Constant, Node, Operator, make_operator
from .opdef import OpDef
from .registry import RegisteredOp, get_registry
from .runtime import check_joint
from .shapes import StaticShapes
from .traversal import depends_on as _depends_on
from .traversal import topological_sort

__all__ = [
    "GraphNamespace",
    "SymbolicGradientError",
    "gradients",
    "hessian",
    "hessian_vector_product",
    "jacobian",
]


class _Builder:
    """Shared state of one symbolic construction: graph, namespace, shapes."""

    def __init__(self, graph: Graph, shapes: StaticShapes | None = None) -> None:
        self.graph = graph
        self.shapes = shapes if shapes is not None else StaticShapes()
        self.xp = GraphNamespace(get_registry(), self.shapes)

    def const(self, value: Any) -> Node:
        """A Constant of this graph (nodes pass through)."""
        if isinstance(value, Node):
            return value
        return Constant(value, graph=self.graph)

    def zeros_like(self, node: Node) -> Node:
        """Zeros of ``node``'s shape: a Constant when the shape is known statically."""
        info = self.shapes.info(node)
        if info is None:
            return self.xp.broadcast_like(0.0, node)  # type: ignore[no-any-return]
        shape, dtype, _, ns = info
        if shape == ():
            return self.const(0.0)
        if ns is not None:  # another backend's values (or fed ones): made at run time
            return self.xp.broadcast_like(0.0, node)  # type: ignore[no-any-return]
        return self.const(np.zeros(shape, dtype=grad_dtype(np.zeros((), dtype=dtype))))

    def reduce(self, node: Operator, k: int, g: Node, like: Node) -> Node:
        """``g`` summed (or broadcast) to the shape of ``like``, input ``k`` of ``node``."""
        gs, ls = self.shapes.shape(g), self.shapes.shape(like)
        if gs is not None and gs == ls:
            return g
        r: Node = self.xp.unbroadcast(g, like)
        if gs is not None and ls is not None and self.shapes.shape(r) is None:
            raise GradientError(
                f"backward of op {node.op.name!r} from plugin {node.plugin.describe()} "
                f"returned a gradient of shape {gs} for input {k} ({like.name!r}) of shape "
                f"{ls}, at {node.describe()}"
            )
        return r

    def apply_rule(self, node: Operator, g: Node, want: Sequence[bool]) -> list[Node | None]:
        """The op's backward rule on nodes: one gradient node per wanted input."""
        op = node.op
        if not op.symbolic:
            if isinstance(op, _NumericVjpDef) and op.source is not None:
                raise _twice_error(op.source, node)
            return self.numeric_rule(node, g, want)
        ins = node.inputs
        xp = self.xp
        prev, xp.current = xp.current, node
        try:
            vjps = op.vjps
            if vjps is not None:
                results: Sequence[Any] = [
                    call_rule(rule, node, f"backward rule of input {k}", xp, g, node, *ins,
                              **node.attrs) if rule is not None and want[k]
                    else None
                    for k, rule in enumerate(vjps)
                ]
            elif op.joint_backward is not None:
                results = check_joint(call_rule(op.joint_backward, node, "backward rule", xp,
                                                g, node, *ins, **node.attrs), node)
            else:
                return [None] * len(ins)
            out: list[Node | None] = []
            for k, gk in enumerate(results):
                if gk is None or not want[k]:
                    out.append(None)
                else:
                    out.append(self.reduce(node, k, self.const(gk), ins[k]))
            return out
        finally:
            xp.current = prev

    def numeric_rule(self, node: Operator, g: Node, want: Sequence[bool]) -> list[Node | None]:
        """First-order gradient nodes of an op whose backward rule is NumPy-only.

        Each wanted input gets an opaque node that runs the rule on numbers when the
        graph is evaluated; differentiating that node again is a SymbolicGradientError.
        """
        op, ins = node.op, node.inputs
        if op.vjps is None and op.joint_backward is None:
            return [None] * len(ins)
        out: list[Node | None] = []
        for k in range(len(ins)):
            if not want[k] or (op.vjps is not None and op.vjps[k] is None):
                out.append(None)
                continue
            vjp = RegisteredOp(_numeric_vjp_op(node, k), node.plugin)
            gk = make_operator(vjp, (g, node, *ins), {})
            out.append(self.reduce(node, k, gk, ins[k]))
        return out

    def backward(
        self, targets: Sequence[Node], seeds: Sequence[Node], wrt: Iterable[Node]
    ) -> dict[Node, Node]:
        """Gradient nodes of sum_i <targets[i], seeds[i]> for the nodes leading to ``wrt``."""
        order = topological_sort(list(targets))
        needs = _depends_on(order, wrt)
        grads: dict[Node, Node] = {}
        for t, s in zip(targets, seeds, strict=True):
            grads[t] = s if t not in grads else grads[t] + s
        for node in reversed(order):
            if not isinstance(node, Operator):
                continue
            g = grads.get(node)
            if g is None:
                continue
            want = [i in needs for i in node.inputs]
            if not any(want):
                continue
            for inp, gk in zip(node.inputs, self.apply_rule(node, g, want), strict=True):
                if gk is not None:
                    prev = grads.get(inp)
                    grads[inp] = gk if prev is None else prev + gk
        return grads


def call_rule(rule: Any, node: Operator, which: str, /, *args: Any, **attrs: Any) -> Any:
    """``rule(*args, **attrs)`` on nodes; a failure that is not autodag's own names the op.

    A rule handed nodes fails in ways the numbers never showed it (a NumPy call on a
    node is a bare ``TypeError``), so the error says whose rule it was and where the node
    was made.
    """
    try:
        return rule(*args, **attrs)
    except NumpyFunctionError as exc:
        raise _rule_error(which, node, exc) from exc  # a NumPy call no op stands for
    except AutodagError:
        raise
    except Exception as exc:
        raise _rule_error(which, node, exc) from exc


def _rule_error(which: str, node: Operator, exc: Exception) -> SymbolicGradientError:
    return SymbolicGradientError(
        f"the {which} of {node.describe()} raised {type(exc).__name__}: {exc}; it "
        f"ran to build symbolic derivatives (autodag.gradients, second order, forward "
        f"mode), so its arguments were nodes, not arrays. If the rule calls a NumPy "
        f"function no registered op stands for (np.asarray(a), np.cbrt(a)), use "
        f"xp.<name> (xp.cos(a)) instead, or declare the op symbolic=False (first-order "
        f"autodag.grad only)"
    )


@dataclass(frozen=True, eq=False)
class _NumericVjpDef(OpDef):
    """The opaque first-order gradient op of a NumPy-only rule, for one input."""

    #: The node whose input's gradient this op computes.
    source: Operator | None = None


def _twice_error(source: Operator, at: Node | None = None) -> SymbolicGradientError:
    where = f" (reached at node {at.name!r})" if at is not None else ""
    return SymbolicGradientError(
        f"op {source.op.name!r} from plugin {source.plugin.describe()} has a NumPy-only "
        f"backward rule (symbolic=False): its gradient at {source.describe()} can be "
        f"evaluated, but not differentiated again (second order, Hessians, forward "
        f"mode){where}; give the op a backward rule written with xp to allow it"
    )


def _numeric_vjp_op(node: Operator, k: int) -> OpDef:
    """An op computing the NumPy-only gradient of ``node``'s input ``k`` from (g, out, ins)."""
    op, attrs = node.op, dict(node.attrs)
    vjps, joint = op.vjps, op.joint_backward

    def forward(g: Any, out: Any, *ins: Any) -> Any:
        xp = get_registry().numeric
        if vjps is not None:
            rule = vjps[k]
            assert rule is not None
            return rule(xp, g, out, *ins, **attrs)
        assert joint is not None
        gk = check_joint(joint(xp, g, out, *ins, **attrs), node)[k]
        # A rule may leave an input without gradient; the graph needs a value.
        return np.zeros(np.shape(ins[k])) if gk is None else gk

    def backward(xp: Any, g: Any, out: Any, *args: Any) -> Sequence[Any]:
        raise _twice_error(node)

    return _NumericVjpDef(
        name=f"{op.name}_grad{k}", arity=len(node.inputs) + 2, forward=forward,
        backward=backward, symbolic=False, prefix=f"{op.prefix or op.name}_grad{k}",
        source=node,
    )


def _seeds(
    b: _Builder, ys: Sequence[Node], grad_ys: Any, what: str = "grad_ys for output"
) -> list[Node]:
    if grad_ys is None:
        seeds = []
        for y in ys:
            shape = b.shapes.shape(y)
            if shape is not None and shape != ():
                raise GradientError(
                    f"gradients: output {y.name!r} has shape {shape}, not a scalar; pass "
                    f"grad_ys (the vector of the vector-Jacobian product) for a non-scalar "
                    f"output"
                )
            seeds.append(b.const(_one_like(b, y)))
        return seeds
    gl = [grad_ys] if len(ys) == 1 and not isinstance(grad_ys, (list, tuple)) else list(grad_ys)
    if len(gl) != len(ys):
        raise ArgumentError(f"{len(gl)} values for {len(ys)} nodes ({what})")
    seeds = []
    for y, gy in zip(ys, gl, strict=True):
        s = b.const(gy)
        ys_shape, s_shape = b.shapes.shape(y), b.shapes.shape(s)
        if ys_shape is not None and s_shape is not None and ys_shape != s_shape:
            raise GradientError(
                f"{what} {y.name!r} has shape {s_shape}, but {y.name!r} has shape "
                f"{ys_shape}"
            )
        seeds.append(s)
    return seeds


def _one_like(b: _Builder, y: Node) -> Any:
    """The seed 1 in ``y``'s gradient dtype, so float32 graphs get float32 gradients."""
    info = b.shapes.info(y)
    if info is None or info[2]:
        return 1.0  # a Python float is weakly typed: it adopts the dtype it meets
    if info[3] is not None:
        # Another backend's values, or fed ones of a backend known only at run time: the
        # seed is made from y's value, in y's library and gradient dtype.
        return b.xp.seed_like(y)
    return np.ones((), dtype=grad_dtype(np.zeros((), dtype=info[1])))


def gradients(
    ys: Node | Sequence[Node],
    xs: Node | Sequence[Node],
    grad_ys: Any = None,
) -> list[Node]:
    """Gradient nodes of ``ys`` (scalar, or weighted by ``grad_ys``) for each node of ``xs``.

    The nodes join ``ys``' graph; evaluate them with ``autodag.evaluate`` as often as you
    like, or differentiate them again. With several ``ys``, the gradient is that of
    ``sum_i <ys[i], grad_ys[i]>``. A node of ``xs`` the outputs do not depend on gets a
    zeros node of its shape.
    """
    ys_l = node_list(ys, "ys")
    xs_l = node_list(xs, "xs")
    graph = common_graph(ys_l + xs_l, "gradients")
    with graph:
        b = _Builder(graph)
        return _gradients(b, ys_l, xs_l, _seeds(b, ys_l, grad_ys))


def _gradients(b: _Builder, ys: Sequence[Node], xs: Sequence[Node], seeds: Sequence[Node]
               ) -> list[Node]:
    grads = b.backward(ys, seeds, xs)
    return [grads[x] if x in grads else b.zeros_like(x) for x in xs]


def hessian_vector_product(
    y: Node, xs: Node | Sequence[Node], vs: Any
) -> list[Node]:
    """Nodes of H @ v for scalar ``y``: the gradient of ``<grad y, v>`` (double backward).

    ``vs`` holds one vector per node of ``xs`` (nodes or values, each of its ``x``'s
    shape). Costs about two gradient evaluations when evaluated.
    """
    xs_l = node_list(xs, "xs")
    vl = [vs] if isinstance(xs, Node) else list(vs)
    if len(vl) != len(xs_l):
        raise ArgumentError(f"hessian_vector_product: {len(vl)} vectors for {len(xs_l)} nodes")
    graph = common_graph([y, *xs_l], "hessian_vector_product")
    with graph:
        b = _Builder(graph)
        vs_l = _seeds(b, xs_l, vl, "vector for")  # g_k has the shape of x_k
        g = _gradients(b, [y], xs_l, _seeds(b, [y], None))
        return _gradients(b, g, xs_l, vs_l)


def jacobian(y: Node, x: Node) -> Node:
    """Node of the Jacobian dy/dx, of shape ``y.shape + x.shape`` (one backward per element).

    Both shapes must be known statically. Meant for small ``y``.
    """
    graph = common_graph([y, x], "jacobian")
    with graph:
        b = _Builder(graph)
        return _jacobian(b, y, x)


def _jacobian(b: _Builder, y: Node, x: Node) -> Node:
    ys = b.shapes.require(y, "for jacobian")
    xs = b.shapes.require(x, "for jacobian")
    if ys == ():
        (row,) = _gradients(b, [y], [x], [b.const(1.0)])
        return row
    dtype = grad_dtype(np.zeros((), dtype=b.shapes.dtype(y)))
    rows: list[Node] = []
    for idx in itertools.product(*(range(n) for n in ys)):
        e = np.zeros(ys, dtype=dtype)
        e[idx] = 1
        (row,) = _gradients(b, [y], [x], [b.const(e)])
        # A one-hot block shaped ys + (1,)*x.ndim puts row (shape xs) at position idx.
        onehot = np.reshape(e, ys + (1,) * len(xs))
        rows.append(row * b.const(onehot))
    if not rows:
        return b.const(np.zeros(ys + xs, dtype=dtype))
    total = rows[0]
    for r in rows[1:]:
        total = total + r
    return total


def hessian(y: Node, x: Node) -> Node:
    """Node of the dense Hessian of scalar ``y`` for ``x``, of shape ``x.shape + x.shape``.

    Built as the Jacobian of the gradient: one Hessian-vector product per element of
    ``x``, so meant for small ``x``. Evaluate it with ``autodag.evaluate``.
    """
    graph = common_graph([y, x], "hessian")
    with graph:
        b = _Builder(graph)
        (g,) = _gradients(b, [y], [x], _seeds(b, [y], None))
        return _jacobian(b, g, x)

