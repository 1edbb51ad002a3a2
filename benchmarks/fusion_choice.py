"""Which library should fuse elementwise chains: numexpr or numba? (issue 16)

W4's value and gradient, ``sum(x**3 + 3*x/(x**2 + 1))`` and ``3x^2 + 3/d - 6x^2/d^2``,
written by hand four ways and timed interleaved against W4's hand-written NumPy
baseline, in one process, for sizes from 10 to 10**6:

- ``numexpr 2 expr``: one numexpr expression for the value (with its sum) and one
  for the gradient, what a fuser emitting numexpr can do (numexpr writes one output
  per call);
- ``numba 1 loop``: one compiled loop producing both in a single pass, what a fuser
  emitting numba could do at best;
- ``numba 2 loops``: one loop per output, as a fuser keeping forward and backward
  apart would emit.

Also printed: each library's first-call cost (numba's compilation, numexpr's parse),
which a compiled program pays once per fused kernel. Run:
``python benchmarks/fusion_choice.py [--budget SECONDS]`` (needs both libraries:
``pip install numba numexpr``).

The choice (the ``fusion`` extra is numba): at 10**6 elements numba's one loop ran at
0.05x of the baseline and numexpr's two expressions at 0.15x; beyond W4, numexpr's
interpreter computes divisions and functions one element at a time, so on arrays that
fit the cache a fused numexpr program was slower than the unfused NumPy one (1.05-1.5x
for ``benchmarks/fusion_crossover.py``'s graphs), while numba's vectorized loops were
faster at every size. numba's price is compiling: 50-150 ms per kernel, which programs
pay only once their unfused calls have cost as much.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Fn = Callable[[np.ndarray], Any]


def baseline(x: np.ndarray) -> Any:
    """W4's hand-written NumPy baseline (benchmarks/workloads.py)."""
    x2 = x**2
    d = x2 + 1
    value = np.sum(x**3 + 3 * x / d)
    return value, 3 * x2 + 3 / d - 6 * x2 / (d * d)


def numexpr_two() -> tuple[Fn, float]:
    """Two numexpr expressions, and the cost of the first call."""
    import numexpr as ne

    def run(x: np.ndarray) -> Any:
        value = ne.evaluate("sum(x**3 + 3*x/(x**2 + 1))", local_dict={"x": x})
        grad = ne.evaluate("3*x**2 + 3/(x**2+1) - 6*x**2/((x**2+1)*(x**2+1))",
                           local_dict={"x": x})
        return float(value), grad

    t0 = time.perf_counter()
    run(np.ones(4))
    return run, time.perf_counter() - t0


def numba_kernels() -> tuple[Fn, Fn, float]:
    """One fused loop for both outputs, one loop per output, and numba's compile time."""
    import numba

    @numba.njit(cache=False, fastmath=False)
    def both(x: np.ndarray, g: np.ndarray) -> float:
        s = 0.0
        for i in range(x.shape[0]):
            xi = x[i]
            x2 = xi * xi
            d = x2 + 1.0
            s += x2 * xi + 3.0 * xi / d
            g[i] = 3.0 * x2 + 3.0 / d - 6.0 * x2 / (d * d)
        return s

    @numba.njit(cache=False)
    def value(x: np.ndarray) -> float:
        s = 0.0
        for i in range(x.shape[0]):
            xi = x[i]
            s += xi**3 + 3.0 * xi / (xi * xi + 1.0)
        return s

    @numba.njit(cache=False)
    def grad(x: np.ndarray, g: np.ndarray) -> None:
        for i in range(x.shape[0]):
            xi = x[i]
            x2 = xi * xi
            d = x2 + 1.0
            g[i] = 3.0 * x2 + 3.0 / d - 6.0 * x2 / (d * d)

    def one(x: np.ndarray) -> Any:
        g = np.empty_like(x)
        return both(x, g), g

    def two(x: np.ndarray) -> Any:
        g = np.empty_like(x)
        v = value(x)
        grad(x, g)
        return v, g

    t0 = time.perf_counter()
    one(np.ones(4))
    two(np.ones(4))
    return one, two, time.perf_counter() - t0


def timed(fns: dict[str, Fn], x: np.ndarray, budget: float) -> dict[str, float]:
    """Median seconds per call of each, the calls interleaved round by round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    deadline = time.perf_counter() + budget
    inner = max(1, int(2e5 // max(x.size, 1)))
    while time.perf_counter() < deadline or len(times["numpy baseline"]) < 5:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn(x)
            times[name].append((time.perf_counter() - t0) / inner)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    """Print the ratios to the baseline for each size, and the first-call costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per size")
    args = parser.parse_args()
    ne_fn, ne_first = numexpr_two()
    nb_one, nb_two, nb_first = numba_kernels()
    fns: dict[str, Fn] = {"numpy baseline": baseline, "numexpr 2 expr": ne_fn,
                          "numba 1 loop": nb_one, "numba 2 loops": nb_two}
    rng = np.random.default_rng(1)
    print(f"first call: numexpr {ne_first * 1e3:.1f} ms, numba (3 kernels) "
          f"{nb_first * 1e3:.0f} ms")
    print("| n | baseline | " + " | ".join(k for k in fns if k != "numpy baseline") + " |")
    print("|---" * len(fns) + "|---|")
    for n in (10, 1_000, 10_000, 100_000, 1_000_000):
        x = rng.standard_normal(n)
        ref_v, ref_g = baseline(x)
        for name, fn in fns.items():
            v, g = fn(x)
            assert np.allclose(v, ref_v, rtol=1e-10) and np.allclose(g, ref_g), name
        got = timed(fns, x, args.budget)
        base = got["numpy baseline"]
        cells = " | ".join(f"{got[k] / base:.2f}x" for k in fns if k != "numpy baseline")
        print(f"| {n} | {base * 1e6:.1f} us | {cells} |")


if __name__ == "__main__":
    main()
