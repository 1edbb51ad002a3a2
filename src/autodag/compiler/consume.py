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
import functools
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


#: The locals generated code names: values, gradients, terms, shape tokens.
_LOCAL: Final = re.compile(r"(?<![\w.])[vgts]\d+\b")


@functools.lru_cache(maxsize=1024)
def _last_read(shape: str, name: str) -> int | None:
    """Which textual occurrence of ``name`` in the expression ``shape`` Python reads
    last; None when one is a store, or when no read is an operand of an arithmetic
    operator (the only place NumPy reuses a buffer). Expressions of one template share
    a shape."""
    try:
        tree = ast.parse(shape, mode="eval")
    except SyntaxError:
        return None
    reads = [n for n in _names(tree) if n.id == name]
    if not reads or any(isinstance(n.ctx, ast.Store) for n in reads):
        return None
    operands = {id(c) for op in ast.walk(tree) if isinstance(op, (ast.BinOp, ast.UnaryOp))
                for c in ast.iter_child_nodes(op)}
    if not any(id(n) in operands for n in reads):
        return None
    spots = sorted(n.col_offset for n in reads)
    return spots.index(reads[-1].col_offset)


def _shape(expr: str, name: str) -> str:
    """``expr`` with its locals renamed in order of appearance, ``name`` as ``_n``."""
    names: dict[str, str] = {name: "_n"}

    def rename(m: re.Match[str]) -> str:
        return names.setdefault(m.group(0), f"_n{len(names)}")

    return _LOCAL.sub(rename, expr)


def consumed(line: str, name: str) -> str | None:
    """The assignment ``line`` with its last read of the local ``name`` letting the
    local go; None when the line is no such assignment (or only copies the name)."""
    m = _ASSIGN.match(line)
    if m is None or m.group(2) == name:
        return None
    pad, target, expr = m.groups()
    hits = list(_word(name).finditer(expr))
    if not hits or expr == name:
        return None
    k = _last_read(_shape(expr, name), "_n")
    if k is None or k >= len(hits):
        return None
    start, end = hits[k].span()
    return f"{pad}{target} = {expr[:start]}({name}, {name} := None)[0]{expr[end:]}"


def last_reader(lines: list[str], name: str) -> bool:
    """Rewrite, in place, the last of ``lines`` reading ``name`` so that it lets the
    local go as it reads it, when that line is an assignment (else leave them); whether
    it did."""
    word = _word(name)
    for j in range(len(lines) - 1, -1, -1):
        if word.search(lines[j]):
            got = consumed(lines[j], name)
            if got is not None:
                lines[j] = got
            return got is not None
    return False
