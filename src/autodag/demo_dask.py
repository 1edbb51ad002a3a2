"""``autodag demo --dask``: the demo's network trained data-parallel on a Dask cluster."""

from __future__ import annotations

import importlib
import time
from typing import Any, Final, TextIO

import numpy as np

from .demo_model import FULL, QUICK, mlp, two_spirals
from .execute import evaluate, grad
from .graph import Graph
from .nodes import Placeholder
from .optim import Adam

__all__ = ["DASK", "dask_missing", "importable", "run_dask", "train_spirals_dask"]


def importable(name: str) -> bool:
    """Whether a module imports (an optional dependency is installed and works)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True

DASK: Final = {"steps": 20, "workers": 2, "chunks": 4}
_PIP_DASK: Final = "pip install 'autodag[dask]'"


def dask_missing() -> str | None:
    """What ``--dask`` lacks, as the line to print, or None when dask and distributed
    are installed."""
    missing = [dist for dist, module in (("dask", "dask.array"), ("distributed", "distributed"))
               if not importable(module)]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"cannot train on Dask: {' and '.join(missing)} {verb} not installed; {_PIP_DASK}"


def train_spirals_dask(
    stream: TextIO,
    *,
    steps: int = DASK["steps"],
    n_per_class: int = FULL["n_per_class"],
    workers: int = DASK["workers"],
    chunks: int = DASK["chunks"],
    hidden: int = 32,
    lr: float = 0.02,
    seed: int = 0,
) -> list[float]:
    """Train the MLP of ``train_spirals`` data-parallel on a Dask ``LocalCluster``.

    The data set (the same points) is split into ``chunks`` row chunks held by
    ``workers`` worker processes; the parameters stay NumPy arrays on the client. Each
    step evaluates the loss and its gradients lazily (dask arrays), runs them with one
    ``dask.compute`` on the workers and updates the parameters with Adam; the loss of
    each step is printed and returned.
    """
    # Through Any: dask's and distributed's annotations are partial.
    da: Any = importlib.import_module("dask.array")
    dd: Any = importlib.import_module("dask.distributed")
    compute = importlib.import_module("dask").compute

    rng = np.random.default_rng(seed)
    features, labels = two_spirals(n_per_class, rng)
    onehot = np.eye(2)[labels]  # class probabilities: the labels as floats
    rows = -(-len(features) // chunks)
    # No dashboard; the scheduler's HTTP server (health checks) on any free port.
    with dd.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                         ) as cluster, dd.Client(cluster) as client:
        x_data, t_data = client.persist([da.from_array(features, chunks=(rows, 2)),
                                         da.from_array(onehot, chunks=(rows, 2))])
        dd.wait([x_data, t_data])
        print(f"data: {len(features)} points in {chunks} row chunks on {workers} worker "
              f"processes ({client.scheduler_info()['address']})", file=stream)
        with Graph():
            x = Placeholder(name="x", shape=features.shape)
            t = Placeholder(name="labels", shape=onehot.shape)
            params, _, loss = mlp(x, t, rng, hidden)
        opt = Adam(params, lr=lr)
        feed = {x: x_data, t: t_data}
        losses: list[float] = []
        for step in range(1, steps + 1):
            lazy_loss = evaluate(loss, feed)  # dask arrays: nothing has run yet
            lazy_grads = grad(loss, params, feed)
            value, *grads = compute(lazy_loss, *lazy_grads)  # one round trip to the workers
            opt.step(grads)
            losses.append(float(value))
            print(f"step {step:3d}/{steps}  loss {losses[-1]:.4f}", file=stream, flush=True)
    return losses


def run_dask(stream: TextIO, steps: int | None, quick: bool) -> int:
    budget = QUICK if quick else FULL
    n_steps = DASK["steps"] if steps is None else steps
    print("-" * 10, file=stream)
    print(
        f"Training the MLP (2-32-32-2, tanh) on {2 * budget['n_per_class']} two-spirals "
        f"points on a Dask LocalCluster, {n_steps} Adam steps, one compute each:",
        file=stream,
    )
    start = time.perf_counter()
    losses = train_spirals_dask(stream, steps=n_steps, n_per_class=budget["n_per_class"])
    print(f"final loss {losses[-1]:.4f} ({time.perf_counter() - start:.1f} s, cluster "
          "start included)", file=stream)
    return 0
