"""What compiling costs: ``ad.compile`` and the first calls of the program, per node.

``python benchmarks/compile_cost.py chain --nodes 10000`` builds one graph, times
``ad.compile`` and the program's first call (together "compile + first call"), its
second call and the median of a few later calls, in this process, and prints a JSON
line; ``run.py`` starts one process per case. Cases:

- ``chain``: ``h = tanh(h * 0.9)`` on a 16-element array Variable, then ``sum(h)``;
- ``dag``: a random DAG of elementwise ops on four 16-element arrays (fixed seed), with
  no repeated block for the compiler to turn into a loop;
- ``scalar``: W2's chain ``x = (x*a + b) / (1 + x**2)`` on Placeholders fed Python floats;
- ``loop-scalar``: ``y = tanh(y*y + 0.5)`` 60 times on a scalar Variable;
- ``loop-residual``: ``h = tanh(h * 0.9) + h`` 200 times on ``np.ones(16)``, then ``sum(h)``.

``--nodes`` is the wanted size of the graph (``len(ad.topological_sort(loss))``); the
case gets as close as its repeated step allows and reports the real count. A compile
or call that raises is reported as ``"error: <ExceptionType>"`` instead of a time.
After the timings, the program's value and gradients are checked against
``ad.evaluate`` and ``ad.grad`` (``"check"`` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import autodag as ad

#: A built case: the loss, the nodes to differentiate for, the Placeholders (fed in
#: this order) and the values to feed them.
Built = tuple[ad.Node, list[ad.Node], list[ad.Node], list[Any]]


def _chain(steps: int) -> Built:
    with ad.Graph():
        x = ad.Variable(np.full(16, 0.1), name="x")
        h: Any = x
        for _ in range(steps):
            h = ad.ops.tanh(h * 0.9)
        loss = ad.ops.sum(h)
    return loss, [x], [], []


def _scalar(steps: int) -> Built:
    with ad.Graph():
        x0, a, b = (ad.Placeholder(name=s) for s in ("x0", "a", "b"))
        x: Any = x0
        for _ in range(steps):
            x = (x * a + b) / (1 + x**2)
    return x, [x0, a, b], [x0, a, b], [0.5, 0.9, 0.1]


def _loop_scalar(steps: int) -> Built:
    with ad.Graph():
        y0 = ad.Variable(0.3, name="y")
        y: Any = y0
        for _ in range(steps):
            y = ad.ops.tanh(y * y + 0.5)
    return y, [y0], [], []


def _loop_residual(steps: int) -> Built:
    with ad.Graph():
        x = ad.Variable(np.ones(16), name="x")
        h: Any = x
        for _ in range(steps):
            h = ad.ops.tanh(h * 0.9) + h
        loss = ad.ops.sum(h)
    return loss, [x], [], []


def _dag(units: int) -> Built:
    """``units`` random ops, each on one or two of the 64 newest nodes; the nodes no op
    used are added up (a balanced tree of adds) and summed. Values stay in [-1, 1]
    until that final sum."""
    rng = np.random.default_rng(0)
    with ad.Graph():
        xs = [ad.Variable(rng.uniform(-1.0, 1.0, 16), name=f"x{k}") for k in range(4)]
        pool: list[Any] = list(xs)
        used: set[int] = set()
        for _ in range(units):
            window = min(len(pool), 64)
            i, j = (len(pool) - 1 - int(r) for r in rng.integers(0, window, 2))
            a, b = pool[i], pool[j]
            kind = int(rng.integers(4))
            if kind == 0:
                node = a * b
            elif kind == 1:
                node = ad.ops.tanh(a + b)
            elif kind == 2:
                node = ad.ops.sin(a)
                j = i
            else:
                node = (a - b) * 0.5
            used.update((i, j))
            pool.append(node)
        rest = [n for k, n in enumerate(pool) if k not in used]
        while len(rest) > 1:
            rest = [rest[k] + rest[k + 1] if k + 1 < len(rest) else rest[k]
                    for k in range(0, len(rest), 2)]
        loss = ad.ops.sum(rest[0])
    return loss, list(xs), [], []


#: Each case: its builder (from a number of repeated steps) and the default size, in
#: nodes for the sized cases, in steps for the two loop-built examples.
CASES: dict[str, tuple[Callable[[int], Built], int, bool]] = {
    "chain": (_chain, 1000, True),
    "dag": (_dag, 10000, True),
    "scalar": (_scalar, 1000, True),
    "loop-scalar": (_loop_scalar, 60, False),
    "loop-residual": (_loop_residual, 200, False),
}


def _size(build: Callable[[int], Built], steps: int) -> int:
    return len(ad.topological_sort(build(steps)[0]))


def _steps_for(build: Callable[[int], Built], nodes: int) -> int:
    """The number of steps whose graph has about ``nodes`` nodes (two trial builds)."""
    if build is _dag:  # not linear in its steps: scale a trial build once
        trial = max(nodes // 2, 1)
        return max(round(trial * nodes / _size(build, trial)), 1)
    one, two = _size(build, 1), _size(build, 2)
    per = two - one
    return max(round((nodes - (one - per)) / per), 1)


#: The messages of the errors reported (as ``"error: <ExceptionType>"``) by this run.
ERRORS: dict[str, str] = {}


def _error(e: BaseException, where: str) -> str:
    ERRORS[where] = f"{type(e).__name__}: {e}"[:300]
    return f"error: {type(e).__name__}"


def _close(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                            rtol=1e-9, atol=1e-12))


def _check(prog: Any, built: Built) -> str:
    """``"ok"`` if the program agrees with ``ad.evaluate`` and ``ad.grad``."""
    loss, wrt, inputs, feed = built
    try:
        value, grads = prog(*feed)
        feed_dict = dict(zip(inputs, feed, strict=True))
        ref_value = ad.evaluate(loss, feed_dict)
        ref_grads = ad.grad(loss, wrt, feed_dict)
    except Exception as e:
        return _error(e, "check")
    if not _close(value, ref_value) or len(grads) != len(ref_grads) or not all(
        _close(g, r) for g, r in zip(grads, ref_grads, strict=True)
    ):
        return "mismatch"
    return "ok"


def measure(built: Built, calls: int) -> tuple[dict[str, float | str], str]:
    """Seconds of ``ad.compile``, the first call, both together, the second call and the
    median of the later calls (or an error string each); and the check's verdict."""
    loss, wrt, inputs, feed = built
    times: dict[str, float | str] = {}
    t0 = time.perf_counter()
    try:
        prog = ad.compile(loss, wrt=wrt, inputs=inputs or None)
    except Exception as e:
        times["compile"] = times["compile + first call"] = _error(e, "compile")
        return times, "not run"
    t1 = time.perf_counter()
    times["compile"] = t1 - t0
    try:
        prog(*feed)
    except Exception as e:
        times["first call"] = times["compile + first call"] = _error(e, "first call")
        return times, "not run"
    t2 = time.perf_counter()
    times["first call"] = t2 - t1
    times["compile + first call"] = t2 - t0
    samples: list[float] = []
    try:
        # At least ``calls`` later calls; more (up to 200) while they add up to < 0.2 s.
        while len(samples) <= calls or (sum(samples) < 0.2 and len(samples) <= 200):
            t0 = time.perf_counter()
            prog(*feed)
            samples.append(time.perf_counter() - t0)
    except Exception as e:
        key = "later call" if samples else "second call"
        times[key] = _error(e, key)
    if samples:
        times["second call"] = samples[0]
    if len(samples) > 1:
        times["later call"] = statistics.median(samples[1:])
    return times, _check(prog, built)


def run_case(case: str, nodes: int | None, calls: int) -> dict[str, Any]:
    """Build and measure one case; the JSON-ready result."""
    build, default, sized = CASES[case]
    steps = _steps_for(build, nodes or default) if sized else nodes or default
    t0 = time.perf_counter()
    built = build(steps)
    build_s = time.perf_counter() - t0
    count = len(ad.topological_sort(built[0]))
    times, check = measure(built, calls)
    per_node = {k: v / count * 1e6 for k, v in times.items() if isinstance(v, float)}
    return {"case": case, "steps": steps, "nodes": count, "build_s": build_s,
            "times": times, "us_per_node": per_node, "check": check, "errors": ERRORS}


def main(argv: Sequence[str] | None = None) -> None:
    """Run one case and print its timings as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("--nodes", type=int, default=0,
                   help="wanted graph size (chain, dag, scalar); steps for loop-* cases")
    p.add_argument("--calls", type=int, default=5,
                   help="later calls to take the median of, at least (more while they "
                        "take < 0.2 s)")
    args = p.parse_args(argv)
    print(json.dumps(run_case(args.case, args.nodes or None, args.calls)))


if __name__ == "__main__":
    main()
