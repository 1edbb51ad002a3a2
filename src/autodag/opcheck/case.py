"""One sample of one op being checked: where it is, its inputs and tolerances, what
passed so far, and the comparison every check ends in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from ..opdef import OpDef, Sample
from .recording import OpState
from .results import CHECKS, OpCheckError, SampleReport

_FLOAT_KINDS: Final = "f"


def is_float(x: Any) -> bool:
    """Whether ``x`` is a float (array or scalar): inputs that are differentiated."""
    return isinstance(x, float) or np.result_type(x).kind in _FLOAT_KINDS


@dataclass
class Case:
    """The state of checking one sample; the check functions take it first."""

    state: OpState
    index: int
    #: The sample's input shapes and attributes, as error messages give them.
    description: str
    #: ``"op 'x' from plugin ..., sample k (description)"``: how failures begin.
    where: str
    inputs: tuple[Any, ...]
    attrs: dict[str, Any]
    rng: np.random.Generator
    eps: float
    rtol: float
    atol: float
    #: Largest error of each check passed so far (None: nothing compared).
    errors: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: The check under way, which a failure is credited to (None: the forward call).
    running: str | None = None

    @classmethod
    def of(cls, state: OpState, label: str, sample: Sample, k: int, seed: int, eps: float,
           rtol: float, atol: float) -> Case:
        """The case of sample ``k`` of the op ``label`` names, with its own random stream."""
        shapes = ", ".join(str(np.shape(x)) for x in sample.inputs)
        extra = f" with {dict(sample.attrs)}" if sample.attrs else ""
        description = f"input shapes {shapes}{extra}"
        return cls(state, k, description, f"{label}, sample {k} ({description})",
                   tuple(sample.inputs), dict(sample.attrs), np.random.default_rng([seed, k]),
                   eps, rtol, atol)

    @property
    def opdef(self) -> OpDef:
        """The definition of the op being checked."""
        return self.state.registered.opdef

    def fail(self, msg: str) -> OpCheckError:
        """The error to raise for a defect, prefixed with the op and sample."""
        return OpCheckError(f"{self.where}: {msg}")

    def passed(self, check: str, error: float | None) -> None:
        """Record a passed check; over several runs, its largest error."""
        prev = self.errors.get(check)
        self.errors[check] = error if prev is None else max(prev, error or 0.0)

    def input_name(self, i: int) -> str:
        """``input i ('name')``, as messages name an input."""
        names = self.opdef.input_names
        return f"input {i} ({names[i]!r})" if i < len(names) else f"input {i}"

    def report(self) -> SampleReport:
        """What was checked on this sample, in ``CHECKS`` order."""
        checks = tuple((c, self.errors[c]) for c in CHECKS if c in self.errors)
        return SampleReport(self.index, self.description, checks, tuple(self.notes))

    def compare(self, got: Any, want: Any, what: str, got_name: str, want_name: str) -> float:
        """Largest |got - want|; an OpCheckError naming the worst element if any is off."""
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            raise self.fail(f"{what} has shape {got.shape} from {got_name}, but {want.shape} "
                            f"from {want_name}")
        err = np.abs(got - want)
        tol = self.atol + self.rtol * np.abs(want)
        bad = ~(err <= tol)  # NaN counts as a failure
        if np.any(bad):
            score = np.where(np.isnan(err), np.inf, err - tol)
            at = tuple(int(j) for j in np.unravel_index(int(np.argmax(score)), err.shape))
            exc = self.fail(
                f"{what} is wrong at index {at}: {got_name} gave {got[at]:.8g}, "
                f"{want_name} {want[at]:.8g} (|error| {err[at]:.3g} > tolerance "
                f"{tol[at]:.3g}; {int(np.sum(bad))} of {err.size} elements wrong)"
            )
            largest = float(np.max(err))
            exc.max_abs_error = largest if np.isfinite(largest) else None
            raise exc
        return float(np.max(err)) if err.size else 0.0
