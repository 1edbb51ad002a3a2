"""What ``check_op`` reports: the check names, the error it raises, its result types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The backward rule against central differences of the forward.
GRADIENTS: Final = "gradients"
#: ``autodag.gradients`` (the rule run on nodes) against the rule run on numbers.
SYMBOLIC: Final = "symbolic gradients"
#: ``autodag.jvp`` against central differences along a random tangent.
JVP: Final = "jvp"
#: A Hessian-vector product against central differences of the backward rule.
SECOND_ORDER: Final = "second order"
#: The same graph built and evaluated, not compared: the gradient has a kink there.
SECOND_ORDER_BUILT: Final = "second order (built only)"
#: Static shape inference against the real forward's shape and dtype.
STATIC_SHAPES: Final = "static shapes"
#: ``autodag.compile`` (which writes the inline templates) against the interpreter.
INLINE: Final = "inline templates"
#: float32 inputs give float32 values and gradients.
FLOAT32: Final = "float32"
#: Every check, in the order results list them.
CHECKS: Final = (GRADIENTS, SYMBOLIC, JVP, SECOND_ORDER, SECOND_ORDER_BUILT, STATIC_SHAPES,
                 INLINE, FLOAT32)


#: The pseudo-check of a failure before any check passed: the forward call itself.
FORWARD: Final = "forward"


class OpCheckError(AssertionError):
    """``check_op`` found a defect: the message names the op, sample, check and element."""

    #: The check that failed (one of ``CHECKS``, or ``FORWARD``), set by ``check_op``.
    check: str | None = None
    #: The failing sample's checks that passed before the failure, set by ``check_op``.
    report: SampleReport | None = None
    #: The largest |error| of a failed comparison (None: no numbers compared, or NaN).
    max_abs_error: float | None = None


@dataclass(frozen=True)
class SampleReport:
    """What ``check_op`` checked on one sample, with the largest error of each check."""

    index: int
    #: The sample's input shapes and attributes, as error messages give them.
    description: str
    #: (check, largest |error| over the compared elements), in ``CHECKS`` order; the
    #: error is None for a check that compares no numbers (static shapes, float32, a
    #: second order only built).
    checks: tuple[tuple[str, float | None], ...]
    #: Why a check was weakened on this sample (a kink: no finite differences to trust).
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: the sample, and each check with its largest error."""
        parts = [c if e is None else f"{c} (max |error| {e:.2g})" for c, e in self.checks]
        return f"sample {self.index} ({self.description}): {', '.join(parts) or 'no checks'}"


@dataclass(frozen=True)
class OpCheckResult:
    """What ``check_op`` checked: samples, checks, per-sample errors, other plugins' ops."""

    op: str
    samples: int
    gradients_checked: bool
    #: Largest |backward rule - central differences| over every checked element.
    max_abs_error: float
    #: The checks run on at least one sample, in ``CHECKS`` order.
    checks: tuple[str, ...] = ()
    #: Ops of other plugins (not the op's own, not the built-in one) that the op's rules
    #: and templates use, as ``"op (plugin)"``: those plugins must be loaded too.
    needs: tuple[str, ...] = ()
    #: One report per sample.
    details: tuple[SampleReport, ...] = ()


# Tracebacks, reprs and pytest's report name the classes where op authors import them
# from (set after the dataclasses are built: they read their own module's namespace).
for _public in (OpCheckError, SampleReport, OpCheckResult):
    _public.__module__ = "autodag.testing"
