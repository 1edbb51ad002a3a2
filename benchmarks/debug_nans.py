"""What ``autodag.debug_nans`` costs: nothing outside the context, the checks inside.

Three small workloads (a compiled scalar program, ``grad`` of the demo MLP's loss, and
``evaluate`` of an elementwise expression on 1e5 floats) are timed, in turns in one run:

- ``off``: the normal path (the one global read per call the context adds);
- ``bypassed``: the same with that read removed (``debugnans.ACTIVE`` and ``mode``
  patched out of the modules calling them): the path without the feature;
- ``on``: inside ``debug_nans()``: every value and contribution checked.

Medians go to ``benchmarks/DEBUG_NANS.md``. ``python benchmarks/debug_nans.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import autodag as ad
from autodag import compiled, debugnans, execute
from autodag.demo_model import mlp, two_spirals

OUT = Path(__file__).resolve().parent / "DEBUG_NANS.md"


def _workloads() -> dict[str, Callable[[], Any]]:
    with ad.Graph():
        a, b = ad.Placeholder(name="a"), ad.Placeholder(name="b")
        z = (a * b + a) / (1 + b * b)
    prog = ad.compile(z, wrt=[a, b], inputs=[a, b])
    rng = np.random.default_rng(0)
    xs, ts = two_spirals(100, rng)
    with ad.Graph():
        x, t = ad.Placeholder(name="x"), ad.Placeholder(name="t", dtype=np.int64)
        params, _, loss = mlp(x, t, rng, 32)
    feed = {x: xs, t: ts}
    with ad.Graph():
        v = ad.Variable(rng.uniform(0.5, 2.0, 100_000), name="v")
        e = ad.ops.sum(ad.ops.exp(-v) * v / (1 + v * v))
    return {
        "compiled scalar program (a*b+a)/(1+b*b)": lambda: prog(0.5, 1.5),
        "grad of the demo MLP's loss (200 x 2-32-32-2)": lambda: ad.grad(loss, params, feed),
        "evaluate sum(exp(-v)*v/(1+v*v)), 1e5 floats": lambda: ad.evaluate(e),
    }


def _time(fn: Callable[[], Any], budget: float) -> float:
    """Seconds per call: the median of 7 timings of a batch sized to ``budget``."""
    fn()
    n, t0 = 1, time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget / one))
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


class _Bypassed:
    """The calling modules' ``debugnans`` with the per-call test answering at once."""

    ACTIVE = 0
    Checked = debugnans.Checked
    run_checked = staticmethod(debugnans.run_checked)

    @staticmethod
    def mode() -> None:
        return None


def main() -> None:
    """Time every workload off, bypassed and on; write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings")
    args = parser.parse_args()
    budget = 0.05 if args.quick else 0.3
    rows = []
    for name, fn in _workloads().items():
        times: dict[str, list[float]] = {"off": [], "bypassed": [], "on": []}
        for _ in range(3):  # in turns, so drift hits all three alike
            times["off"].append(_time(fn, budget))
            execute.debugnans = compiled.debugnans = _Bypassed  # type: ignore[assignment]
            try:
                times["bypassed"].append(_time(fn, budget))
            finally:
                execute.debugnans = compiled.debugnans = debugnans
            with np.errstate(all="ignore"), ad.debug_nans():
                times["on"].append(_time(fn, budget))
        off, byp, on = (statistics.median(times[k]) for k in ("off", "bypassed", "on"))
        rows.append(f"| {name} | {byp * 1e6:.2f} | {off * 1e6:.2f} | {off / byp:.3f}x "
                    f"| {on * 1e6:.1f} | {on / off:.1f}x |")
    text = "\n".join([
        "# debug_nans: its cost outside and inside the context",
        "",
        "Written by `python benchmarks/debug_nans.py`; microseconds per call, medians of",
        "three rounds taken in turns in one run.",
        "",
        "| workload | without the feature | outside debug_nans | ratio | inside | ratio |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
