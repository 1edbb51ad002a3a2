"""Arithmetic expressions from text, for the command line: parsed, checked, never run.

``parse`` reads an expression with :mod:`ast` and accepts only a whitelist: numbers,
names, ``+ - * / ** @``, unary ``-``/``+``, calls of registered ops by name (with
positional and keyword arguments that are constants or expressions) and, when an op
named ``getitem`` is registered, subscripts with constant indices and slices. Anything
else (attribute access, lambdas, comprehensions, comparisons, strings as operands...) is
an :class:`ExpressionError` naming the construct and its column. Nothing of the text is
ever evaluated by Python: ``build`` (from ``expr_build``) turns the checked tree into
graph nodes; ``parse_value`` (from ``values``) reads NAME=VALUE values.

Limits: at most ``MAX_LENGTH`` characters, and brackets (parentheses, calls, subscripts,
lists) nested at most ``MAX_DEPTH`` deep. Chains of operators are not nesting: a flat
sum of thousands of terms is walked with a stack, not by recursion.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from typing import Final

from .expr_build import build
from .expr_syntax import BINOPS, Expression, ExpressionError, constant_int, reject, where
from .registry import Registry, get_registry
from .values import MAX_VALUE_DIMS, parse_value

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_VALUE_DIMS",
    "Expression",
    "ExpressionError",
    "build",
    "parse",
    "parse_value",
]

#: The longest expression text accepted, in characters.
MAX_LENGTH: Final = 10_000
#: How deep brackets (parentheses, calls, subscripts, lists) may nest; Python's own
#: parser stops at 200.
MAX_DEPTH: Final = 100
_OPEN: Final = frozenset("([{")
_CLOSE: Final = frozenset(")]}")


class _Checker:
    """Walks a syntax tree, accepting only the whitelist; collects names and op names."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.names: dict[str, None] = {}
        self.ops: dict[str, None] = {}

    def operand(self, node: ast.AST) -> None:
        """A value position: a number, a name, an operation, a call or a subscript."""
        # Chains of operators and subscripts (x + y + ..., x[0][1]) are walked with a
        # stack: a flat sum of thousands of terms is long, not deep. Only brackets
        # recurse, and parse() has bounded how deep they nest.
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.BinOp):
                if type(n.op) not in BINOPS:
                    raise reject(n, f"operator {type(n.op).__name__}")
                stack.append(n.right)
                stack.append(n.left)  # popped first: names in order of appearance
            elif isinstance(n, ast.UnaryOp):
                if not isinstance(n.op, (ast.USub, ast.UAdd)):
                    raise reject(n, f"operator {type(n.op).__name__}")
                stack.append(n.operand)
            elif isinstance(n, ast.Subscript):
                self._subscript(n)
                stack.append(n.value)
            else:
                self._leaf(n)

    def _leaf(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise reject(node, f"{type(node.value).__name__} literal")
        elif isinstance(node, ast.Name):
            self._name(node)
            self.names.setdefault(node.id, None)
        elif isinstance(node, ast.Call):
            self._call(node)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                self.operand(elt)
        else:
            raise reject(node)

    def _name(self, node: ast.Name) -> None:
        if node.id.startswith("__"):
            raise reject(node, f"name {node.id!r}")
        if node.id in self.registry.ops:
            raise ExpressionError(
                f"{node.id!r}{where(node)} is an op: call it, e.g. {node.id}(...), "
                "or give the variable another name"
            )

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            raise reject(func, "calling anything but an op by its name")
        if func.id.startswith("__") or func.id not in self.registry.ops:
            # OpNotFoundError's message names close matches and installed providers.
            msg = self.registry._missing_message(func.id)
            raise ExpressionError(f"unknown function {func.id!r}{where(func)}: {msg}")
        self.ops.setdefault(func.id, None)
        for arg in node.args:
            self.argument(arg)
        for kw in node.keywords:
            if kw.arg is None:
                raise reject(kw.value, "'**' argument")
            self.argument(kw.value)

    def argument(self, node: ast.AST) -> None:
        """A call argument: an operand, or a constant attribute (None, bool, str, tuple)."""
        if isinstance(node, ast.Constant) and (
            node.value is None or isinstance(node.value, (bool, str))
        ):
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                self.argument(elt)
            return
        self.operand(node)

    def _subscript(self, node: ast.Subscript) -> None:
        """The index of a subscript (its value is the caller's to check)."""
        if "getitem" not in self.registry.ops:
            raise reject(node, "subscript (no plugin provides the 'getitem' op)")
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for part in parts:
            if isinstance(part, ast.Slice):
                for bound in (part.lower, part.upper, part.step):
                    if bound is not None and constant_int(bound) is None:
                        raise reject(bound, "slice bound that is not an integer")
            elif not (
                constant_int(part) is not None
                or (isinstance(part, ast.Constant) and part.value in (None, Ellipsis))
            ):
                raise reject(part, "index that is not an integer, slice, None or ...")


def _too_deep(text: str) -> int | None:
    """The column of the first bracket nested deeper than MAX_DEPTH, else None."""
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type != tokenize.OP:
                continue
            if tok.string in _OPEN:
                depth += 1
                if depth > MAX_DEPTH:
                    return tok.start[1] + 1
            elif tok.string in _CLOSE:
                depth -= 1
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse reports the syntax error, with its column
    return None


def _syntax_tree(text: str) -> ast.Expression:
    # Python 3.10 and 3.11 build the tree's objects under a depth limit of three times
    # the recursion limit, and a flat sum of n terms is n levels deep there. The length
    # limit bounds that depth (a level takes at least one character), so the raised
    # limit stays small enough for the C stack.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, MAX_LENGTH))
    try:
        return ast.parse(text, mode="eval")
    finally:
        sys.setrecursionlimit(old)


def parse(text: str, registry: Registry | None = None) -> Expression:
    """Parse and check ``text``; ExpressionError says what is wrong and where."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long, longer than the limit of "
            f"{MAX_LENGTH}"
        )
    if not text.strip():
        raise ExpressionError("expression is empty")
    col = _too_deep(text.strip())
    if col is not None:
        raise ExpressionError(
            f"expression is nested more than {MAX_DEPTH} levels deep at column {col} "
            "(parentheses, calls, subscripts and lists count; chains like x + y + z do not)"
        )
    try:
        tree = _syntax_tree(text.strip())
    except SyntaxError as exc:
        at = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"syntax error{at}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "expression is too complex for Python's parser (a chain of thousands of unary "
            "minus signs or ** operators?): split it into smaller expressions"
        ) from None
    except ValueError as exc:
        raise ExpressionError(f"expression cannot be parsed: {exc}") from None
    checker = _Checker(registry or get_registry())
    try:
        checker.operand(tree.body)
    except RecursionError:
        raise ExpressionError("expression is nested too deeply") from None
    return Expression(text, tree, tuple(checker.names), tuple(checker.ops))
