"""The demo's data and network: two spirals, and a small tanh MLP classifier."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from . import ops
from .nodes import Node, Variable

__all__ = ["FULL", "QUICK", "mlp", "two_spirals"]

#: Data set size and training steps of the demo, and of ``--quick``.
FULL: Final = {"n_per_class": 200, "steps": 800}
QUICK: Final = {"n_per_class": 100, "steps": 150}


def two_spirals(
    n_per_class: int, rng: np.random.Generator, *, turns: float = 2.0, noise: float = 0.03
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Points on two interleaved spirals (radius up to 1) and their class, 0 or 1."""
    t = np.sqrt(rng.uniform(0.0, 1.0, n_per_class)) * turns * 2 * np.pi
    r = t / (turns * 2 * np.pi)
    arm = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    x = np.concatenate([arm, -arm]) + rng.normal(0.0, noise, (2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class, np.int64), np.ones(n_per_class, np.int64)])
    return x, y


def mlp(
    x: Node, t: Node, rng: np.random.Generator, hidden: int
) -> tuple[list[Variable], Node, Node]:
    """The 2-hidden-layer tanh MLP on inputs ``x`` and the mean softmax cross-entropy
    against ``t`` (class labels or probabilities): its parameters, logits and loss."""

    def layer(n_in: int, n_out: int, gain: float, k: int) -> tuple[Variable, Variable]:
        w = Variable(rng.normal(0.0, gain / np.sqrt(n_in), (n_in, n_out)), name=f"W{k}")
        return w, Variable(np.zeros(n_out), name=f"b{k}")

    # A wide first layer (gain 3) gives the tanh units the many turns of the spirals.
    w1, b1 = layer(2, hidden, 3.0, 1)
    w2, b2 = layer(hidden, hidden, 1.0, 2)
    w3, b3 = layer(hidden, 2, 1.0, 3)
    h1 = ops.tanh(x @ w1 + b1, name="h1")
    h2 = ops.tanh(h1 @ w2 + b2, name="h2")
    logits = h2 @ w3 + b3
    loss = ops.mean(ops.softmax_cross_entropy(logits, t), name="loss")
    return [w1, b1, w2, b2, w3, b3], logits, loss
