"""Handing a dying array to the op that reads it last, so NumPy computes in its memory.

NumPy reuses an operand's buffer for an elementwise result (its "temporary elision")
when the interpreter holds the only reference to it: an array the program made, of the
result's dtype and shape, owning its memory, large enough to pay. A generated line
reading a local for the last time writes ``(v5, v5 := None)[0]`` instead of ``v5``: the
local lets go as the value is read, and NumPy decides at run time, with all its own
checks, whether the buffer is free. An array still referenced anywhere else (a leaf the
caller holds, a gradient another local aliases, a view's base) keeps a second
reference and is never written. A pure function of the line's text.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Final

__all__ = ["consumed", "last_reader"]

_ASSIGN: Final = re.compile(r"^(\s*)(\w+) = (.+)$")


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){re.escape(name)}\b")


def _names(node: ast.AST) -> Iterator[ast.Name]:
    """The names an expression reads, in the order Python evaluates them (fields in
    order: a conditional's test before its branches, a call's function before its
    arguments); a branch not taken only skips its names."""
    if isinstance(node, ast.Name):
        yield node
    for child in ast.iter_child_nodes(node):
        yield from _names(child)


def consumed(line: str, name: str) -> str | None:
    """The assignment ``line`` with its last read of the local ``name`` letting the
    local go; None when the line is no such assignment (or only copies the name)."""
    m = _ASSIGN.match(line)
    if m is None or m.group(2) == name:
        return None
    pad, target, expr = m.groups()
    if expr == name or _word(name).search(expr) is None:
        return None
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return None
    reads = [n for n in _names(tree) if n.id == name]
    if not reads or any(isinstance(n.ctx, ast.Store) for n in reads):
        return None
    last = reads[-1]
    # A one-line expression: the column offsets index ``expr`` itself.
    start, end = last.col_offset, last.end_col_offset
    assert end is not None
    return f"{pad}{target} = {expr[:start]}({name}, {name} := None)[0]{expr[end:]}"


def last_reader(lines: list[str], name: str, first: int = 0) -> None:
    """Rewrite, in place, the last of ``lines[first:]`` reading ``name`` so that it lets
    the local go as it reads it, when that line is an assignment (else leave them)."""
    word = _word(name)
    for j in range(len(lines) - 1, first - 1, -1):
        if word.search(lines[j]):
            got = consumed(lines[j], name)
            if got is not None:
                lines[j] = got
            return
