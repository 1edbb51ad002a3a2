"""Where fused kernels (numba) start to pay: compiled programs with fusion
forced on at every size against the same programs with ``fuse=False``, timed
interleaved in one process, for sizes from 2**8 to 2**20 elements.

Graphs (value and gradient of the sum):

- ``W4``: ``sum(x**3 + 3*x/(x**2 + 1))``;
- ``arith``: ``sum(a*b + c*(a - b)/(c + 1) - a*a*b)``, three inputs;
- ``trig``: ``sum(sin(x) * cos(2*x) + x*x)``;
- ``float32``: W4 in float32.

The ratio is fused time over unfused time; ``limits.FUSE_MIN_SIZE`` is set from where
it falls below 1. Run:
``python benchmarks/fusion_crossover.py [--budget SECONDS] [--sizes N,N,...]``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from workloads import time_interleaved  # this directory's: the other scripts' timing

import autodag as ad
from autodag.compiler import limits


def _graphs(dtype: Any) -> dict[str, tuple[Any, list[Any]]]:
    """name -> (output, inputs) of each graph."""
    out: dict[str, tuple[Any, list[Any]]] = {}
    with ad.Graph():
        x = ad.Placeholder(name="x", dtype=dtype)
        out["W4" if dtype == np.float64 else "float32"] = (
            ad.ops.sum(x**3 + 3 * x / (x**2 + 1)), [x])
    if dtype == np.float32:
        return out
    with ad.Graph():
        a, b, c = (ad.Placeholder(name=n) for n in "abc")
        out["arith"] = (ad.ops.sum(a * b + c * (a - b) / (c + 1) - a * a * b), [a, b, c])
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out["trig"] = (ad.ops.sum(ad.ops.sin(x) * ad.ops.cos(2 * x) + x * x), [x])
    return out


def main() -> None:
    """Print fused/unfused ratios per graph and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per cell")
    parser.add_argument("--sizes", default="256,1024,4096,16384,65536,262144,1048576",
                        help="comma-separated element counts")
    args = parser.parse_args()
    limits.FUSE_MIN_SIZE = 1  # fuse at every size; the unfused program is the reference
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    graphs = {**_graphs(np.float64), **_graphs(np.float32)}
    print("| graph | " + " | ".join(f"n = {n}" for n in sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for name, (y, ins) in graphs.items():
        fused = ad.compile(y, wrt=ins, inputs=ins, fuse=True)
        plain = ad.compile(y, wrt=ins, inputs=ins, fuse=False)
        cells = []
        for n in sizes:
            dt = np.float32 if name == "float32" else np.float64
            vals = [rng.uniform(0.1, 2.0, n).astype(dt) for _ in ins]
            (vf, gf), (vp, gp) = fused(*vals), plain(*vals)
            assert np.allclose(vf, vp, rtol=1e-4) and all(
                np.allclose(a, b, rtol=1e-4) for a, b in zip(gf, gp, strict=True)), name
            got = time_interleaved({"fused": lambda f=fused, v=vals: f(*v)},  # type: ignore[misc]
                                   lambda p=plain, v=vals: p(*v), args.budget, repeats=7)
            cells.append(f"{got['fused'] / got['baseline']:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
