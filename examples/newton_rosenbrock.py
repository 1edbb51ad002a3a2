"""Newton's method on Rosenbrock's function with a symbolic gradient and Hessian.

The gradient and Hessian are graph nodes built once; each Newton step only evaluates
them at the current point. Run: ``python examples/newton_rosenbrock.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import autodag as ad

Array = np.ndarray[Any, np.dtype[np.float64]]


def newton(start: tuple[float, float] = (-1.2, 1.0), tol: float = 1e-12,
           max_steps: int = 50) -> list[Array]:
    """The Newton iterates from ``start`` until a step is shorter than ``tol``."""
    with ad.Graph():
        p = ad.Variable(np.array(start, dtype=np.float64), name="p")
        x = p @ np.array([1.0, 0.0])
        y = p @ np.array([0.0, 1.0])
        f = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    (g,) = ad.gradients(f, [p])  # nodes of f's graph, built once
    h = ad.hessian(f, p)  # a (2, 2) node: the Jacobian of g
    path: list[Array] = [p.value.copy()]
    for _ in range(max_steps):
        g_val, h_val = ad.evaluate([g, h])
        step = np.linalg.solve(h_val, g_val)
        p.value = p.value - step
        path.append(p.value.copy())
        if float(np.linalg.norm(step)) < tol:
            break
    return path


def main() -> None:
    """Print each iterate and the distance to the minimum (1, 1)."""
    for k, point in enumerate(newton()):
        err = float(np.linalg.norm(point - 1.0))
        print(f"step {k}: p = [{point[0]: .12f}, {point[1]: .12f}]  |p - (1, 1)| = {err:.2e}")


if __name__ == "__main__":
    main()
