"""W9: the gradient of a ridge-regression loss on a Dask cluster, autodag against dask.array.

The loss is ``mean((X @ w + b - y)**2) + lam * sum(w**2)`` on a row-chunked float64
data set held on a ``dask.distributed.LocalCluster`` of two worker processes with one
thread each: X is 4,000,000 x 50 (1.6 GB) in 16 chunks of rows, generated on the workers
with ``dask.array.random`` from a fixed seed and persisted there once; the parameters
``w`` (50,) and ``b`` are small NumPy values on the client.

One step is the loss and both gradients, brought back with one ``dask.compute``:

- baseline: the gradient formulas written by hand with dask.array,
  ``r = X @ w + b - y``, ``gw = 2/n * X.T @ r + 2*lam*w``, ``gb = 2*mean(r)``;
- autodag: the loss built once as an autodag graph (Placeholders fed the dask arrays,
  Variables holding the NumPy parameters); each step ``autodag.evaluate`` and
  ``autodag.grad`` return lazy dask arrays, and one ``dask.compute`` runs them.

Both are checked against each other (rtol 1e-10), warmed up, then timed in turns in the
same run; the medians and their ratio (goal <= 1.15x) go to ``benchmarks/W9.md`` and,
as the last line of stdout, a JSON object (for ``benchmarks/run.py``).

``python benchmarks/w9_dask.py`` (about a minute; needs ``pip install -e '.[dask]'``);
``--quick`` runs 400,000 rows and fewer repeats for a smoke test, ``--scheduler
tcp://host:8786`` uses a running cluster instead of starting one.
"""

# dask's annotations are partial: calling its unannotated functions is fine here.
# mypy: disallow-untyped-calls=False

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
GOAL = 1.15
FULL = {"rows": 4_000_000, "cols": 50, "chunks": 16, "repeats": 11}
QUICK = {"rows": 400_000, "cols": 50, "chunks": 8, "repeats": 5}
LAM = 0.1
WARMUP = 2
Step = Callable[[], tuple[float, Any, Any]]


def make_data(n: int, d: int, chunks: int, seed: int = 0) -> tuple[Any, Any]:
    """X (n, d) and y (n,), row-chunked, generated lazily from ``seed`` (not persisted)."""
    import dask.array as da

    rows = -(-n // chunks)
    rng = da.random.default_rng(seed)
    x = rng.standard_normal((n, d), chunks=(rows, d))
    w_true = np.linspace(-1.0, 1.0, d)
    y = x @ w_true + 0.5 + 0.1 * rng.standard_normal(n, chunks=rows)
    return x, y


def baseline_step(x: Any, y: Any, w: Any, b: float, lam: float) -> tuple[float, Any, Any]:
    """The loss and its gradients by hand with dask.array, in one ``dask.compute``."""
    import dask.array as da
    from dask.base import compute

    n = x.shape[0]
    r = x @ w + b - y
    loss = da.mean(r**2) + lam * np.sum(w**2)
    gw = (2.0 / n) * (x.T @ r) + 2.0 * lam * w
    gb = 2.0 * da.mean(r)
    loss_v, gw_v, gb_v = compute(loss, gw, gb)
    return float(loss_v), np.asarray(gw_v), np.asarray(gb_v)


def _ridge_graph(shape: tuple[int, int], w0: Any, b0: float, lam: float) -> tuple[Any, ...]:
    """The ridge-regression loss as an autodag graph: (X, y, w, b, loss)."""
    import autodag as ad

    n, d = shape
    with ad.Graph():
        xp = ad.Placeholder(name="X", shape=(n, d))
        yp = ad.Placeholder(name="y", shape=(n,))
        w = ad.Variable(np.array(w0, dtype=np.float64), name="w")
        b = ad.Variable(float(b0), name="b")
        loss = ad.ops.mean((xp @ w + b - yp) ** 2) + lam * ad.ops.sum(w**2)
    return xp, yp, w, b, loss


def autodag_step_factory(x: Any, y: Any, w0: Any, b0: float, lam: float) -> Step:
    """The autodag graph of the loss, built once; a step evaluates it and its gradients
    lazily on the dask arrays and runs them with one ``dask.compute``."""
    from dask.base import compute

    import autodag as ad

    xp, yp, w, b, loss = _ridge_graph(x.shape, w0, b0, lam)
    feed = {xp: x, yp: y}

    def step() -> tuple[float, Any, Any]:
        value = ad.evaluate(loss, feed_dict=feed)
        gw, gb = ad.grad(loss, [w, b], feed_dict=feed)
        loss_v, gw_v, gb_v = compute(value, gw, gb)
        return float(loss_v), np.asarray(gw_v), np.asarray(gb_v)

    return step


def compiled_step_factory(x: Any, y: Any, w0: Any, b0: float, lam: float) -> Step:
    """The same graph as a compiled program: one call gives the loss and both gradients
    (lazily), which one ``dask.compute`` runs."""
    from dask.base import compute

    import autodag as ad

    xp, yp, w, b, loss = _ridge_graph(x.shape, w0, b0, lam)
    prog = ad.compile(loss, [w, b], inputs=[xp, yp])

    def step() -> tuple[float, Any, Any]:
        value, (gw, gb) = prog(x, y)
        loss_v, gw_v, gb_v = compute(value, gw, gb)
        return float(loss_v), np.asarray(gw_v), np.asarray(gb_v)

    return step


def check(a: tuple[float, Any, Any], b: tuple[float, Any, Any]) -> str:
    """"ok" if two steps' loss and gradients agree to rtol 1e-10, else what differs."""
    for name, u, v in zip(("loss", "d/dw", "d/db"), a, b):
        if not np.allclose(u, v, rtol=1e-10, atol=0.0):
            return f"{name} differs: {u!r} vs {v!r}"
    return "ok"


def timed(step: Step) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start (or join) the cluster, persist the data, check, time; the results."""
    from dask.distributed import Client, LocalCluster, wait

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        t0 = time.perf_counter()
        x, y = make_data(args.rows, args.cols, args.chunks)
        x, y = client.persist([x, y])
        wait([x, y])
        setup_s = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        w0 = rng.standard_normal(args.cols) * 0.1
        b0 = 0.25
        steps: dict[str, Step] = {
            "baseline": lambda: baseline_step(x, y, w0, b0, LAM),
            "autodag": autodag_step_factory(x, y, w0, b0, LAM),
            "compiled": compiled_step_factory(x, y, w0, b0, LAM),
        }
        ref = steps["baseline"]()
        verdicts = {check(ref, steps[name]()) for name in ("autodag", "compiled")}
        verdict = "ok" if verdicts == {"ok"} else "; ".join(sorted(verdicts - {"ok"}))
        times: dict[str, list[float]] = {name: [] for name in steps}
        for k in range(WARMUP + args.repeats):
            # Alternate, and swap who goes first every round.
            order = list(steps) if k % 2 == 0 else list(steps)[::-1]
            for name in order:
                t = timed(steps[name])
                if k >= WARMUP:
                    times[name].append(t)
        workers = len(client.scheduler_info()["workers"])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    base = statistics.median(times["baseline"])
    ad_t = statistics.median(times["autodag"])
    comp_t = statistics.median(times["compiled"])
    return {
        "case": "W9",
        "rows": args.rows, "cols": args.cols, "chunks": args.chunks, "workers": workers,
        "cluster": args.scheduler or "LocalCluster(processes=True, threads_per_worker=1)",
        "setup_s": setup_s, "check": verdict, "repeats": args.repeats,
        "times": {"baseline": base, "autodag": ad_t, "compiled": comp_t},
        "all_times": times, "ratio": ad_t / base, "compiled_ratio": comp_t / base,
    }


def report(r: dict[str, Any], quick: bool) -> str:
    """The Markdown of ``W9.md``."""
    gb = r["rows"] * r["cols"] * 8 / 1e9

    def row(label: str, key: str, ratio: float) -> str:
        verdict = "met" if ratio <= GOAL else "missed"
        return (f"| W9 | {label} | {r['times']['baseline'] * 1e3:.1f} ms | "
                f"{r['times'][key] * 1e3:.1f} ms | {ratio:.2f}x (goal <= {GOAL:g}x: "
                f"{verdict}) | {spread('baseline')} / {spread(key)} |")

    def spread(name: str) -> str:
        ts = r["all_times"][name]
        return f"{min(ts) * 1e3:.0f}-{max(ts) * 1e3:.0f} ms"

    return "\n".join([
        "# W9: ridge-regression gradient on a Dask cluster",
        "",
        f"Generated by `python benchmarks/w9_dask.py{' --quick' if quick else ''}` on "
        f"{platform.machine()} with {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, Dask {version('dask')}, "
        f"distributed {version('distributed')}. Cluster: {r['cluster']}, "
        f"{r['workers']} workers. Data: X {r['rows']:,} x {r['cols']} float64 "
        f"({gb:.2f} GB) in {r['chunks']} row chunks and y, generated on the workers and "
        f"persisted once ({r['setup_s']:.1f} s). One step = the loss "
        "`mean((X @ w + b - y)**2) + lam * sum(w**2)` and its gradients for `w` (50,) "
        "and `b`, built lazily and brought back to the client with one `dask.compute`. "
        f"The results agree to rtol 1e-10: {r['check']}. After {WARMUP} warm-up "
        f"rounds, {r['repeats']} rounds alternate the three (the order turns around each "
        "round); times are medians, ratio = autodag / baseline in the same run.",
        "",
        "| case | contender | baseline | contender | ratio | range (baseline / contender) |",
        "|---|---|---|---|---|---|",
        row("autodag evaluate + grad", "autodag", r["ratio"]),
        row("autodag compiled", "compiled", r["compiled_ratio"]),
        "",
        "Baseline: the gradient written by hand with dask.array, `r = X @ w + b - y`, "
        "`gw = 2/n * X.T @ r + 2*lam*w`, `gb = 2*mean(r)`. autodag: the same loss as an "
        "autodag graph built once, `autodag.evaluate(loss)` and `autodag.grad(loss, [w, b])` "
        "fed the dask arrays each step (two requests, so the forward graph is built twice "
        "on the client), or one call of `autodag.compile(loss, [w, b], inputs=[X, y])` "
        "giving the loss and both gradients.",
        "",
    ])


def main() -> None:
    """Parse the options, run, write ``W9.md`` and print the JSON result last."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['rows']:,} rows, {QUICK['repeats']} rounds (a smoke run)")
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--cols", type=int, default=None)
    p.add_argument("--chunks", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    p.add_argument("--scheduler", default=None,
                   help="address of a running scheduler (tcp://host:8786) instead of a "
                   "LocalCluster")
    p.add_argument("--out", default=str(HERE / "W9.md"),
                   help="Markdown report (default %(default)s; '-' for none)")
    args = p.parse_args()
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        sys.exit(f"W9 needs dask and distributed ({exc}); pip install -e '.[dask]'")
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    r = run(args)
    text = report(r, args.quick)
    if args.out != "-":
        Path(args.out).write_text(text)
    print(text, file=sys.stderr)
    del r["all_times"]
    print(json.dumps(r))


if __name__ == "__main__":
    main()
