"""A failure inside a check made an OpCheckError: what failed, where in the op's code,
and, for an ``xp.<name>`` no registered op provides, which plugin would."""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable
from typing import Final, TypeVar

import numpy as np

from ..errors import AutodagError, NumpyFunctionError, SymbolicGradientError
from .case import Case
from .results import OpCheckError

_T = TypeVar("_T")
_MISSING_XP: Final = re.compile(r"\bxp\.(\w+) was used\b")
#: Frames in autodag (this package's parent) and NumPy are not the op author's code.
_INTERNAL_DIRS: Final = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
    os.path.dirname(os.path.abspath(np.__file__)) + os.sep,
)
_GRAPH_NODES_NEED_OPS: Final = (
    "For numbers xp.<name> falls back to NumPy's function of that name, so autodag.grad "
    "works, but autodag.gradients, second order and autodag.jvp build graph nodes, which "
    "only registered ops can: load the plugin providing the op (and depend on it), or "
    "declare the op symbolic=False"
)


def attempt(case: Case, stage: str, fn: Callable[[], _T]) -> _T:
    """``fn()``, whose failure becomes an OpCheckError saying what failed where."""
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn()
    except OpCheckError:
        raise
    except Exception as exc:
        raise case.fail(explain(case, stage, exc)) from exc


def explain(case: Case, stage: str, exc: Exception) -> str:
    """``stage failed: ...``, with the missing ops' providers or the failing rule's line."""
    text = f"{stage} failed: {type(exc).__name__}: {exc}"
    if isinstance(exc, SymbolicGradientError):
        missing = _explain_missing(case, stage, text, exc)
        if missing is not None:
            return missing
    root = _root_cause(exc)
    line = None if root is None else _user_line(root)
    return text + (f" (at {line})" if line else "")


def _explain_missing(case: Case, stage: str, text: str,
                     exc: SymbolicGradientError) -> str | None:
    """The message for ``xp.<name>`` names that are no registered op, if there are any."""
    state = case.state
    names = [n for n in _MISSING_XP.findall(str(exc)) if n not in state.registry.ops]
    if not names:
        return None
    direct = [n for n in names if n in state.asked]
    if direct:
        text = f"{stage} failed: " + "; ".join(
            f"its rules use xp.{n}: {state.missing(n)}" for n in direct)
    else:
        # The graph namespace's message may already carry the registry's explanation.
        text += "".join(f"; {why}" for why in map(state.missing, names) if why not in text)
    stop = "" if text.endswith((".", "?")) else "."
    return f"{text}{stop} {_GRAPH_NODES_NEED_OPS}"


def _root_cause(exc: BaseException) -> BaseException | None:
    """The first exception in ``exc``'s chain that autodag did not raise on purpose, or
    a NumPy call on a node (raised in the rule's own line)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, NumpyFunctionError) or not isinstance(
                seen, (AutodagError, OpCheckError)):
            return seen
        seen = seen.__cause__
    return None


def _user_line(exc: BaseException) -> str | None:
    """``file:line: source`` of the innermost frame of ``exc`` outside autodag and NumPy:
    the line of the rule that failed."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if not os.path.abspath(frame.filename).startswith(_INTERNAL_DIRS):
            found = frame
    if found is None:
        return None
    src = (found.line or "").strip()
    return f"{found.filename}:{found.lineno}" + (f": {src}" if src else "")
