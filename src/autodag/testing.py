"""Tools for op authors: ``check_op`` checks an op the way its users will call it.

Use it from a plugin's own test suite::

    from autodag.testing import check_op

    def test_square() -> None:
        check_op(SQUARE)                    # every sample of the op's ``samples``
        check_op("square", np.ones((2, 3)))  # or explicit inputs (attributes via attrs=)

``check_op`` raises :class:`OpCheckError` (an ``AssertionError``, so pytest shows it as a
test failure) naming the op, the sample, the check and its worst element. It returns an
:class:`OpCheckResult`: what was checked, the largest error of each check on each
sample, and which ops of other plugins the op's rules use (``needs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from .errors import ArgumentError
from .opcheck.recording import OpState

# The check names are public too (``testing.GRADIENTS``...): re-exported explicitly.
from .opcheck.results import CHECKS, OpCheckError, OpCheckResult, SampleReport
from .opcheck.results import FLOAT32 as FLOAT32
from .opcheck.results import FORWARD as FORWARD
from .opcheck.results import GRADIENTS as GRADIENTS
from .opcheck.results import INLINE as INLINE
from .opcheck.results import JVP as JVP
from .opcheck.results import SECOND_ORDER as SECOND_ORDER
from .opcheck.results import SECOND_ORDER_BUILT as SECOND_ORDER_BUILT
from .opcheck.results import STATIC_SHAPES as STATIC_SHAPES
from .opcheck.results import SYMBOLIC as SYMBOLIC
from .opcheck.run import check_sample
from .opdef import OpDef, Sample
from .registry import PluginInfo, RegisteredOp, get_registry

__all__ = ["CHECKS", "OpCheckError", "OpCheckResult", "SampleReport", "check_op"]

#: The pseudo-plugin of an OpDef handed to check_op without being registered.
_UNREGISTERED: Final = PluginInfo("unregistered", "handed to check_op")


def check_op(
    op: str | OpDef | RegisteredOp,
    *inputs: Any,
    attrs: Mapping[str, Any] | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    seed: int = 0,
    check_dtypes: bool = True,
    order: int = 2,
    sample: int | None = None,
) -> OpCheckResult:
    """Check an op as users will call it; raise OpCheckError on the first defect.

    With ``inputs`` (and ``attrs``), checks that one sample; without, every sample of
    the op's ``samples`` (drawn with ``numpy.random.default_rng(seed)``). On each sample,
    in float64 unless said otherwise, with a random output weight ``w``:

    * forward must not mutate its inputs, and static shape inference (what
      ``autodag.gradients``, ``autodag.jvp`` and ``xp.shape`` rely on) must give the
      shape and dtype the forward really returns, for float64 and float32 inputs;
    * the backward rule must return one gradient per input, each reducing to its input's
      shape by the engine's broadcasting rule, and agree with central differences of
      ``sum(forward(*inputs) * w)`` (integer and boolean inputs are held fixed);
    * for an op with ``symbolic=True``, on a graph of Variables holding the sample:
      ``autodag.gradients`` must evaluate to the rule's numbers; ``autodag.jvp`` along a
      random tangent must agree with central differences of the forward (where those
      depend on the step, as at a kink or tie, only with the dot product
      ``<w, J t> = <J^T w, t>``); and the Hessian-vector product (``autodag.gradients``
      of the gradient) must agree with central differences of the backward rule. Where
      those differences depend on the step, the first derivative is not differentiable
      there (piecewise ops), and the second-order graph is only built and evaluated;
      ``SampleReport.notes`` says so and the check is reported as
      ``"second order (built only)"``. An exception inside a rule run on nodes (a NumPy
      call on a node) fails the check naming the op, plugin and rule, and an
      ``xp.<name>`` that is no registered op (it fell back to NumPy for numbers) fails
      it naming the op and, if one is installed, the plugin that would provide it;
    * for an op with ``inline`` or ``inline_vjps`` templates, ``autodag.compile`` must
      give the interpreter's value and gradients (on Python floats too, for scalars);
    * with ``check_dtypes``, float32 inputs must give a float32 value and gradients.

    Ops without a backward rule get the forward, shape, template and dtype checks.
    ``order=1`` leaves out the second-order check (for an op whose rules are meant to be
    differentiated once); ``sample=k`` checks only sample ``k`` of the op's samples, drawn
    as for all of them (the pytest plugin makes one test of each sample). A failure's
    ``OpCheckError`` has ``check`` (which check failed) and ``report`` (what passed before).
    """
    if order not in (1, 2):
        raise ArgumentError(f"check_op: order must be 1 or 2, got {order!r}")
    registered, label = _resolve(op)
    samples = _pick(list(enumerate(_samples(registered.opdef, label, inputs, attrs, seed))),
                    sample, label, bool(inputs))
    state = OpState(registered)
    reports = [check_sample(state, label, s, k, seed, eps=eps, rtol=rtol, atol=atol,
                            check_dtypes=check_dtypes, order=order)
               for k, s in samples]
    return _result(registered.opdef, reports, state.needs())


def _pick(samples: list[tuple[int, Sample]], sample: int | None, label: str,
          given: bool) -> list[tuple[int, Sample]]:
    """All the (index, sample) pairs, or only number ``sample`` of the op's own."""
    if sample is None:
        return samples
    if given or not 0 <= sample < len(samples):
        raise ArgumentError(
            f"check_op: sample={sample!r} needs the op's own samples; {label} has "
            f"{len(samples)}" + (" (inputs were given)" if given else ""))
    return [samples[sample]]


def _samples(opdef: OpDef, label: str, inputs: tuple[Any, ...],
             attrs: Mapping[str, Any] | None, seed: int) -> list[Sample]:
    """The explicit sample, or the op's own samples drawn with ``seed``."""
    if inputs:
        return [Sample(tuple(inputs), dict(attrs or {}))]
    if attrs:
        raise TypeError("check_op: attrs given without inputs")
    if opdef.samples is None:
        raise ValueError(
            f"{label} has no samples: pass inputs to check_op, or give the OpDef samples="
        )
    samples = list(opdef.samples(np.random.default_rng(seed)))
    if not samples:
        raise ValueError(f"{label}: its samples function returned no samples")
    return samples


def _result(opdef: OpDef, reports: list[SampleReport], needs: tuple[str, ...]) -> OpCheckResult:
    worst = max((e for r in reports for c, e in r.checks if c == GRADIENTS and e is not None),
                default=0.0)
    done = {c for r in reports for c, _ in r.checks}
    if SECOND_ORDER in done:  # compared on some sample: the op counts as compared
        done.discard(SECOND_ORDER_BUILT)
    return OpCheckResult(opdef.name, len(reports), opdef.differentiable, worst,
                         tuple(c for c in CHECKS if c in done), needs, tuple(reports))


def _resolve(op: str | OpDef | RegisteredOp) -> tuple[RegisteredOp, str]:
    if isinstance(op, str):
        op = get_registry().get(op)
    if isinstance(op, OpDef):
        reg = get_registry().ops.get(op.name)
        if reg is None or reg.opdef is not op:
            return RegisteredOp(op, _UNREGISTERED), f"op {op.name!r}"
        op = reg
    if isinstance(op, RegisteredOp):
        return op, f"op {op.opdef.name!r} from plugin {op.plugin.describe()}"
    raise TypeError(f"check_op: op must be a name, an OpDef or a RegisteredOp, got {op!r:.60}")
