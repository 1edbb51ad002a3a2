"""Assembling blocks into the general function, cut into chunks when long.

CPython compiles one huge function in superlinear time, so a long plan becomes a chain
of functions of about ``limits.CHUNK`` statements that pass live locals in a dict.
What crosses a cut comes from the blocks' def/use sets: a chunk loads the names it uses
that an earlier chunk binds, and stores the names it binds that a later chunk uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import limits
from .source import Block, Line

__all__ = ["assemble"]

_QUIET_OPEN = ["    if not _fast:", "        _es = _qenter()", "    try:"]
_QUIET_CLOSE = ["    finally:", "        if not _fast:", "            _qexit(_es)"]


def _cut(blocks: Sequence[Block], size: int) -> list[list[Block]]:
    chunks: list[list[Block]] = []
    cur: list[Block] = []
    n = 0
    for b in blocks:
        if cur and n + len(b.lines) > size:
            chunks.append(cur)
            cur, n = [], 0
        cur.append(b)
        n += len(b.lines)
    if cur:
        chunks.append(cur)
    return chunks


def _mark(b: Block, first: int, lines: dict[int, Line]) -> None:
    """Map every line of a block that computes a node to that node."""
    if b.node is not None:
        line = Line(b.node, b.args, backward=b.backward, let_go=b.let_go)
        for n in range(first, first + len(b.lines)):
            lines[n] = line
    for offset, mark in b.marks:
        lines[first + offset] = mark


def _single(fw: Sequence[Block], bw: Sequence[Block],
            lines: dict[int, Line]) -> str:
    src = ["def _plan(xp, L):"]
    for b in fw:
        _mark(b, len(src) + 1, lines)
        src += ["    " + ln for ln in b.lines]
    if bw:
        src += _QUIET_OPEN
        for b in bw:
            _mark(b, len(src) + 1, lines)
            src += ["        " + ln for ln in b.lines]
        src += _QUIET_CLOSE
    src.append("    return _R")
    return "\n".join(src) + "\n"


def assemble(fw: Sequence[Block], bw: Sequence[Block]) -> tuple[str, dict[int, Line]]:
    """The source of ``_plan(xp, L)`` and its line-to-node map."""
    lines: dict[int, Line] = {}
    total = sum(len(b.lines) for b in fw) + sum(len(b.lines) for b in bw)
    if total <= limits.CHUNK:
        return _single(fw, bw, lines), lines
    fw_chunks, bw_chunks = _cut(fw, limits.CHUNK), _cut(bw, limits.CHUNK)
    chunks = fw_chunks + bw_chunks
    defs = [frozenset().union(*(b.defs for b in c)) for c in chunks]
    uses = [frozenset().union(*(b.uses for b in c)) for c in chunks]
    later: list[frozenset[str]] = [frozenset()] * len(chunks)
    acc: frozenset[str] = frozenset()
    for c in range(len(chunks) - 1, -1, -1):
        later[c] = acc
        acc = acc | uses[c]
    bound: frozenset[str] = frozenset()
    parts: list[str] = []
    for c, body in enumerate(chunks):
        parts.append(f"def _c{c}(xp, L, F):")
        parts += [f"    {n} = F[{n!r}]" for n in sorted(uses[c] & bound)]
        for b in body:
            _mark(b, len(parts) + 1, lines)
            parts += ["    " + ln for ln in b.lines]
        stores = (defs[c] & later[c]) | ({"_R", "_fast"} & defs[c])
        parts += [f"    F[{n!r}] = {n}" for n in sorted(stores)]
        bound = bound | defs[c]
    parts += ["def _plan(xp, L):", "    F = {}"]
    parts += [f"    _c{c}(xp, L, F)" for c in range(len(fw_chunks))]
    if bw_chunks:
        parts += ["    _fast = F['_fast']", *_QUIET_OPEN]
        parts += [f"        _c{c}(xp, L, F)" for c in range(len(fw_chunks), len(chunks))]
        parts += _QUIET_CLOSE
    parts.append("    return F['_R']")
    return "\n".join(parts) + "\n", lines
