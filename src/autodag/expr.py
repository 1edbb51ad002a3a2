"""Arithmetic expressions from text, for the command line: parsed, checked, never run.

``parse`` reads an expression with :mod:`ast` and accepts only a whitelist: numbers,
names, ``+ - * / ** @``, unary ``-``/``+``, calls of registered ops by name (with
positional and keyword arguments that are constants or expressions) and, when an op
named ``getitem`` is registered, subscripts with constant indices and slices. Anything
else (attribute access, lambdas, comprehensions, comparisons, strings as operands...) is
an :class:`ExpressionError` naming the construct and its column. Nothing of the text is
ever evaluated by Python: ``build`` turns the checked tree into graph nodes.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .errors import AutodagError
from .graph import Graph
from .nodes import Constant, Node, make_operator
from .registry import Registry, get_registry

__all__ = ["Expression", "ExpressionError", "build", "parse", "parse_value"]

MAX_LENGTH: Final = 10_000
_BINOPS: Final[Mapping[type[ast.operator], str]] = {
    ast.Add: "add",
    ast.Sub: "subtract",
    ast.Mult: "multiply",
    ast.Div: "divide",
    ast.Pow: "power",
    ast.MatMult: "matmul",
}
_DESCRIBE: Final[Mapping[type[ast.AST], str]] = {
    ast.Attribute: "attribute access",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Compare: "comparison",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment expression",
    ast.Starred: "starred argument",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.JoinedStr: "f-string",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
    ast.Subscript: "subscript",
    ast.Slice: "slice",
}
_MAX_DEPTH: Final = 200


class ExpressionError(AutodagError, ValueError):
    """The expression text is malformed or uses something outside the whitelist."""


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, syntax tree, variable names and op names."""

    text: str
    tree: ast.Expression
    #: Free names, in order of first appearance.
    names: tuple[str, ...]
    #: Names of the ops it calls, in order of first appearance.
    ops: tuple[str, ...]


def _where(node: ast.AST) -> str:
    col = getattr(node, "col_offset", None)
    return f" at column {col + 1}" if isinstance(col, int) else ""


def _reject(node: ast.AST, what: str | None = None) -> ExpressionError:
    kind = what or _DESCRIBE.get(type(node), type(node).__name__)
    return ExpressionError(f"{kind}{_where(node)} is not allowed in an expression")


class _Checker:
    """Walks a syntax tree, accepting only the whitelist; collects names and op names."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.names: dict[str, None] = {}
        self.ops: dict[str, None] = {}

    def operand(self, node: ast.AST, depth: int) -> None:
        """A value position: a number, a name, an operation, a call or a subscript."""
        if depth > _MAX_DEPTH:
            raise ExpressionError(f"expression is nested more than {_MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise _reject(node, f"{type(node.value).__name__} literal")
        elif isinstance(node, ast.Name):
            self._name(node)
            self.names.setdefault(node.id, None)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise _reject(node, f"operator {type(node.op).__name__}")
            self.operand(node.left, depth + 1)
            self.operand(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise _reject(node, f"operator {type(node.op).__name__}")
            self.operand(node.operand, depth + 1)
        elif isinstance(node, ast.Call):
            self._call(node, depth)
        elif isinstance(node, ast.Subscript):
            self._subscript(node, depth)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                self.operand(elt, depth + 1)
        else:
            raise _reject(node)

    def _name(self, node: ast.Name) -> None:
        if node.id.startswith("__"):
            raise _reject(node, f"name {node.id!r}")
        if node.id in self.registry.ops:
            raise ExpressionError(
                f"{node.id!r}{_where(node)} is an op: call it, e.g. {node.id}(...), "
                "or give the variable another name"
            )

    def _call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            raise _reject(func, "calling anything but an op by its name")
        if func.id.startswith("__") or func.id not in self.registry.ops:
            # OpNotFoundError's message names close matches and installed providers.
            msg = self.registry._missing_message(func.id)
            raise ExpressionError(f"unknown function {func.id!r}{_where(func)}: {msg}")
        self.ops.setdefault(func.id, None)
        for arg in node.args:
            self.argument(arg, depth + 1)
        for kw in node.keywords:
            if kw.arg is None:
                raise _reject(kw.value, "'**' argument")
            self.argument(kw.value, depth + 1)

    def argument(self, node: ast.AST, depth: int) -> None:
        """A call argument: an operand, or a constant attribute (None, bool, str, tuple)."""
        if isinstance(node, ast.Constant) and (
            node.value is None or isinstance(node.value, (bool, str))
        ):
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                self.argument(elt, depth + 1)
            return
        self.operand(node, depth)

    def _subscript(self, node: ast.Subscript, depth: int) -> None:
        if "getitem" not in self.registry.ops:
            raise _reject(node, "subscript (no plugin provides the 'getitem' op)")
        self.operand(node.value, depth + 1)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for part in parts:
            if isinstance(part, ast.Slice):
                for bound in (part.lower, part.upper, part.step):
                    if bound is not None and _constant_int(bound) is None:
                        raise _reject(bound, "slice bound that is not an integer")
            elif not (
                _constant_int(part) is not None
                or (isinstance(part, ast.Constant) and part.value in (None, Ellipsis))
            ):
                raise _reject(part, "index that is not an integer, slice, None or ...")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _constant_int(node: ast.AST) -> int | None:
    """The value of an integer literal (possibly negated), else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None


def parse(text: str, registry: Registry | None = None) -> Expression:
    """Parse and check ``text``; ExpressionError says what is wrong and where."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"syntax error{col}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"expression cannot be parsed: {type(exc).__name__}") from None
    checker = _Checker(registry or get_registry())
    try:
        checker.operand(tree.body, 0)
    except RecursionError:
        raise ExpressionError("expression is nested too deeply") from None
    return Expression(text, tree, tuple(checker.names), tuple(checker.ops))


def parse_value(text: str, name: str = "value") -> np.float64 | np.ndarray[Any, Any]:
    """A number or a (nested) JSON array of numbers, as float64 (NumPy's rules for 1/0)."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise ExpressionError(
            f"value of {name!r} is not a number or JSON array: {text!r:.60}"
        ) from None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        number: np.float64 = np.float64(raw)
        return number
    if not isinstance(raw, list):
        raise ExpressionError(
            f"value of {name!r} must be a number or a JSON array of numbers, got {text!r:.60}"
        )
    try:
        arr = np.array(raw, dtype=np.float64)
    except (ValueError, TypeError):
        raise ExpressionError(
            f"value of {name!r} is not a rectangular array of numbers: {text!r:.60}"
        ) from None
    return arr


class _Builder:
    """Turns a checked tree into graph nodes (never into Python objects it runs)."""

    def __init__(self, variables: Mapping[str, Node], registry: Registry, graph: Graph) -> None:
        self.variables = variables
        self.registry = registry
        self.graph = graph

    def operand(self, node: ast.AST) -> Any:
        """A node (or a float for a number literal)."""
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise ExpressionError(
                    f"{node.value!r}{_where(node)} cannot be an op input; inputs are numbers, "
                    "arrays or expressions"
                )
            # Floats, never Python ints: 9 ** 9 ** 9 must overflow, not compute for ever.
            return float(node.value)
        if isinstance(node, ast.Name):
            try:
                return self.variables[node.id]
            except KeyError:
                given = ", ".join(sorted(self.variables)) or "none"
                raise ExpressionError(
                    f"no value given for {node.id!r} (values given: {given}); "
                    f"pass {node.id}=VALUE"
                ) from None
        if isinstance(node, ast.BinOp):
            left, right = self.node(node.left), self.node(node.right)
            return make_operator(self.registry.get(_BINOPS[type(node.op)]), (left, right), {})
        if isinstance(node, ast.UnaryOp):
            inner = self.node(node.operand)
            if isinstance(node.op, ast.UAdd):
                return inner
            return make_operator(self.registry.get("negate"), (inner,), {})
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Subscript):
            index = self._index(node.slice)
            return make_operator(self.registry.get("getitem"), (self.node(node.value), index), {})
        if isinstance(node, (ast.List, ast.Tuple)):
            elts = [self.operand(e) for e in node.elts]
            if any(isinstance(e, Node) for e in elts):
                return elts  # a sequence of inputs, for ops taking one
            return np.array(elts, dtype=np.float64)
        raise _reject(node)  # unreachable after parse; kept as a guard

    def node(self, node: ast.AST) -> Node:
        """An operand as a node: literals become Constants of this graph."""
        v = self.operand(node)
        if isinstance(v, Node):
            return v
        if isinstance(v, list):
            raise ExpressionError(
                f"a list of expressions{_where(node)} can only be an op's argument"
            )
        return Constant(v, graph=self.graph)

    def attribute(self, node: ast.AST) -> Any:
        """A static argument: kept as Python data (ints stay ints, for axes and shapes)."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return tuple(self.attribute(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self.attribute(node.operand)
            if _is_number(v):
                return -v if isinstance(node.op, ast.USub) else v
        raise ExpressionError(
            f"argument{_where(node)} of an op attribute must be a constant"
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
                f"arguments{_where(node)}"
            )
        args: list[Any] = []
        for k, arg in enumerate(node.args):
            if k < n_inputs:
                args.append(self.operand(arg))
            else:
                args.append(self.attribute(arg))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            assert kw.arg is not None
            if kw.arg in op.input_names:
                kwargs[kw.arg] = self.operand(kw.value)
            else:
                kwargs[kw.arg] = self.attribute(kw.value)
        try:
            return make_operator(reg, args, kwargs)
        except TypeError as exc:
            raise ExpressionError(f"{exc} (column {node.col_offset + 1})") from None

    def _index(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Tuple):
            return tuple(self._index(e) for e in node.elts)
        if isinstance(node, ast.Slice):
            return slice(
                *(None if b is None else _constant_int(b) for b in (node.lower, node.upper,
                                                                    node.step))
            )
        if isinstance(node, ast.Constant):
            return node.value
        return _constant_int(node)


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

