"""How much memory a graph will take, estimated from shapes before it runs.

The ``autodag grad`` command refuses work larger than a limit before allocating any of
it. Nodes are estimated in topological order: a leaf's value is known; an operator's
output is first bounded cheaply from its inputs' shapes (their broadcast when they
broadcast, else the sum of their sizes; NumPy's rule for ``matmul``), and only when that
bound fits is the op's forward rule run on zero-stride dummies
(``np.broadcast_to`` of a single element, which allocate nothing for their inputs) to
learn the exact shape and dtype; the output such a run makes (at most the bound) is
dropped at once. The backward pass holds one gradient per node of that node's shape, and
one step of it may hold temporaries as large as the largest gradient, so the estimate is
every node's value and gradient plus the largest gradient once more. Ops whose output can
outgrow both bounds through an attribute (a plugin's ``tile(x, reps)``) are only caught
once the dummy run has made that output.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .errors import AutodagError
from .nodes import Constant, Node, Operator, Placeholder, Variable

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BudgetError",
    "Estimate",
    "estimate",
    "format_size",
    "parse_size",
    "suggest_size",
]

#: The default limit of an estimate: 1 GiB.
DEFAULT_MAX_BYTES: Final = 1 << 30
_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE: Final = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGTP]?)(?:I?B)?\s*", re.I | re.ASCII)
#: (shape, dtype, whether the value is a Python scalar), as forward rules care.
_Info = tuple[tuple[int, ...], np.dtype[Any], bool]


class BudgetError(AutodagError, ValueError):
    """The estimated memory of a graph exceeds the limit; nothing was allocated."""

    def __init__(self, message: str, *, needed: int, limit: int) -> None:
        super().__init__(message)
        #: The estimate up to and including the node that crossed the limit, in bytes.
        self.needed = needed
        self.limit = limit


@dataclass(frozen=True)
class Estimate:
    """What a graph is estimated to take: bytes in all, and its largest node."""

    total_bytes: int
    largest_bytes: int
    largest_node: str | None


def parse_size(text: str) -> int:
    """Bytes from ``2G``, ``500M``, ``1.5GiB``, ``64K`` or ``1000`` (powers of 1024)."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"expected a size such as 2G, 500M or 1000000 (bytes), got {text!r}")
    n = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if not math.isfinite(n) or n < 1:
        raise ValueError(f"expected a size of at least 1 byte, got {text!r}")
    return int(n)


def format_size(n: int | float) -> str:
    """``1.5 GiB``, ``12 KiB``, ``512 bytes``: a size for messages."""
    for unit in ("P", "T", "G", "M", "K"):
        scale = _UNITS[unit]
        if n >= scale:
            return f"{n / scale:.3g} {unit}iB"
    return f"{int(n)} bytes"


def suggest_size(n: int) -> str:
    """A round size (``8G``, ``300M``) of at least ``n`` bytes, for an option's value."""
    for unit in ("P", "T", "G", "M", "K"):
        scale = _UNITS[unit]
        if n >= scale:
            return f"{math.ceil(n / scale)}{unit}"
    return str(max(n, 1))


def _shape_text(shapes: Sequence[tuple[int, ...]]) -> str:
    """``(3,) and (3, 1)``; runs of one shape as ``(2,) x20``."""
    runs: list[list[Any]] = []
    for s in shapes:
        if runs and runs[-1][0] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    return " and ".join(f"{s} x{n}" if n > 1 else str(s) for s, n in runs) or "no inputs"


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape NumPy's matmul gives, or None when it would refuse these shapes."""
    if not a or not b:
        return None
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        return None
    try:
        out = list(np.broadcast_shapes(a2[:-2], b2[:-2]))
    except ValueError:
        return None
    # A 1-D operand's added axis is dropped again.
    if len(a) > 1:
        out.append(a2[-2])
    if len(b) > 1:
        out.append(b2[-1])
    return tuple(out)


def _bound(op: Operator, shapes: list[tuple[int, ...]]) -> tuple[int, tuple[int, ...] | None]:
    """Elements an op's output may have, before running it, and its likely shape."""
    sizes = [math.prod(s) for s in shapes]
    broadcast: tuple[int, ...] | None = shapes[0] if shapes else ()
    if any(s != broadcast for s in shapes):
        try:
            broadcast = tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            broadcast = None
    guess: tuple[int, ...] | None
    if broadcast is not None and op.op.arity is not None:
        bound, guess = math.prod(broadcast), broadcast
    else:
        # Shapes that do not broadcast, or a sequence of inputs (concatenate, stack: one
        # input may be repeated many times): the output may reach the sum of their sizes.
        bound, guess = sum(sizes), None
    if op.op.name == "matmul" and len(shapes) == 2:
        mm = _matmul_shape(shapes[0], shapes[1])
        if mm is not None:
            bound, guess = max(bound, math.prod(mm)), mm
    return bound, guess


def _dummy(info: _Info) -> Any:
    shape, dtype, scalar = info
    one = dtype.type(1)
    if scalar:
        return one.item()
    if not shape:
        return one
    # Zero strides: an array of any shape over one element, so no input is allocated.
    return np.broadcast_to(np.array(one, dtype=dtype), shape)


def _info_of(value: Any) -> _Info:
    return tuple(np.shape(value)), np.result_type(value), type(value) in (int, float, bool)


def _nbytes(info: _Info) -> tuple[int, int]:
    """Bytes of a value of this shape and dtype, and of its (floating) gradient."""
    size = math.prod(info[0])
    return size * info[1].itemsize, size * max(info[1].itemsize, 8)


def _forward_on_dummies(op: Operator, args: list[Any]) -> _Info | None:
    """The output's (shape, dtype), or None if the rule fails (the caller silences NumPy)."""
    try:
        out = op.op.forward(*args, **op.attrs)
    except Exception:
        # Wrong shapes, or a rule that cannot take read-only dummies: the real run says
        # what is wrong, and the estimate goes on with the bound's shape.
        return None
    try:
        return _info_of(out)
    except Exception:
        return None


def estimate(order: Sequence[Node], max_bytes: int) -> Estimate:
    """The estimated memory of running ``order`` forward and backward; BudgetError if over."""
    # Dummies hold ones: log 1 and 1 / 1 are fine, but a rule may still warn on them.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _estimate(order, max_bytes)


def _describe(node: Node, infos: dict[Node, _Info], out: str) -> str:
    """``multiply of shapes (3,) and (3, 1) -> (3, 3) float64``, for a refusal."""
    if not isinstance(node, Operator):
        return f"a value of shape {out}"
    return f"{node.op.name} of shapes {_shape_text([infos[i][0] for i in node.inputs])} -> {out}"


def _leaf_info(node: Node, max_bytes: int) -> _Info:
    """A leaf's (shape, dtype, scalar): its value's, or a placeholder's declared ones."""
    if isinstance(node, (Variable, Constant)):
        return _info_of(node.value)
    if isinstance(node, Placeholder):
        ds = node.shape
        if ds is None:
            raise BudgetError(
                f"the size of placeholder {node.name!r} is not known before it is fed",
                needed=0, limit=max_bytes,
            )
        return (ds, node.dtype, False)
    raise BudgetError(
        f"cannot estimate the size of node {node.name!r} of kind "
        f"{type(node).__name__}", needed=0, limit=max_bytes,
    )


def _operator_info(
    node: Operator, infos: dict[Node, _Info], check: Callable[[str, int, int], None]
) -> _Info:
    """An operator's output, from its forward rule run on dummies of its inputs.

    ``check(out, value_bytes, grad_bytes)`` is first given the bound, and raises when
    that is over the limit.
    """
    ins = [infos[i] for i in node.inputs]
    elements, guess = _bound(node, [i[0] for i in ins])
    itemsize = max((i[1].itemsize for i in ins), default=8)
    # The bound first: running the rule, even on dummies, allocates its output.
    out = f"about {guess}" if guess is not None else f"up to {elements} elements"
    check(out, elements * itemsize, elements * max(itemsize, 8))
    args = [i.value if isinstance(i, Constant) else _dummy(infos[i]) for i in node.inputs]
    exact = _forward_on_dummies(node, args)
    if exact is not None:
        return exact
    dtype = np.result_type(*[i[1] for i in ins]) if ins else np.dtype(np.float64)
    shapes = [i[0] for i in ins]
    fallback = guess if guess is not None else max(shapes, key=math.prod, default=())
    return (fallback, dtype, False)


def _estimate(order: Sequence[Node], max_bytes: int) -> Estimate:
    infos: dict[Node, _Info] = {}
    held = 0  # every value and gradient so far
    temp, largest = 0, 0  # temp: the largest gradient, for one backward step's temporaries
    largest_node: str | None = None

    def check(node: Node, out: str, value_b: int, grad_b: int) -> None:
        """Refuse ``node`` when the estimate with it is over the limit."""
        needed = held + value_b + grad_b + max(temp, grad_b)
        if needed > max_bytes:
            raise BudgetError(
                f"the expression would need about {format_size(needed)} of memory, over "
                f"the limit of {format_size(max_bytes)}, at node {node.name!r} "
                f"({_describe(node, infos, out)}: {format_size(value_b + grad_b)} for its "
                "value and gradient)",
                needed=needed, limit=max_bytes,
            )

    for node in order:
        if isinstance(node, Operator):
            info = _operator_info(node, infos, functools.partial(check, node))
        else:
            info = _leaf_info(node, max_bytes)
        infos[node] = info
        value_b, grad_b = _nbytes(info)
        check(node, f"{info[0]} {info[1].name}", value_b, grad_b)
        held += value_b + grad_b
        temp = max(temp, grad_b)
        if value_b + grad_b > largest:
            largest, largest_node = value_b + grad_b, node.name
    return Estimate(held + temp, largest, largest_node)
