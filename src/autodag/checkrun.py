"""``check_op`` on each sample of an op alone: the outcomes ``autodag check`` prints and
its ``--json`` gives, so that one failing sample does not hide how the others fare."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    # The checks import the compiler and the rest: loaded when a check runs, so that the
    # command line (which shows CHECK_JSON_SCHEMA in its help) starts fast.
    from .registry import RegisteredOp, Registry
    from .testing import SampleReport

__all__ = ["CHECK_JSON_SCHEMA", "HelpFormatter", "OpOutcome", "SampleOutcome", "check_data",
           "check_samples", "op_data"]

#: ``autodag check --json``'s output, as its help describes it.
CHECK_JSON_SCHEMA: Final = """\
--json prints one object (exit codes as without it):
  status          "pass" or "fail" (an op failed, a plugin failed to load, a conflict)
  order           the --order checked (1 or 2)
  plugins         per plugin checked: name, distribution, version, status, ops
    ops           per op: op, status ("pass", "fail", "skipped": no samples, "left out":
                  a conflict), reason (the failure, skip or conflict, else null),
                  needs (other plugins' ops its rules use, "op (plugin)"), samples
      samples     per sample: index, description (input shapes), status, error (the
                  failure's message or null), notes (checks weakened at a kink), checks
        checks    per check run, in order: check (name), status ("pass" or "fail": the
                  check that failed, last), max_abs_error (largest |error|; null for a
                  check comparing no numbers)
  failed_plugins  per plugin that failed to load: name, distribution, version, reason
  conflicts       per op two plugins define: op, providers (plugin names), reason
  summary         passed, failed, skipped: counts of ops
"""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's wrapping of the description, but the schema's lines kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


@dataclass(frozen=True)
class SampleOutcome:
    """One sample checked: what passed (all of it, or what passed before the failure)."""

    index: int
    report: SampleReport | None
    error: Exception | None = None
    #: The check that failed (``testing.CHECKS``, or ``testing.FORWARD``), if known.
    check: str | None = None


@dataclass(frozen=True)
class OpOutcome:
    """Every sample of one op checked, and the other plugins' ops its rules use."""

    op: str
    samples: tuple[SampleOutcome, ...]
    needs: tuple[str, ...]

    @property
    def failure(self) -> SampleOutcome | None:
        """The first sample that failed, if any."""
        return next((s for s in self.samples if s.error is not None), None)

    @property
    def checks(self) -> tuple[str, ...]:
        """The checks passed on some sample, in ``testing.CHECKS`` order, as check_op's."""
        from . import testing

        done = {c for s in self.samples if s.error is None and s.report
                for c, _ in s.report.checks}
        if testing.SECOND_ORDER in done:  # compared on some sample: the op counts as compared
            done.discard(testing.SECOND_ORDER_BUILT)
        return tuple(c for c in testing.CHECKS if c in done)


def check_samples(registered: RegisteredOp, order: int = 2) -> OpOutcome:
    """check_op on each sample of an op with samples, each alone (``order`` 1 or 2)."""
    from . import testing

    opdef = registered.opdef
    assert opdef.samples is not None, "ops without samples are not checked"
    try:
        # check_op's own seed: the same samples, counted (none: check_op says what is wrong).
        count = max(1, len(list(opdef.samples(np.random.default_rng(0)))))
    except Exception:
        count = 1  # check_op raises the samples function's error again, for the report
    outcomes: list[SampleOutcome] = []
    needs: dict[str, None] = {}
    for k in range(count):
        try:
            res = testing.check_op(registered, order=order, sample=k)
        except testing.OpCheckError as exc:
            outcomes.append(SampleOutcome(k, exc.report, exc, exc.check))
        except Exception as exc:
            outcomes.append(SampleOutcome(k, None, exc))
        else:
            outcomes.append(SampleOutcome(k, res.details[0]))
            needs.update(dict.fromkeys(res.needs))
    return OpOutcome(opdef.name, tuple(outcomes), tuple(needs))


def error_text(exc: Exception) -> str:
    """A failure's message; the exception's type too where it is no OpCheckError."""
    from . import testing

    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, testing.OpCheckError) else f"{type(exc).__name__}: {text}"


def op_data(outcome: OpOutcome) -> dict[str, Any]:
    """One op's entry of ``autodag check --json``."""
    failure = outcome.failure
    return {
        "op": outcome.op, "status": "fail" if failure else "pass",
        "reason": error_text(failure.error) if failure and failure.error else None,
        "needs": list(outcome.needs),
        "samples": [_sample_data(s) for s in outcome.samples],
    }


def _sample_data(s: SampleOutcome) -> dict[str, Any]:
    checks = [{"check": c, "status": "pass", "max_abs_error": e}
              for c, e in (s.report.checks if s.report else ())]
    if s.error is not None and s.check is not None:
        largest = getattr(s.error, "max_abs_error", None)
        checks.append({"check": s.check, "status": "fail", "max_abs_error": largest})
    return {
        "index": s.index, "description": s.report.description if s.report else None,
        "status": "pass" if s.error is None else "fail",
        "error": None if s.error is None else error_text(s.error),
        "checks": checks, "notes": list(s.report.notes) if s.report else [],
    }


def check_data(reg: Registry, wanted: list[str], entries: list[tuple[str, dict[str, Any]]],
               order: int, code: int) -> dict[str, Any]:
    """What ``autodag check --json`` prints (``CHECK_JSON_SCHEMA``)."""
    infos = {p.name: p for p in reg.plugins}
    plugins = []
    for name in wanted:
        ops = [data for plugin, data in entries if plugin == name]
        info = infos[name]
        plugins.append({"name": name, "distribution": info.distribution,
                        "version": info.version,
                        "status": "fail" if any(o["status"] == "fail" for o in ops)
                        else "pass", "ops": ops})
    counts = {s: sum(d["status"] == s for _, d in entries) for s in ("pass", "fail", "skipped")}
    return {
        "status": "fail" if code else "pass", "order": order, "plugins": plugins,
        "failed_plugins": [{"name": f.name, "distribution": f.distribution,
                            "version": f.version, "reason": f.reason} for f in reg.failed],
        "conflicts": [{"op": c.op, "providers": [p.name for p in c.providers],
                       "reason": c.describe()} for c in reg.conflicts.values()],
        "summary": {"passed": counts["pass"], "failed": counts["fail"],
                    "skipped": counts["skipped"]},
    }
