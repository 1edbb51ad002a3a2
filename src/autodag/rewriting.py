"""Rewriting a graph before ``compile`` plans it, with the rewrites plugins provide.

``rewrite_graph`` walks the nodes the outputs need in topological order, rebuilds each
operator over its inputs' replacements (in a private graph: the user's graph never
changes) and offers it to the enabled rewrites of its op, until none applies. The
user's leaves, and any graph with a wrt node that is an operator, are never touched;
graphs of more than ``MAX_NODES`` nodes are left as they are (rewriting is meant to cost
a fraction of compiling, and the compiler's loops stay intact). A rewrite that raises,
or returns a node of another shape, is a ``RewriteError`` naming it, its plugin and the
node, and how to turn it off.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from .backend import is_numpy
from .errors import ArgumentError, RewriteError
from .graph import Graph
from .hooktables import REWRITES, Provided
from .nodes import Constant, Node, Operator, Placeholder, Variable
from .registry import get_registry, get_table
from .rewrite import ANY_OP
from .traversal import topological_sort

__all__ = ["ENV", "MAX_NODES", "Context", "enabled_rewrites", "rewrite_graph"]

#: Rewrites to turn off, by name, comma-separated ("all" turns every one off).
ENV: Final = "AUTODAG_DISABLE_REWRITES"
#: Graphs of more nodes are compiled as they are: from this size the compiler writes
#: repeated blocks as loops (``limits.ROLL_MIN_ARRAY_NODES``), which rebuilt nodes would
#: no longer show it, and rewriting would cost more than it saves.
MAX_NODES: Final = 200
_N = TypeVar("_N", bound=Node)
#: Times one node is offered to the rewrites before its replacement is kept as it is.
_ROUNDS: Final = 4


def _names(spec: str | Iterable[str] | None, what: str) -> set[str]:
    if spec is None:
        return set()
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    if not all(isinstance(n, str) for n in names):
        raise ArgumentError(f"{what} must be rewrite names, got {spec!r}")
    return {n for n in names if n}


def _check_known(names: set[str], known: Mapping[str, Provided], what: str) -> None:
    for name in sorted(names - set(known) - {"all"}):
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ArgumentError(f"{what} names no rewrite {name!r}{hint} (known: "
                            f"{', '.join(sorted(known))})")


def enabled_rewrites(disable: str | Iterable[str] | None = None,
                     enable: str | Iterable[str] | None = None) -> dict[str, Provided]:
    """The rewrites a compile runs: the exact ones and those ``enable`` names, minus those
    ``disable`` or ``AUTODAG_DISABLE_REWRITES`` name ("all": none)."""
    table = get_table(REWRITES).items
    off = _names(disable, "disable_rewrites")
    on = _names(enable, "enable_rewrites")
    _check_known(off, table, "disable_rewrites")
    _check_known(on, table, "enable_rewrites")
    off |= _names(os.environ.get(ENV), ENV)  # unknown names here only match nothing
    if "all" in off or "*" in off:
        return {}
    return {name: p for name, p in table.items()
            if name not in off and (p.item.exact or name in on or "all" in on)}


class Context:
    """What a rewrite may ask: ops and constants of nodes, and new nodes to build."""

    def __init__(self, wrt: Sequence[Node] = ()) -> None:
        self._graph = Graph()
        self._registry = get_registry()
        self._floating: dict[Node, bool] = {}
        self._wrt = frozenset(wrt)
        #: Shared by rewrites that need a memory of nodes already seen (CSE).
        self.memo: dict[Any, Node] = {}

    def op_of(self, node: Node) -> str | None:
        """The op name of an operator node, None for a leaf or constant."""
        return node.op.name if isinstance(node, Operator) else None

    def number(self, node: Node) -> float | None:
        """A Constant's value when it is a Python number (these take an array's dtype
        without changing it), else None."""
        if isinstance(node, Constant):
            v = node.value
            if v.__class__ in (int, float):
                return float(v)
        return None

    def constant_inputs(self, node: Operator) -> list[Any] | None:
        """The values of ``node``'s inputs when every one is a Constant holding a NumPy
        array or Python number that no gradient is asked of, else None."""
        values = []
        for i in node.inputs:
            if not isinstance(i, Constant) or i in self._wrt:
                return None
            v = i.value
            if not is_numpy(v):
                return None  # another library's array: never computed here
            values.append(v)
        return values

    def constant(self, value: Any, like: Node | None = None) -> Constant:
        """A new Constant of ``value`` in the rewriting's graph, named after ``like``."""
        return _like(Constant(value, name=like.name if like is not None else None,
                              graph=self._graph), like)

    def shape(self, node: Node) -> tuple[int, ...] | None:
        """The node's shape, None when its shape rule cannot tell."""
        return _shape(node)

    def floating(self, node: Node) -> bool:
        """Whether the node's value is certainly a floating array or Python float."""
        known = self._floating.get(node)
        if known is None:
            known = self._floating[node] = self._is_floating(node)
        return known

    def _is_floating(self, node: Node) -> bool:
        if isinstance(node, Placeholder):
            return bool(node.dtype.kind == "f")
        if isinstance(node, (Variable, Constant)):
            # Read the dtype, never convert: a Dask or GPU array must not be computed.
            v = node.value
            dtype = getattr(v, "dtype", None)
            return v.__class__ is float if dtype is None else getattr(dtype, "kind", "") == "f"
        if isinstance(node, Operator):
            # Differentiable ops of floating inputs give floating values (the others,
            # argmax or comparisons, may not).
            ins = node.inputs
            return bool(node.op.differentiable) and all(
                self.floating(i) or self.number(i) is not None for i in ins) and any(
                self.floating(i) for i in ins)
        return False

    def build(self, op: str, *inputs: Node, like: Node | None = None,
              **attrs: Any) -> Operator:
        """A new node of ``op`` over ``inputs``, in the rewriting's own graph; ``like``:
        the node it replaces, whose name and creation site it keeps for messages."""
        return _like(Operator(self._registry.get(op), tuple(inputs), attrs,
                              name=like.name if like is not None else None,
                              graph=self._graph), like)

    def rebuilt(self, node: Operator, inputs: tuple[Node, ...]) -> Operator:
        """``node`` over other inputs."""
        return _like(Operator(self._registry.get(node.op.name), inputs, node.attrs,
                              name=node.name, graph=self._graph), node)


def _like(new: _N, like: Node | None) -> _N:
    """``new``, created where ``like`` (the node it replaces) was, for messages."""
    if like is not None:
        new.site = like.site
    return new


def _shape(node: Node) -> tuple[int, ...] | None:
    try:
        return node.shape
    except Exception:  # a shape rule that cannot answer: unknown
        return None


def _offer(ctx: Context, node: Operator, rules: Sequence[tuple[str, Provided]],
           fired: dict[str, int]) -> Node:
    """``node`` after the rewrites of its op, each applied while one applies."""
    current: Node = node
    for _ in range(_ROUNDS):
        if not isinstance(current, Operator):
            return current
        node = current
        for name, provided in rules:
            rw = provided.item
            if rw.ops != (ANY_OP,) and node.op.name not in rw.ops:
                continue
            try:
                new = rw.apply(ctx, node)
            except Exception as exc:
                raise RewriteError(
                    f"rewrite {name!r} of plugin {provided.plugin.describe()} failed on "
                    f"{node.describe()}: {type(exc).__name__}: {exc}. Turn it off with "
                    f"{ENV}={name} or compile(..., disable_rewrites=[{name!r}])") from exc
            if new is None or new is node:
                continue
            if not isinstance(new, Node):
                raise RewriteError(f"rewrite {name!r} of plugin {provided.plugin.describe()}"
                                   f" returned {type(new).__name__} for {node.describe()}, "
                                   "not a node")
            before, after = _shape(node), _shape(new)
            if before is not None and after is not None and before != after:
                raise RewriteError(
                    f"rewrite {name!r} of plugin {provided.plugin.describe()} replaced "
                    f"{node.describe()} of shape {before} by a node of shape {after}. "
                    f"Turn it off with {ENV}={name}")
            fired[name] = fired.get(name, 0) + 1
            current = new
            break
        else:
            return current
    return current


def rewrite_graph(outputs: Sequence[Node], wrt: Sequence[Node],
                  rules: Mapping[str, Provided], order: Sequence[Node] | None = None,
                  ) -> tuple[tuple[Node, ...], dict[str, int]]:
    """The outputs after rewriting (the same nodes when nothing fired) and how often each
    rewrite fired; ``order``: the outputs' nodes sorted, when the caller has it."""
    if not rules or any(isinstance(w, Operator) for w in wrt):
        return tuple(outputs), {}
    if order is None:
        order = topological_sort(list(outputs))
    if len(order) > MAX_NODES:
        return tuple(outputs), {}
    ctx = Context(wrt)
    ordered = sorted(rules.items())
    fired: dict[str, int] = {}
    new: dict[Node, Node] = {}
    for node in order:
        if not isinstance(node, Operator):
            new[node] = node
            continue
        ins = tuple(new[i] for i in node.inputs)
        current = node if ins == node.inputs else ctx.rebuilt(node, ins)
        ctx.floating(current)  # its inputs' are known: no deep recursion
        new[node] = _offer(ctx, current, ordered, fired)
        ctx.floating(new[node])
    if not fired:
        return tuple(outputs), {}
    return tuple(new[o] for o in outputs), fired
