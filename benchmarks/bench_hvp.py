"""Cost of a Hessian-vector product relative to one gradient, on a 1,000-parameter MLP.

Prints evaluation times (best of several repeats) and the ratio HVP / gradient. The
graphs are built once, outside the timing. Run: ``python benchmarks/bench_hvp.py``.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

import autodag as ad


def mlp(batch: int = 32) -> tuple[list[ad.Variable], ad.Node]:
    """A 24-24-16 network with a smooth activation and a squared loss: 1,000 parameters."""
    rng = np.random.default_rng(0)
    sizes = [(24, 24), (24,), (24, 16), (16,)]
    with ad.Graph():
        params = [ad.Variable(rng.standard_normal(s) / 4, name=f"p{i}")
                  for i, s in enumerate(sizes)]
        w1, b1, w2, b2 = params
        data = ad.Constant(rng.standard_normal((batch, 24)), name="data")
        target = ad.Constant(rng.standard_normal((batch, 16)), name="target")
        z = data @ w1 + b1
        hidden = z * (1 + z * z) ** -0.5
        r = hidden @ w2 + b2 - target
        loss = (r * r) @ np.ones(16) @ np.ones(batch) / batch
    return params, loss


def best(fn: Callable[[], Any], number: int, repeat: int = 7) -> float:
    """Best time per call in seconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def bench(batch: int, number: int) -> float:
    """Time gradient and HVP evaluation at one batch size, print them, return the ratio."""
    params, loss = mlp(batch)
    n = sum(p.value.size for p in params)
    rng = np.random.default_rng(1)
    with loss.graph:
        vs = [ad.Placeholder(name=f"v{i}", shape=p.value.shape) for i, p in enumerate(params)]
    feed = {v: rng.standard_normal(p.value.shape) for v, p in zip(vs, params, strict=True)}
    grads = ad.gradients(loss, params)
    hvp = ad.hessian_vector_product(loss, params, vs)
    t_num = best(lambda: ad.grad(loss, params), number)
    t_sym = best(lambda: ad.evaluate(grads), number)
    t_hvp = best(lambda: ad.evaluate(hvp, feed), number)
    print(f"MLP, {n} parameters, batch {batch}:")
    print(f"  gradient, numeric engine (autodag.grad):   {t_num * 1e6:9.1f} us")
    print(f"  gradient, symbolic nodes (evaluate):        {t_sym * 1e6:9.1f} us")
    print(f"  Hessian-vector product (evaluate):          {t_hvp * 1e6:9.1f} us")
    print(f"  HVP / gradient: {t_hvp / t_num:.2f}x (numeric), {t_hvp / t_sym:.2f}x (symbolic)")
    return t_hvp / t_num


def main() -> None:
    """Run the benchmark at a small and a larger batch."""
    bench(32, 200)
    bench(256, 50)

if __name__ == "__main__":
    main()
