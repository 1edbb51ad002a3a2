"""What checking and building an ``autodag grad`` expression share: its error, the
checked expression, the operators it may use and the helpers that read syntax nodes.

A module of its own so that the checker (``expr``), the builder (``expr_build``) and the
value parser (``values``) can all raise the one ``ExpressionError`` without importing
each other.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .errors import AutodagError

__all__ = [
    "BINOPS",
    "Expression",
    "ExpressionError",
    "constant_int",
    "reject",
    "where",
]

#: The binary operators an expression may use, and the op each one builds.
BINOPS: Final[Mapping[type[ast.operator], str]] = {
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


def where(node: ast.AST) -> str:
    """`` at column N`` for a syntax node that has a column, else the empty string."""
    col = getattr(node, "col_offset", None)
    return f" at column {col + 1}" if isinstance(col, int) else ""


def reject(node: ast.AST, what: str | None = None) -> ExpressionError:
    """The error for a construct outside the whitelist, named and located."""
    kind = what or _DESCRIBE.get(type(node), type(node).__name__)
    return ExpressionError(f"{kind}{where(node)} is not allowed in an expression")


def constant_int(node: ast.AST) -> int | None:
    """The value of an integer literal (possibly negated), else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None
