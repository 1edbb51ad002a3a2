"""The op's rules called on numbers, as the engine calls them: inputs bound, mutation of
an argument caught, a gradient reduced to its input's shape."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._arrays import sum_to
from .case import Case
from .results import OpCheckError


def bind(case: Case, values: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The inputs and attributes the rules get for ``values`` and the sample's attributes."""
    opdef = case.opdef
    args: tuple[Any, ...] = (list(values),) if opdef.arity is None else tuple(values)
    try:
        return opdef.bind(args, case.attrs)
    except TypeError as exc:
        raise case.fail(f"inputs do not fit the op: {exc}") from None


def forward(case: Case, values: Sequence[Any], what: str) -> Any:
    """The forward rule's value, which must leave its inputs as they were."""
    ins, attrs = bind(case, values)
    before = _snapshot(ins)
    try:
        out = case.opdef.forward(*ins, **attrs)
    except Exception as exc:
        raise case.fail(f"forward raised {type(exc).__name__}: {exc} ({what})") from exc
    for i, (b, a) in enumerate(zip(before, ins, strict=True)):
        if not _unchanged(b, a):
            raise case.fail(f"forward mutated {case.input_name(i)} ({what})")
    return out


def backward(case: Case, g: Any, out: Any, values: Sequence[Any], what: str) -> list[Any]:
    """One gradient per input (None where the rule is None), arguments left unchanged."""
    ins, attrs = bind(case, values)
    before = _snapshot([g, out, *ins])
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            grads = _call_backward(case, g, out, ins, attrs, what)
    except OpCheckError:
        raise
    except Exception as exc:
        # A name NumPy lacks fails for numbers too: say which plugin would provide it.
        unknown = [name for name in case.state.unregistered() if not hasattr(np, name)]
        why = "".join(f"; xp.{name}: {case.state.missing(name)}" for name in unknown)
        raise case.fail(
            f"backward raised {type(exc).__name__}: {exc} ({what}){why}") from exc
    labels = ["the output gradient", "the output value"] + [
        case.input_name(i) for i in range(len(ins))]
    for b, a, name in zip(before, [g, out, *ins], labels, strict=True):
        if not _unchanged(b, a):
            raise case.fail(f"backward mutated {name} ({what})")
    return grads


def _call_backward(case: Case, g: Any, out: Any, ins: tuple[Any, ...],
                   attrs: dict[str, Any], what: str) -> list[Any]:
    opdef, xp, n = case.opdef, case.state.xp, len(ins)
    if opdef.vjps is not None:
        return [rule(xp, g, out, *ins, **attrs) if rule is not None else None
                for rule in opdef.vjps]
    assert opdef.joint_backward is not None
    result = opdef.joint_backward(xp, g, out, *ins, **attrs)
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = len(result) if isinstance(result, (tuple, list)) else type(result).__name__
        raise case.fail(f"backward returned {got} gradients for {n} inputs ({what})")
    return list(result)


def reduced(case: Case, i: int, grad: Any, shape: tuple[int, ...]) -> Any:
    """Input ``i``'s gradient summed to ``shape`` as the engine does (zeros for None)."""
    if grad is None:
        return np.zeros(shape)
    try:
        return np.asarray(sum_to(grad, shape), dtype=np.float64)
    except ValueError:
        raise case.fail(
            f"backward returned a gradient of shape {np.shape(grad)} for "
            f"{case.input_name(i)} of shape {shape}: it neither equals nor reduces to "
            f"it by summing broadcast axes"
        ) from None


def _snapshot(values: Sequence[Any]) -> list[Any]:
    return [copy.deepcopy(v) for v in values]


def _unchanged(before: Any, after: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(before), np.asarray(after), equal_nan=True))
    except TypeError:  # non-numeric dtype: equal_nan is unsupported
        return bool(np.array_equal(np.asarray(before), np.asarray(after)))
