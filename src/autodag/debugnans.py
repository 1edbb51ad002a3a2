"""``autodag.debug_nans()``: the first NaN (or inf) of a run, named where it was born.

Inside the context (or with ``AUTODAG_DEBUG_NANS=1``; ``=inf`` also catches infinities)
every run goes through ``Checked``, an interpreter that looks at each value as a forward
rule makes it and at each gradient contribution as a backward rule makes it, and raises
``NonFiniteError`` at the first non-finite one: the node, its op and plugin, the pass
(and for the backward pass, which input's gradient), where the user created the node,
and a summary of the op's inputs. Compiled programs run this interpreter over their plan
while the context is on. Outside it, the passes only read one module global.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy as np

from ._arrays import quiet_numpy
from .backend import is_numpy, namespace_of
from .errors import AutodagError
from .foreign import checked_rules_namespace, foreign_namespace
from .interpreter import Interpreted, PlanBase
from .nodes import Node, Operator
from .registry import get_registry

__all__ = ["ENV", "Checked", "NonFiniteError", "debug_nans", "mode", "run_checked"]

#: The environment variable: ``1`` (or ``nan``) checks for NaN, ``inf`` for NaN and inf.
ENV: Final = "AUTODAG_DEBUG_NANS"

_MODES: Final = {"1": "nan", "nan": "nan", "true": "nan", "inf": "inf", "nan,inf": "inf"}


def _env_mode() -> str | None:
    return _MODES.get(os.environ.get(ENV, "").strip().lower())


_ENV_MODE: Final = _env_mode()
_mode: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "autodag_debug_nans", default=_ENV_MODE)
#: Contexts open in any thread: the passes' one cheap test before asking ``mode()``.
ACTIVE = 1 if _mode.get() else 0


class NonFiniteError(AutodagError, ValueError):
    """A value or gradient contribution became NaN (or inf) under ``debug_nans``."""

    def __init__(self, message: str, node: Node | None = None, phase: str = "forward",
                 input_index: int | None = None) -> None:
        super().__init__(message)
        #: The node whose value (forward) or whose rule's contribution (backward) it is.
        self.node = node
        #: ``"forward"``, ``"backward"`` or ``"input"`` (a leaf's value as given).
        self.phase = phase
        #: For the backward pass: which input's gradient.
        self.input_index = input_index


def mode() -> str | None:
    """``"nan"``, ``"inf"`` (NaN and inf) or None: what this context checks for."""
    return _mode.get() if ACTIVE else None


@contextlib.contextmanager
def debug_nans(inf: bool = False) -> Iterator[None]:
    """Check every value and gradient contribution made inside; raise NonFiniteError at
    the first NaN (and with ``inf=True`` the first infinity), naming where it was born."""
    global ACTIVE
    token = _mode.set("inf" if inf else "nan")
    ACTIVE += 1
    try:
        yield
    finally:
        ACTIVE -= 1
        _mode.reset(token)


def _bad_count(v: Any, inf: bool) -> int:
    """How many elements of ``v`` are NaN (or non-finite); 0 for what cannot be checked
    without computing it (a lazy Dask array) or holds no floats."""
    c = v.__class__
    if c is float or c is complex:
        return int(not np.isfinite(v)) if inf else int(v != v)
    if is_numpy(v):
        kind = np.result_type(v).kind
        if kind not in "fc":
            return 0
        return int(np.size(v) - np.count_nonzero(np.isfinite(v))) if inf else int(
            np.count_nonzero(np.isnan(v)))
    if c.__module__.startswith("dask"):
        return 0  # checking would compute the whole graph
    try:
        xp = namespace_of(v)
        bad = ~xp.isfinite(v) if inf else xp.isnan(v)
        return int(xp.sum(xp.astype(bad, xp.int64)))
    except Exception:
        return 0  # a value of no array library we can ask


def summary(v: Any) -> str:
    """dtype, shape, min/max of the finite elements and NaN/inf counts of a value."""
    if not is_numpy(v):
        return f"{type(v).__name__} shape {tuple(getattr(v, 'shape', ()))}"
    a = np.asarray(v)
    if a.dtype.kind not in "biufc":
        return f"{a.dtype} shape {a.shape}"
    with quiet_numpy():
        finite = a[np.isfinite(a)] if a.dtype.kind in "fc" else a.ravel()
        nan = int(np.count_nonzero(np.isnan(a))) if a.dtype.kind in "fc" else 0
        inf = int(np.count_nonzero(np.isinf(a))) if a.dtype.kind in "fc" else 0
    span = (f"min {finite.real.min():.6g}, max {finite.real.max():.6g}" if finite.size
            else "no finite element")
    return f"{a.dtype.name} shape {a.shape}, {span}, {nan} NaN, {inf} inf"


def _what(inf: bool) -> str:
    return "NaN or inf" if inf else "NaN"


def _count(n: int, inf: bool) -> str:
    return f"{n} {_what(inf)} element{'s' * (n != 1)}"


def _inputs(node: Operator, args: Sequence[Any]) -> str:
    return "; ".join(f"{x.name!r}: {summary(a)}" for x, a in zip(node.inputs, args))


class Checked(Interpreted):
    """The interpreter with every value and gradient contribution checked as it is made."""

    def __init__(self, order: Sequence[Node], outputs: Sequence[Node],
                 wrt: Sequence[Node] | None, every: bool = False,
                 inf: bool | None = None) -> None:
        super().__init__(order, outputs, wrt, every)
        self.inf = (mode() == "inf") if inf is None else inf
        self.check_value = self._check_value
        self.check_grad = self._check_grad

    def forward(self, leaf_values: Sequence[Any]) -> list[Any]:
        """Every slot's value; NonFiniteError at the first non-finite one."""
        inf = self.inf
        for node, v in zip(self.leaves, leaf_values, strict=True):
            if _bad_count(v, inf):
                raise NonFiniteError(
                    f"{_what(inf)} in the value given for {type(node).__name__} "
                    f"{node.name!r} (created at {node.where()}): {summary(v)}", node, "input")
        # The check names the first non-finite value: NumPy's warnings would only repeat it.
        with quiet_numpy():
            return super().forward(leaf_values)

    def _check_value(self, node: Operator, args: list[Any], out: Any) -> None:
        n = _bad_count(out, self.inf)
        if n:
            raise NonFiniteError(
                f"{_what(self.inf)} born in the forward pass at {node.describe()}: its value "
                f"has {_count(n, self.inf)} ({summary(out)}); its inputs: "
                f"{_inputs(node, args)}",
                node, "forward")

    def _check_grad(self, node: Operator, k: int, gk: Any, g: Any, args: list[Any]) -> None:
        n = _bad_count(gk, self.inf)
        if n:
            raise NonFiniteError(
                f"{_what(self.inf)} born in the backward pass at {node.describe()}: "
                f"its rule's gradient for input {k} ({node.inputs[k].name!r}) "
                f"has {_count(n, self.inf)} ({summary(gk)}); incoming gradient: "
                f"{summary(g)}; its inputs: {_inputs(node, args)}",
                node, "backward", k)


def run_checked(plan: PlanBase, leaves: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``plan.run`` through ``Checked``: the same outputs and raw gradients, each value
    and contribution checked (on the backend of another library's arrays too)."""
    checked = Checked(plan.order, plan.outputs, plan.wrt)
    ns = foreign_namespace(plan, leaves)
    xp = get_registry().numeric if ns is None else checked_rules_namespace(checked, ns)
    return checked.run(xp, leaves)
