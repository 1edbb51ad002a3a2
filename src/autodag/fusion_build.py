"""Building a program's fused plan for one signature of its leaves (``autodag.fusion``
loads this module on the first build, so compiling a program imports none of it).

A private copy of the graph with the leaves as arrays of the call's shapes and dtypes,
the gradient of its first output as nodes (``autodag.gradients``' builder), the
rewrites over values and gradients together (so the backward pass shares the forward's
subexpressions), and the kernels of ``compiler.fuse``, planned as one values-only plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import quiet_enter, quiet_exit
from .compiler import limits
from .compiler.fuse import Kernel, fused_outputs, kernels, rebuilt
from .compiler.plan import Plan
from .graph import Graph
from .hooktables import KERNEL_FORMS, Provided
from .nodes import Constant, Node, Operator, Variable
from .registry import get_registry, get_table
from .rewriting import rewrite_graph
from .shapes import StaticShapes
from .symbolic import _Builder, _one_like
from .traversal import topological_sort

__all__ = ["Fused", "Trial", "build"]


class Trial:
    """The first calls of a signature, timed fused and unfused in turn, and the choice
    they lead to (None while undecided)."""

    def __init__(self) -> None:
        self.fused: list[float] = []
        self.plain: list[float] = []
        self.choice: bool | None = None

    def record(self, fused: bool, seconds: float) -> bool | None:
        """One timed call; the choice (made once each way has ``FUSE_TRIALS``)."""
        (self.fused if fused else self.plain).append(seconds)
        if min(len(self.fused), len(self.plain)) >= limits.FUSE_TRIALS:
            self.choice = min(self.fused) < min(self.plain)
        return self.choice


@dataclass(frozen=True)
class Fused:
    """The fused plan of one signature and how to feed it."""

    plan: Plan
    #: For each of the plan's leaves, the index of the program's leaf it stands for.
    feed: tuple[int, ...]
    n_values: int
    #: For each wrt node, the index of its gradient among the plan's outputs, or -1.
    grads: tuple[int, ...]
    kernels: tuple[Kernel, ...]
    trial: Trial

    def run(self, leaf_values: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The fused plan's values and raw gradients."""
        values = [leaf_values[j] for j in self.feed]
        # NaN and inf results are the graph's to give, without warnings, as the unfused
        # backward pass gives them.
        q = quiet_enter()
        try:
            outs, _ = self.plan.run(get_registry().numeric, values)
        finally:
            quiet_exit(q)
        n = self.n_values
        return outs[:n], tuple(outs[n + j] if j >= 0 else None for j in self.grads)


def _copy(order: Sequence[Node], leaves: Sequence[Node], values: Sequence[Any],
          graph: Graph) -> dict[Node, Node] | None:
    """The nodes of ``order`` in ``graph``, each leaf a Variable of its call value's
    shape and dtype; None when ``order`` has a leaf that is not among ``leaves``."""
    copy: dict[Node, Node] = {}
    for leaf, v in zip(leaves, values, strict=True):
        dummy = np.zeros(v.shape, v.dtype) if v.__class__ is np.ndarray else v.__class__(1)
        copy[leaf] = Variable(dummy, name=leaf.name, graph=graph)
        copy[leaf].site = leaf.site
    for n in order:
        if n in copy:
            continue
        if isinstance(n, Constant):
            copy[n] = Constant(n.value, name=n.name, graph=graph)
            copy[n].site = n.site
        elif isinstance(n, Operator):
            copy[n] = rebuilt(n, tuple(copy[i] for i in n.inputs), graph)
        else:
            return None
    return copy


def _forms() -> dict[str, Any]:
    return {name: p.item for name, p in get_table(KERNEL_FORMS).items.items()}


def worth(outputs: Sequence[Node], wrt: Sequence[Node]) -> bool:
    """Whether a program's graph may gain from fusing, whatever its shapes: at most
    ``FUSE_MAX_NODES`` nodes, and an op with a kernel form that reads another. Without
    such a chain in the forward pass (an MLP's matmul, tanh, matmul...) the backward
    pass has none worth a kernel either, and building (static shapes run every op on
    dummies) is skipped."""
    order = topological_sort(list(outputs) + list(wrt))
    forms = _forms()
    return len(order) <= limits.FUSE_MAX_NODES and any(
        isinstance(n, Operator) and n.op.name in forms
        and any(isinstance(i, Operator) and i.op.name in forms for i in n.inputs)
        for n in order)


def build(outputs: Sequence[Node], wrt: Sequence[Node], leaves: Sequence[Node],
           values: Sequence[Any], rules: Mapping[str, Provided]) -> Fused | None:
    """The fused plan for leaf values of these shapes and dtypes, or None (a program
    asks ``worth`` first)."""
    order = topological_sort(list(outputs) + list(wrt))
    forms = _forms()
    graph = Graph()
    copy = _copy(order, leaves, values, graph)
    if copy is None:
        return None
    outs = [copy[o] for o in outputs]
    with graph:
        b = _Builder(graph)
        y = outs[0]
        shape = b.shapes.shape(y)
        if shape is None:
            return None
        # A Python 1.0 keeps float64 float64 and lets x * 1 rewrite to x.
        one = 1.0 if b.shapes.dtype(y) == np.float64 else _one_like(b, y)
        seed = b.const(one)
        if shape != ():
            seed = b.xp.broadcast_like(seed, y)
        wrt_copies = [copy[w] for w in wrt]
        got = b.backward([y], [seed], wrt_copies) if wrt_copies else {}
    grads = [got.get(w) for w in wrt_copies]
    present = [g for g in grads if g is not None]
    targets = [*outs, *present]
    planned, _ = rewrite_graph(targets, (), rules)
    order = topological_sort(list(planned))
    found = kernels(order, planned, StaticShapes(), forms)
    largest = {id(k) for k in sorted(found, key=lambda k: -k.ops)[:limits.FUSE_MAX_KERNELS]}
    found = [k for k in found if id(k) in largest]
    if not found:
        return None
    fused, used = fused_outputs(order, planned, found, graph)
    if not used:
        return None
    plan = Plan(topological_sort(list(fused)), fused, None)
    index = {copy[leaf]: j for j, leaf in enumerate(leaves)}
    if any(leaf not in index for leaf in plan.leaves):
        return None
    slots: list[int] = []
    k = 0
    for g in grads:
        slots.append(-1 if g is None else k)
        k += g is not None
    return Fused(plan, tuple(index[leaf] for leaf in plan.leaves), len(outs), tuple(slots),
                  tuple(used), Trial())
