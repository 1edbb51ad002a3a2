"""Naming a failure inside generated code: the traceback line is mapped to its node,
and the exception re-raised as the autodag error the interpreter would raise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import AutodagError, OpExecutionError
from ..interpreter import Interpreted, backward_error, forward_error
from ..nodes import Node, Operator
from .source import Source

__all__ = ["locate", "run_interpreted", "unplaced"]


def locate(exc: Exception, sources: Mapping[str, Source],
           order: Sequence[Node]) -> AutodagError | None:
    """The named error for an exception raised on an op's line of generated code."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        src = sources.get(frame.f_code.co_filename)
        line = None if src is None else src.lines.get(tb.tb_lineno)
        if src is not None and line is not None:
            local = frame.f_locals
            slot = line.slot
            if line.period:
                slot += local.get(line.counter, 0) * line.period
            node = order[slot]
            assert isinstance(node, Operator)
            ns = src.namespace
            if any(local.get(n) is None for n in line.let_go):
                # An input the op's lines let go of (``consume``): the interpreter names it.
                return None
            args = [local[n] if n in local else ns.get(n) for n in line.args]
            if line.backward:
                return backward_error(node, local.get(line.grad or f"g{slot}"), args, exc)
            return forward_error(node, args, exc)
        tb = tb.tb_next
    return None


def unplaced(exc: Exception, what: str) -> AutodagError:
    """The error for a failure generated code cannot place on a node."""
    return OpExecutionError(f"{what} failed: {type(exc).__name__}: {exc}")


def run_interpreted(order: Sequence[Node], outputs: Sequence[Node],
                    wrt: Sequence[Node] | None, leaf_values: Sequence[Any]) -> AutodagError | None:
    """The same call through the interpreter, which names the failing node."""
    try:
        Interpreted(order, outputs, wrt).run(None, leaf_values)
    except AutodagError as named:
        return named
    except Exception:
        return None
    return None
