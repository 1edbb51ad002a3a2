"""Repeated blocks in a topological order: what lets a plan write a loop, not lines.

A graph built by a Python loop (an unrolled recurrence, an iterative solver, a long
chain) repeats one block of ops many times. Written out line by line, the generated
function costs CPython about 10 us per line to compile, which is most of the time a
large graph takes to compile; written as a loop over one block, it compiles in a
constant time and runs at nearly the same speed.

A block repeats when each of its nodes, one period later, is the same op with the same
attributes whose inputs relate the same way: the node one period later (a value of this
block or carried from the previous one), the very same node (a value computed before
the loop), or an equal Python-number constant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .nodes import Constant, Node, Operator

__all__ = ["Loop", "Ref", "find_loop", "limit", "uniform"]

#: How an input of a block's op is found in every repetition: ``("local", j)`` the
#: value at position ``j`` of the same block; ``("carry", j)`` the value at position
#: ``j`` of the previous block (for the first block, the node one period before);
#: ``("fixed", slot)`` the same node in every block (or equal constants).
Ref = tuple[Literal["local", "carry", "fixed"], int]

#: Blocks needed before a loop is worth writing.
MIN_REPS: Final = 4
#: How far back the search looks for the previous occurrence of an op, and how many
#: occurrences it tries.
_MAX_PERIOD: Final = 4096
_TRIES: Final = 8

_SHIFT, _SAME, _CONST = 0, 1, 2


@dataclass(frozen=True)
class Loop:
    """``reps`` blocks of ``period`` nodes from slot ``start``; ``refs[j]`` tells where
    the op at block position ``j`` finds its inputs (None for a constant)."""

    start: int
    period: int
    reps: int
    refs: tuple[tuple[Ref, ...] | None, ...]

    @property
    def end(self) -> int:
        """The slot after the last block."""
        return self.start + self.period * self.reps


def _equal_constants(a: Node, b: Node) -> bool:
    if a.__class__ is not Constant or b.__class__ is not Constant:
        return False
    va, vb = a._value, b._value
    return (va.__class__ is int or va.__class__ is float) and va.__class__ is vb.__class__ \
        and bool(va == vb)


def _same_attrs(a: Operator, b: Operator) -> bool:
    if a.attrs is b.attrs or (not a.attrs and not b.attrs):
        return True
    try:
        return bool(a.attrs == b.attrs)
    except (TypeError, ValueError):  # arrays among the attributes: do not compare
        return False


def _relation(order: Sequence[Node], slot: Mapping[Node, int], i: int,
              period: int) -> tuple[int, ...] | None:
    """How node ``i + period`` repeats node ``i``: per input, shifted by the period,
    the same node or an equal constant; None when it does not."""
    a, b = order[i], order[i + period]
    if a.__class__ is not Operator:
        return () if _equal_constants(a, b) else None
    if b.__class__ is not Operator:
        return None
    assert isinstance(a, Operator) and isinstance(b, Operator)
    if a.op is not b.op or len(a.inputs) != len(b.inputs) or not _same_attrs(a, b):
        return None
    rel = []
    for x, y in zip(a.inputs, b.inputs, strict=True):
        if x.__class__ is Constant:
            # A constant is always read from the namespace, never carried.
            if not _equal_constants(x, y):
                return None
            rel.append(_CONST)
        elif x is y:
            rel.append(_SAME)
        elif slot[y] - slot[x] == period:
            rel.append(_SHIFT)
        else:
            return None
    return tuple(rel)


def _run(order: Sequence[Node], slot: Mapping[Node, int], i0: int,
         period: int) -> tuple[int, int, dict[int, tuple[int, ...]]] | None:
    """The longest stretch ``[lo, hi)`` around ``i0`` of nodes repeated one period
    later, each position of the block related the same way every time."""
    n = len(order)
    pattern: dict[int, tuple[int, ...]] = {}

    def repeats(i: int) -> bool:
        rel = _relation(order, slot, i, period)
        return rel is not None and pattern.setdefault(i % period, rel) == rel

    if not repeats(i0):
        return None
    lo = i0
    while lo > 0 and repeats(lo - 1):
        lo -= 1
    hi = i0 + 1
    while hi + period < n and repeats(hi):
        hi += 1
    return lo, hi, pattern


def _block_refs(
    order: Sequence[Node], slot: Mapping[Node, int], start: int, period: int,
    pattern: Mapping[int, tuple[int, ...]],
) -> tuple[int, list[tuple[Ref, ...] | None]] | None:
    """Where each op of the block at ``start`` finds its inputs, and the first slot the
    loop may start at (after every node all blocks share)."""
    refs: list[tuple[Ref, ...] | None] = []
    first = start
    for j in range(period):
        node = order[start + j]
        if isinstance(node, Constant):
            refs.append(None)
            continue
        if not isinstance(node, Operator):
            return None
        rel = pattern[(start + j) % period]
        r: list[Ref] = []
        for x, kind in zip(node.inputs, rel, strict=True):
            sx = slot[x]
            if kind == _CONST:
                r.append(("fixed", sx))
            elif kind == _SAME:
                first = max(first, sx + 1)
                r.append(("fixed", sx))
            elif sx >= start:
                r.append(("local", sx - start))
            elif sx >= start - period and isinstance(order[sx + period], Operator):
                r.append(("carry", sx - start + period))
            else:
                return None  # reaches further back than the previous block
        refs.append(tuple(r))
    return first, refs


def _loop_at(order: Sequence[Node], slot: Mapping[Node, int], lo: int, hi: int,
             period: int, pattern: Mapping[int, tuple[int, ...]]) -> Loop | None:
    """The loop over the blocks of the stretch ``[lo, hi + period)``."""
    start, reps = lo, (hi + period - lo) // period
    if reps < MIN_REPS:
        return None
    for _ in range(2):
        got = _block_refs(order, slot, start, period, pattern)
        if got is None:
            return None
        first, refs = got
        if first <= start:
            return Loop(start, period, reps, tuple(refs)) if reps >= MIN_REPS else None
        # A node every block reads lies in the stretch: start the loop after it.
        skip = -(-(first - start) // period)
        start, reps = start + skip * period, reps - skip
        if reps < MIN_REPS:
            return None
    return None


def find_loop(order: Sequence[Node], slot: Mapping[Node, int], min_nodes: int) -> Loop | None:
    """The longest run of a repeated block covering at least ``min_nodes`` nodes, or
    None. Looks around a few anchor nodes, at the previous occurrences of their op."""
    n = len(order)
    if n < min_nodes:
        return None
    best: Loop | None = None
    for anchor in (n // 2, n // 3, 2 * n // 3, n // 6, 5 * n // 6):
        if best is not None and best.start <= anchor < best.end:
            continue
        node = order[anchor]
        if not isinstance(node, Operator):
            continue
        tries = 0
        found: list[int] = []
        for j in range(anchor - 1, max(anchor - _MAX_PERIOD, 0) - 1, -1):
            other = order[j]
            if not isinstance(other, Operator) or other.op is not node.op:
                continue
            period = anchor - j
            if period * MIN_REPS > n:
                break
            if any(period % f == 0 for f in found):
                continue  # repeats as fewer, larger blocks of a period already found
            got = _run(order, slot, j, period)
            if got is not None:
                lo, hi, pattern = got
                loop = _loop_at(order, slot, lo, hi, period, pattern)
                if loop is not None:
                    found.append(period)
                    if best is None or loop.period * loop.reps > best.period * best.reps:
                        best = loop
            tries += 1
            if tries == _TRIES:
                break
    if best is None or best.period * best.reps < min_nodes:
        return None
    return best


def uniform(loop: Loop, signature: Sequence[object]) -> Loop | None:
    """The longest stretch of ``loop``'s blocks around its middle whose nodes all have
    the same ``signature`` as one period later (what the backward pass does with each:
    a block whose gradients flow differently cannot share the loop)."""
    p, s = loop.period, loop.start

    def same(k: int) -> bool:  # block k like block k + 1
        base = s + k * p
        return all(signature[base + j] == signature[base + p + j] for j in range(p))

    mid = loop.reps // 2
    lo = mid
    while lo > 0 and same(lo - 1):
        lo -= 1
    hi = mid
    while hi + 1 < loop.reps and same(hi):
        hi += 1
    reps = hi - lo + 1
    if reps < MIN_REPS:
        return None
    # References are relative (and fixed nodes precede the first block), so they hold
    # from any later first block: its carried inputs come from the block before it.
    return Loop(s + lo * p, p, reps, loop.refs)


def limit(loop: Loop, order: Sequence[Node], slot: Mapping[Node, int],
          outputs: Sequence[int], wrt: Sequence[int]) -> Loop | None:
    """``loop`` cut short so that nothing after it reads a block but the last, every
    output but in the last block, and every ``wrt`` node after it."""
    s, p = loop.start, loop.period
    reps = loop.reps
    end = loop.end

    def block(i: int) -> int | None:
        return (i - s) // p if s <= i < end else None

    for i in range(end, len(order)):
        node = order[i]
        if isinstance(node, Operator):
            for x in node.inputs:
                # A constant is read from the namespace wherever it sits.
                k = None if isinstance(x, Constant) else block(slot[x])
                if k is not None:
                    reps = min(reps, k + 1)
    for i in outputs:
        k = block(i)
        if k is not None:
            reps = min(reps, k + 1)
    for i in wrt:
        k = block(i)
        if k is not None:
            reps = min(reps, k)
    if reps < MIN_REPS:
        return None
    return loop if reps == loop.reps else Loop(s, p, reps, loop.refs)
