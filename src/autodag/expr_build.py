"""Graph nodes from a checked ``autodag grad`` expression (``expr.parse``'s result).

Nothing of the text is run by Python: every operator, call and subscript of the checked
tree becomes an operator node of a registered op.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from .expr_syntax import BINOPS, Expression, ExpressionError, constant_int, reject, where
from .graph import Graph
from .nodes import Constant, Node, make_operator
from .registry import Registry, get_registry

__all__ = ["build"]

#: What the builder takes apart with a stack instead of recursion.
_CHAIN: Final = (ast.BinOp, ast.UnaryOp, ast.Subscript)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Builder:
    """Turns a checked tree into graph nodes (never into Python objects it runs)."""

    def __init__(self, variables: Mapping[str, Node], registry: Registry, graph: Graph) -> None:
        self.variables = variables
        self.registry = registry
        self.graph = graph

    def operand(self, node: ast.AST) -> Any:
        """A node (or a float or array for a number literal, a list for a list of nodes)."""
        if not isinstance(node, _CHAIN):
            return self._leaf(node)
        # Post-order with a stack, as in the checker: a chain of thousands of operators
        # builds without recursion. Nodes are made in the order recursion would make them.
        done: list[Node] = []
        stack: list[tuple[ast.AST, bool]] = [(node, False)]
        while stack:
            n, ready = stack.pop()
            if not isinstance(n, _CHAIN):
                done.append(self.node(n))
            elif not ready:
                stack.append((n, True))
                if isinstance(n, ast.BinOp):
                    stack.append((n.right, False))
                    stack.append((n.left, False))
                else:
                    stack.append((n.operand if isinstance(n, ast.UnaryOp) else n.value, False))
            elif isinstance(n, ast.BinOp):
                right = done.pop()
                left = done.pop()
                done.append(make_operator(self.registry.get(BINOPS[type(n.op)]),
                                          (left, right), {}))
            elif isinstance(n, ast.UnaryOp):
                if isinstance(n.op, ast.USub):
                    done.append(make_operator(self.registry.get("negate"), (done.pop(),), {}))
            else:
                assert isinstance(n, ast.Subscript)
                index = self._index(n.slice)
                done.append(make_operator(self.registry.get("getitem"), (done.pop(), index), {}))
        return done[0]

    def _leaf(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise ExpressionError(
                    f"{node.value!r}{where(node)} cannot be an op input; inputs are numbers, "
                    "arrays or expressions"
                )
            # Floats, never Python ints: 9 ** 9 ** 9 must overflow, not compute for ever.
            try:
                return float(node.value)
            except OverflowError:  # an integer literal of hundreds of digits, as 1e400
                return math.inf
        if isinstance(node, ast.Name):
            try:
                return self.variables[node.id]
            except KeyError:
                given = ", ".join(sorted(self.variables)) or "none"
                raise ExpressionError(
                    f"no value given for {node.id!r} (values given: {given}); "
                    f"pass {node.id}=VALUE"
                ) from None
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            elts = [self.operand(e) for e in node.elts]
            if any(isinstance(e, Node) for e in elts):
                return elts  # a sequence of inputs, for ops taking one
            return np.array(elts, dtype=np.float64)
        raise reject(node)  # unreachable after parse; kept as a guard

    def node(self, node: ast.AST) -> Node:
        """An operand as a node: literals become Constants of this graph."""
        v = self.operand(node)
        if isinstance(v, Node):
            return v
        if isinstance(v, list):
            raise ExpressionError(
                f"a list of expressions{where(node)} can only be an op's argument"
            )
        return Constant(v, graph=self.graph)

    def attribute(self, node: ast.AST, name: str) -> Any:
        """A static argument: kept as Python data (ints stay ints, for axes and shapes)."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return tuple(self.attribute(e, name) for e in node.elts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self.attribute(node.operand, name)
            if _is_number(v):
                return -v if isinstance(node.op, ast.USub) else v
        raise ExpressionError(
            f"argument{where(node)} is the op attribute {name!r}, which must be a constant "
            "(a number, string, True, False, None or a tuple of them)"
        )

    def _call(self, node: ast.Call) -> Node:
        assert isinstance(node.func, ast.Name)
        reg = self.registry.get(node.func.id)
        op = reg.opdef
        n_inputs = 1 if op.arity is None else op.arity
        most = n_inputs + len(op.attributes)
        if len(node.args) > most:
            extra = f" and {len(op.attributes)} attribute(s)" if op.attributes else ""
            raise ExpressionError(
                f"{op.name}() takes {n_inputs} input(s){extra}, got {len(node.args)} "
                f"arguments{where(node)}"
            )
        if op.arity is None and node.args and not isinstance(node.args[0],
                                                             (ast.List, ast.Tuple)):
            raise ExpressionError(
                f"{op.name}() takes a list of inputs as its first argument, e.g. "
                f"{op.name}([x, y]){where(node)}"
            )
        attr_names = list(op.attributes)
        args: list[Any] = []
        for k, arg in enumerate(node.args):
            if k < n_inputs:
                args.append(self.operand(arg))
            else:
                args.append(self.attribute(arg, attr_names[k - n_inputs]))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            assert kw.arg is not None
            if kw.arg in op.input_names:
                # The op's own check lets a keyword input given positionally too pass.
                if op.input_names.index(kw.arg) < min(len(node.args), n_inputs):
                    raise ExpressionError(
                        f"{op.name}() got input {kw.arg!r} both by position and by "
                        f"keyword{where(kw.value)}"
                    )
                kwargs[kw.arg] = self.operand(kw.value)
            else:
                kwargs[kw.arg] = self.attribute(kw.value, kw.arg)
        try:
            return make_operator(reg, args, kwargs)
        except TypeError as exc:
            raise ExpressionError(f"{exc} (column {node.col_offset + 1})") from None

    def _index(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Tuple):
            return tuple(self._index(e) for e in node.elts)
        if isinstance(node, ast.Slice):
            return slice(
                *(None if b is None else constant_int(b) for b in (node.lower, node.upper,
                                                                   node.step))
            )
        if isinstance(node, ast.Constant):
            return node.value
        return constant_int(node)


def build(
    expr: Expression,
    variables: Mapping[str, Node],
    *,
    graph: Graph | None = None,
    registry: Registry | None = None,
) -> Node:
    """The graph node computing ``expr`` from ``variables`` (nodes by name)."""
    reg = registry or get_registry()
    g = graph
    if g is None:
        g = next(iter(variables.values())).graph if variables else Graph()
    with g:
        builder = _Builder(variables, reg, g)
        out = builder.node(expr.tree.body)
    return out
