"""Checkpoints: train, save the model and the optimizer mid-way, resume in a new process.

A logistic-regression-plus-hidden-layer model is trained with Adam for 40 steps without
a break, and again with a checkpoint after step 20 (``ad.save`` with the optimizer's
``state_dict`` as metadata) that a fresh Python process loads (``ad.load``) and trains
for the last 20 steps. The two runs' losses are equal bit for bit.
Run: ``python examples/checkpoint_resume.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import autodag as ad
from autodag.optim import Adam

STEPS, SAVE_AT = 40, 20


def build(rng: np.random.Generator) -> tuple[ad.Node, list[ad.Variable], dict[str, Any]]:
    """The model's loss on a fixed data set, its parameters, and the data by name."""
    x_data = rng.normal(size=(64, 3))
    y_data = (x_data @ np.array([1.5, -2.0, 0.5]) > 0).astype(np.float64)
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(None, 3))
        y = ad.Placeholder(name="y", shape=(None,))
        w1 = ad.Variable(rng.normal(size=(3, 8)) / 2, name="w1")
        w2 = ad.Variable(rng.normal(size=8) / 3, name="w2")
        logit = ad.ops.tanh(x @ w1) @ w2
        # Logistic loss: log(1 + exp(-s*logit)) with s = 2y - 1.
        loss = ad.ops.mean(ad.ops.log(1 + ad.ops.exp(-(2 * y - 1) * logit)), name="loss")
    return loss, [w1, w2], {"x": x_data, "y": y_data}


def train(loss: ad.Node, opt: Adam, feed: Mapping[ad.Node, Any], steps: int) -> list[float]:
    """``steps`` Adam steps; the loss before each."""
    losses = []
    for _ in range(steps):
        losses.append(float(ad.evaluate(loss, feed)))
        opt.step(ad.grad(loss, opt.params, feed))
    return losses


def resume(path: str, steps: int) -> list[float]:
    """Load the checkpoint (graph, optimizer, data) and train ``steps`` more steps."""
    ckpt = ad.load(path)
    opt = Adam(ckpt.variables)
    opt.load_state_dict(ckpt.metadata["optimizer"])
    feed = {ckpt[name]: value for name, value in ckpt.metadata["data"].items()}
    loss = ckpt.outputs
    assert isinstance(loss, ad.Node)
    return train(loss, opt, feed, steps)


def main() -> int:
    """Both runs, the resumed half in a fresh process; 0 when their losses are equal."""
    loss, params, data = build(np.random.default_rng(0))
    feed: dict[ad.Node, Any] = {n: data[n.name] for n in loss.graph.placeholders}
    whole = train(loss, Adam(params, lr=0.05), feed, STEPS)

    loss, params, data = build(np.random.default_rng(0))
    feed = {n: data[n.name] for n in loss.graph.placeholders}
    opt = Adam(params, lr=0.05)
    first = train(loss, opt, feed, SAVE_AT)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "checkpoint.adg")
        ad.save(path, loss, metadata={"optimizer": opt.state_dict(), "data": data})
        child = subprocess.run([sys.executable, __file__, "--resume", path,
                                str(STEPS - SAVE_AT)], capture_output=True, text=True,
                               check=True)
    second = json.loads(child.stdout)
    same = first + second == whole
    print(f"loss after {STEPS} steps: {whole[-1]:.6f} (uninterrupted), "
          f"{second[-1]:.6f} (resumed from step {SAVE_AT} in a fresh process): "
          + ("identical" if same else "DIFFERENT"))
    return 0 if same else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--resume"]:
        print(json.dumps(resume(sys.argv[2], int(sys.argv[3]))))
        raise SystemExit(0)
    raise SystemExit(main())
