"""Tools for op authors: ``check_op`` verifies an op's backward rule numerically.

Use it from a plugin's own test suite::

    from autodag.testing import check_op

    def test_square() -> None:
        check_op(SQUARE)                    # every sample of the op's ``samples``
        check_op("square", np.ones((2, 3)))  # or explicit inputs (attributes via attrs=)

``check_op`` raises :class:`OpCheckError` (an ``AssertionError``, so pytest shows it as a
test failure) naming the op, the sample, the input and its worst element.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ._arrays import sum_to
from .opdef import OpDef, Sample
from .registry import RegisteredOp, get_registry

__all__ = ["OpCheckError", "OpCheckResult", "check_op"]

_FLOAT_KINDS: Final = "f"


class OpCheckError(AssertionError):
    """``check_op`` found a defect: the message names the op, input and worst element."""


@dataclass(frozen=True)
class OpCheckResult:
    """What ``check_op`` checked: number of samples, whether gradients were compared."""

    op: str
    samples: int
    gradients_checked: bool
    #: Largest |backward rule - central differences| over every checked element.
    max_abs_error: float


def check_op(
    op: str | OpDef | RegisteredOp,
    *inputs: Any,
    attrs: Mapping[str, Any] | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    seed: int = 0,
    check_dtypes: bool = True,
) -> OpCheckResult:
    """Check an op's forward and backward rules; raise OpCheckError on the first defect.

    With ``inputs`` (and ``attrs``), checks that one sample; without, every sample of
    the op's ``samples`` (drawn with ``numpy.random.default_rng(seed)``). For each
    sample: forward must not mutate its inputs; a joint backward rule must return one
    gradient per input; every gradient must reduce to its input's shape by the engine's
    broadcasting rule (sum over broadcast axes) and agree with central differences in
    float64 of ``sum(forward(*inputs) * w)`` for a random ``w`` (integer and boolean
    inputs are held fixed); and, with ``check_dtypes``, float32 inputs must give a
    float32 value and float32 gradients. Ops without a backward rule get the forward
    checks only.
    """
    opdef, label = _resolve(op)
    if inputs:
        samples = [Sample(tuple(inputs), dict(attrs or {}))]
    elif attrs:
        raise TypeError("check_op: attrs given without inputs")
    elif opdef.samples is None:
        raise ValueError(
            f"{label} has no samples: pass inputs to check_op, or give the OpDef samples="
        )
    else:
        samples = list(opdef.samples(np.random.default_rng(seed)))
        if not samples:
            raise ValueError(f"{label}: its samples function returned no samples")
    worst = 0.0
    for k, sample in enumerate(samples):
        worst = max(worst, _SampleCheck(opdef, label, sample, k, seed).run(
            eps, rtol, atol, check_dtypes))
    return OpCheckResult(opdef.name, len(samples), opdef.differentiable, worst)


def _resolve(op: str | OpDef | RegisteredOp) -> tuple[OpDef, str]:
    if isinstance(op, str):
        op = get_registry().get(op)
    if isinstance(op, RegisteredOp):
        return op.opdef, f"op {op.opdef.name!r} from plugin {op.plugin.describe()}"
    if isinstance(op, OpDef):
        return op, f"op {op.name!r}"
    raise TypeError(f"check_op: op must be a name, an OpDef or a RegisteredOp, got {op!r:.60}")


def _is_float(x: Any) -> bool:
    return isinstance(x, float) or np.result_type(x).kind in _FLOAT_KINDS


def _snapshot(values: Sequence[Any]) -> list[Any]:
    return [copy.deepcopy(v) for v in values]


def _unchanged(before: Any, after: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(before), np.asarray(after), equal_nan=True))
    except TypeError:  # non-numeric dtype: equal_nan is unsupported
        return bool(np.array_equal(np.asarray(before), np.asarray(after)))


class _SampleCheck:
    """The checks of one sample; ``run`` returns the largest gradient error."""

    def __init__(self, opdef: OpDef, label: str, sample: Sample, k: int, seed: int) -> None:
        self.opdef = opdef
        shapes = ", ".join(str(np.shape(x)) for x in sample.inputs)
        extra = f" with {dict(sample.attrs)}" if sample.attrs else ""
        self.where = f"{label}, sample {k} (input shapes {shapes}{extra})"
        self.raw_inputs = tuple(sample.inputs)
        self.attrs_in = dict(sample.attrs)
        self.rng = np.random.default_rng([seed, k])

    def fail(self, msg: str) -> OpCheckError:
        return OpCheckError(f"{self.where}: {msg}")

    def input_name(self, i: int) -> str:
        names = self.opdef.input_names
        return f"input {i} ({names[i]!r})" if i < len(names) else f"input {i}"

    # --- calling the rules ------------------------------------------------------------
    def bind(self, values: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args: tuple[Any, ...] = (list(values),) if self.opdef.arity is None else tuple(values)
        try:
            return self.opdef.bind(args, self.attrs_in)
        except TypeError as exc:
            raise self.fail(f"inputs do not fit the op: {exc}") from None

    def forward(self, values: Sequence[Any], what: str) -> Any:
        ins, attrs = self.bind(values)
        before = _snapshot(ins)
        try:
            out = self.opdef.forward(*ins, **attrs)
        except Exception as exc:
            raise self.fail(f"forward raised {type(exc).__name__}: {exc} ({what})") from exc
        for i, (b, a) in enumerate(zip(before, ins, strict=True)):
            if not _unchanged(b, a):
                raise self.fail(f"forward mutated {self.input_name(i)} ({what})")
        return out

    def backward(self, g: Any, out: Any, values: Sequence[Any], what: str) -> list[Any]:
        ins, attrs = self.bind(values)
        xp = get_registry().numeric
        before = _snapshot([g, out, *ins])
        n = len(ins)
        try:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if self.opdef.vjps is not None:
                    grads = [rule(xp, g, out, *ins, **attrs) if rule is not None else None
                             for rule in self.opdef.vjps]
                else:
                    assert self.opdef.joint_backward is not None
                    result = self.opdef.joint_backward(xp, g, out, *ins, **attrs)
                    if not isinstance(result, (tuple, list)) or len(result) != n:
                        got = len(result) if isinstance(result, (tuple, list)) else type(
                            result).__name__
                        raise self.fail(
                            f"backward returned {got} gradients for {n} inputs ({what})")
                    grads = list(result)
        except OpCheckError:
            raise
        except Exception as exc:
            raise self.fail(f"backward raised {type(exc).__name__}: {exc} ({what})") from exc
        labels = ["the output gradient", "the output value"] + [
            self.input_name(i) for i in range(n)]
        for b, a, name in zip(before, [g, out, *ins], labels, strict=True):
            if not _unchanged(b, a):
                raise self.fail(f"backward mutated {name} ({what})")
        return grads

    # --- the checks ---------------------------------------------------------------------
    def run(self, eps: float, rtol: float, atol: float, check_dtypes: bool) -> float:
        values = [np.array(x, dtype=np.float64) if _is_float(x) else copy.deepcopy(x)
                  for x in self.raw_inputs]
        out = self.forward(values, "float64 inputs")
        worst = 0.0
        if self.opdef.differentiable and _is_float(out):
            worst = self.check_gradients(values, out, eps, rtol, atol)
        if check_dtypes and any(_is_float(x) for x in values):
            self.check_float32(values)
        return worst

    def check_gradients(self, values: list[Any], out: Any, eps: float, rtol: float,
                        atol: float) -> float:
        w = self.rng.standard_normal(np.shape(out))
        grads = self.backward(w, out, values, "float64 inputs")
        worst = 0.0
        for i, x in enumerate(values):
            if not _is_float(x):
                continue
            analytic = self.reduced(i, grads[i], np.shape(x))
            numeric = self.central_differences(values, i, w, eps)
            err = np.abs(analytic - numeric)
            tol = atol + rtol * np.abs(numeric)
            bad = ~(err <= tol)  # NaN counts as a failure
            if np.any(bad):
                score = np.where(np.isnan(err), np.inf, err - tol)
                at = tuple(int(j) for j in np.unravel_index(int(np.argmax(score)), err.shape))
                raise self.fail(
                    f"gradient of {self.input_name(i)} is wrong at index {at}: backward "
                    f"rule gave {analytic[at]:.8g}, central differences {numeric[at]:.8g} "
                    f"(|error| {err[at]:.3g} > tolerance {tol[at]:.3g}; "
                    f"{int(np.sum(bad))} of {err.size} elements wrong)"
                )
            if err.size:
                worst = max(worst, float(np.max(err)))
        return worst

    def reduced(self, i: int, grad: Any, shape: tuple[int, ...]) -> Any:
        if grad is None:
            return np.zeros(shape)
        try:
            return np.asarray(sum_to(grad, shape), dtype=np.float64)
        except ValueError:
            raise self.fail(
                f"backward returned a gradient of shape {np.shape(grad)} for "
                f"{self.input_name(i)} of shape {shape}: it neither equals nor reduces to "
                f"it by summing broadcast axes"
            ) from None

    def central_differences(self, values: list[Any], i: int, w: Any, eps: float) -> Any:
        x = values[i]
        numeric = np.zeros(np.shape(x))
        ins, attrs = self.bind(values)
        fwd = self.opdef.forward

        def f(v: Any) -> float:
            args = list(ins)
            args[i] = v
            return float(np.sum(np.asarray(fwd(*args, **attrs), dtype=np.float64) * w))

        for idx in np.ndindex(np.shape(x)):
            v = np.array(x, dtype=np.float64)
            v[idx] += eps
            hi = f(v)
            v[idx] -= 2 * eps
            numeric[idx] = (hi - f(v)) / (2 * eps)
        return numeric

    def check_float32(self, values: list[Any]) -> None:
        v32 = [np.asarray(x, dtype=np.float32) if _is_float(x) else x for x in values]
        out = self.forward(v32, "float32 inputs")
        if not _is_float(out):
            return
        if np.result_type(out) != np.float32:
            raise self.fail(f"float32 inputs gave a {np.result_type(out)} value, not float32")
        if not self.opdef.differentiable:
            return
        g = self.rng.standard_normal(np.shape(out)).astype(np.float32)
        grads = self.backward(g, out, v32, "float32 inputs")
        for i, (x, gi) in enumerate(zip(v32, grads, strict=True)):
            if gi is None or not _is_float(x) or type(gi) in (int, float):
                continue  # Python scalars are weakly typed: they keep float32 float32
            if np.result_type(gi) != np.float32:
                raise self.fail(
                    f"float32 inputs gave a {np.result_type(gi)} gradient for "
                    f"{self.input_name(i)}, not float32"
                )
