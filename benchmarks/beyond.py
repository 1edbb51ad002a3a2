"""Workloads beyond W1-W5, so that gains are not tuned to the published ones: each a
compiled program's value and gradients against the same computed by hand in NumPy,
timed interleaved in this process (``workloads.time_interleaved``), unfused (and fused
as well when numba is installed).

- ``logistic``: ``mean(log(1 + exp(-y * (w*x + b))))`` over 10**6 points, d/dw, d/db;
- ``cubic32``: ``sum((a*x**3 + c*x - t)**2)`` in float32 over 10**6 points, d/da, d/dc;
- ``tanh``: five steps of ``h = tanh(1.1*h + 0.1) * h`` on a 1000 x 1000 array, d/dx;
- ``tanh16``: the same on 16 elements, then ``sum(h / (h*h + 1))``.

``python benchmarks/beyond.py [--budget SECONDS]`` prints one JSON line of seconds per
call (``compare.py`` runs it as its ``beyond`` case).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from workloads import check, time_interleaved  # this directory's

import autodag as ad


def _logistic(rng: np.random.Generator) -> tuple[Any, Callable[[], Any], list[Any]]:
    n = 1_000_000
    xv, yv = rng.standard_normal(n), np.sign(rng.standard_normal(n))
    w0, b0 = 0.5, 0.1

    def baseline() -> Any:
        e = np.exp(-yv * (w0 * xv + b0))
        value = np.mean(np.log(1.0 + e))
        gz = e / (1.0 + e) / n * -yv  # d/d(w*x + b)
        return value, [float(gz @ xv), float(gz.sum())]

    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(n,))
        y = ad.Placeholder(name="y", shape=(n,))
        w, b = ad.Variable(w0, name="w"), ad.Variable(b0, name="b")
        out = ad.ops.mean(ad.ops.log(1.0 + ad.ops.exp(-y * (w * x + b))))
    return (out, [w, b], [x, y]), baseline, [xv, yv]


def _cubic32(rng: np.random.Generator) -> tuple[Any, Callable[[], Any], list[Any]]:
    n = 1_000_000
    xv = rng.standard_normal(n).astype(np.float32)
    tv = (xv * xv).astype(np.float32)
    a0, c0 = np.float32(0.3), np.float32(0.2)

    def baseline() -> Any:
        x2 = xv * xv
        x3 = x2 * xv
        r = a0 * x3
        r += c0 * xv
        r -= tv
        value = np.dot(r, r)
        r *= np.float32(2.0)
        return value, [np.dot(r, x3), np.dot(r, xv)]

    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(n,), dtype=np.float32)
        t = ad.Placeholder(name="t", shape=(n,), dtype=np.float32)
        a, c = ad.Variable(a0, name="a"), ad.Variable(c0, name="c")
        out = ad.ops.sum((a * x**3 + c * x - t) ** 2)
    return (out, [a, c], [x, t]), baseline, [xv, tv]


def _tanh(rng: np.random.Generator, shape: tuple[int, ...], ratio: bool,
          ) -> tuple[Any, Callable[[], Any], list[Any]]:
    xv = rng.standard_normal(shape)

    def baseline() -> Any:
        hs, us = [xv], []
        for _ in range(5):
            u = np.tanh(hs[-1] * 1.1 + 0.1)
            us.append(u)
            hs.append(u * hs[-1])
        h = hs[-1]
        if ratio:
            d = h * h + 1.0
            value, g = np.sum(h / d), (1.0 - h * h) / (d * d)
        else:
            value, g = np.sum(h), np.ones_like(h)
        for u, hk in zip(reversed(us), reversed(hs[:-1]), strict=True):
            g = g * (u + hk * (1.0 - u * u) * 1.1)
        return value, [g]

    with ad.Graph():
        x = ad.Placeholder(name="x", shape=shape)
        h: Any = x
        for _ in range(5):
            h = ad.ops.tanh(h * 1.1 + 0.1) * h
        out = ad.ops.sum(h / (h * h + 1.0)) if ratio else ad.ops.sum(h)
    return (out, [x], [x]), baseline, [xv]


def main() -> None:
    """Time every case and print the seconds per call as one JSON line."""
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timing per case")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    fused = importlib.util.find_spec("numba") is not None
    built = {"logistic": _logistic(rng), "cubic32": _cubic32(rng),
             "tanh": _tanh(rng, (1000, 1000), False), "tanh16": _tanh(rng, (16,), True)}
    times: dict[str, float] = {}
    for name, ((out, wrt, inputs), baseline, values) in built.items():
        case: dict[str, Callable[[], Any]] = {}
        for fuse in ([False, True] if fused else [False]):
            prog = ad.compile(out, wrt=wrt, inputs=inputs, fuse=fuse)
            case["fused" if fuse else "unfused"] = lambda p=prog, v=values: p(*v)
        check(case, baseline, 1e-3 if name == "cubic32" else 1e-9)
        got = time_interleaved(case, baseline, args.budget, args.repeats)
        times.update({f"{name} {k}": v for k, v in got.items()})
    print(json.dumps({"times": times}))


if __name__ == "__main__":
    main()
