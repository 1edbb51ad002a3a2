"""Runs on another array backend (Dask, CuPy, array-api-strict...).

A run whose values are all NumPy arrays and Python numbers takes the plans' fast paths
(compiled code included). A run holding another library's arrays computes with that
library: every forward rule on the run's values, every backward rule with an ``xp`` of
registered ops and the backend's functions; a compiled plan runs its general function
(whose NumPy fast paths test the values' class), any other plan is interpreted. An op
whose forward is NumPy-only (``OpDef.array_api`` False) is refused before anything
runs, naming the op, its plugin and the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .backend import BackendError, backend_name, is_numpy, run_namespace
from .interpreter import Interpreted, PlanBase
from .nodes import Constant, Operator
from .registry import get_registry

__all__ = ["checked_rules_namespace", "foreign_namespace", "run_foreign"]


def _foreign_constants(plan: PlanBase) -> tuple[tuple[str, Any], ...]:
    """The plan's Constants that hold another library's arrays (found once per plan)."""
    found = plan.foreign_constants
    if found is None:
        found = plan.foreign_constants = tuple(
            (f"Constant {n.name!r}", n.value) for n in plan.order
            if isinstance(n, Constant) and not is_numpy(n.value))
    return found


def foreign_namespace(plan: PlanBase, leaf_values: Sequence[Any]) -> Any | None:
    """The run's backend namespace, or None for NumPy and Python numbers (the fast path)."""
    for v in leaf_values:
        c = v.__class__
        if c is not float and c is not np.ndarray and c is not int and not is_numpy(v):
            break
    else:
        if not _foreign_constants(plan):
            return None
    consts = _foreign_constants(plan)
    labels = [f"{type(n).__name__} {n.name!r}" for n in plan.leaves]
    ns = run_namespace([*leaf_values, *(v for _, v in consts)],
                       [*labels, *(label for label, _ in consts)])
    return None if ns is np else ns


def run_foreign(plan: PlanBase, ns: Any, leaf_values: Sequence[Any],
                ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``plan.run`` for a run on backend ``ns``, every op checked first: a compiled plan
    runs its general function with the backend's ``xp``, any other is interpreted."""
    xp = checked_rules_namespace(plan, ns)
    general = getattr(plan, "run_general", None)
    if general is not None:
        return general(xp, leaf_values)  # type: ignore[no-any-return]
    interp = plan.foreign.get("interpreter")
    if interp is None:
        interp = plan.foreign["interpreter"] = plan if isinstance(plan, Interpreted) else (
            Interpreted(plan.order, plan.outputs, plan.wrt))
    return interp.run(xp, leaf_values)


def checked_rules_namespace(plan: PlanBase, ns: Any) -> Any:
    """The rules' ``xp`` for a run of ``plan`` on backend ``ns``, once every op of the
    plan is known to run there."""
    checked: set[int] = plan.foreign.setdefault("checked", set())
    if id(ns) not in checked:
        _check_ops(plan.order, ns)
        checked.add(id(ns))
    return get_registry().numeric_for(ns)


def _check_ops(order: Sequence[Any], ns: Any) -> None:
    for n in order:
        if isinstance(n, Operator) and not n.op.array_api:
            raise BackendError(
                f"op {n.op.name!r} from plugin {n.plugin.describe()} cannot run on "
                f"{backend_name(ns)} arrays: its forward is NumPy-only (OpDef.array_api is "
                f"False), at {n.describe()}; values are never converted to NumPy, so "
                f"run this graph on NumPy values or use an op written for any backend"
            )
