"""W3 (MLP 784-256-256-10, tanh, softmax cross-entropy) on another array backend.

``python benchmarks/w3_backend.py --backend cupy`` times one training step's loss and
six gradients with autodag (``grad`` and a compiled program) against the same step
written by hand in that library, alternating the two in one run. ``--backend strict``
(array-api-strict, on the CPU) and ``--backend numpy`` run the same code where there is
no GPU: they show the engine assumes nothing of NumPy, not GPU speed. Exits 0 with a
"skipped" line when the library (or, for CuPy, a GPU) is missing.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import autodag as ad

BATCH, SIZES = 256, (784, 256, 256, 10)


def _namespace(name: str) -> tuple[Any, Callable[[Any], Any], Callable[[], None]] | str:
    """(xp, convert a NumPy array, wait for the device) or why the backend is missing."""
    if name == "numpy":
        return np, lambda a: a, lambda: None
    if name == "strict":
        try:
            import array_api_strict as xs
        except ImportError:
            return "array-api-strict is not installed (pip install array-api-strict)"
        return xs, xs.asarray, lambda: None
    try:
        import cupy as cp
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda12x, on a machine with a GPU)"
    try:
        cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy without a usable GPU
        return f"CuPy found no GPU: {exc}"
    return cp, cp.asarray, cp.cuda.Device().synchronize


def _by_hand(xp: Any, params: list[Any], x: Any, onehot: Any) -> tuple[Any, list[Any]]:
    """The step written directly in the backend's array-API functions."""
    w1, b1, w2, b2, w3, b3 = params
    h1 = xp.tanh(x @ w1 + b1)
    h2 = xp.tanh(h1 @ w2 + b2)
    z = h2 @ w3 + b3
    m = xp.max(z, axis=1, keepdims=True)
    e = xp.exp(z - m)
    s = xp.sum(e, axis=1, keepdims=True)
    loss = xp.mean(xp.log(s[:, 0]) + m[:, 0] - xp.sum(z * onehot, axis=1))
    dz = (e / s - onehot) / BATCH
    dh2 = (dz @ xp.matrix_transpose(w3)) * (1 - h2 * h2)
    dh1 = (dh2 @ xp.matrix_transpose(w2)) * (1 - h1 * h1)
    t = xp.matrix_transpose
    return loss, [t(x) @ dh1, xp.sum(dh1, axis=0), t(h1) @ dh2, xp.sum(dh2, axis=0),
                  t(h2) @ dz, xp.sum(dz, axis=0)]


def main(argv: list[str] | None = None) -> int:
    """Time the backend's W3 step by hand and with autodag; print the medians."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["cupy", "strict", "numpy"], default="cupy")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    got = _namespace(args.backend)
    if isinstance(got, str):
        print(f"W3 on {args.backend}: skipped: {got}")
        return 0
    xp, conv, sync = got
    rng = np.random.default_rng(0)
    dt = np.dtype(args.dtype)
    params_np = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        params_np.append((rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dt))
        params_np.append((0.1 * rng.standard_normal(fan_out)).astype(dt))
    x_np = rng.standard_normal((BATCH, 784)).astype(dt)
    y_np = rng.integers(0, 10, BATCH)
    params = [conv(a) for a in params_np]
    x, y = conv(x_np), conv(y_np)
    onehot = conv((y_np[:, None] == np.arange(10)).astype(dt))

    with ad.Graph():
        xn, yn = ad.Placeholder(name="x"), ad.Placeholder(name="labels", dtype=int)
        pn = [ad.Variable(v, name=f"p{k}") for k, v in enumerate(params)]
        h = xn
        for k in range(3):
            h = h @ pn[2 * k] + pn[2 * k + 1]
            if k < 2:
                h = ad.ops.tanh(h)
        loss = ad.ops.mean(ad.ops.softmax_cross_entropy(h, yn))
    prog = ad.compile(loss, wrt=pn, inputs=[xn, yn])
    cases: dict[str, Callable[[], Any]] = {
        "by hand": lambda: _by_hand(xp, params, x, onehot),
        "autodag grad": lambda: ad.grad(loss, pn, {xn: x, yn: y}),
        "autodag compiled": lambda: prog(x, y),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for f in cases.values():  # warm-up: plans, kernels, caches
        f()
        sync()
    for _ in range(args.repeats):
        for k, f in cases.items():
            t0 = time.perf_counter()
            f()
            sync()
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times["by hand"])
    print(f"W3 on {args.backend} ({args.dtype}), median of {args.repeats} per case:")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"  {k:<18} {med * 1e3:8.3f} ms  {med / base:5.2f}x by hand")
    return 0


if __name__ == "__main__":
    sys.exit(main())
