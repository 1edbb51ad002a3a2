"""Data-parallel training on a Dask cluster: data on the workers, parameters on the client.

The data set is row-chunked and lives on the cluster's workers: it is generated there
(``dask.array.random`` from a fixed seed) and persisted once. The parameters are small
NumPy arrays held by autodag Variables on the client. The autodag graph is built once,
with Placeholders fed the dask arrays; at each step ``autodag.evaluate`` and
``autodag.grad`` return lazy dask arrays (nothing runs yet), one ``dask.compute`` runs
the forward and backward passes on the workers, chunk by chunk, and brings back only
the loss and the gradients (NumPy arrays of the parameters' shapes), and the optimizer
(``autodag.optim.SGD`` or ``Adam``) updates the parameters on the client.

Two models: ``linear``, ridge regression ``mean((X @ w + b - y)**2) + lam * sum(w**2)``
on a synthetic linear data set, and ``mlp``, the ``autodag demo`` network (2-32-32-2,
tanh, softmax cross-entropy; it needs the autodag-math, autodag-array and autodag-nn
plugins) on two spirals.

Run it on this machine (a ``LocalCluster`` of two worker processes)::

    python examples/dask_data_parallel.py
    python examples/dask_data_parallel.py --model mlp --steps 40 --rows 20000

On a real cluster, start a scheduler on one machine and workers on the others, then give
the example the scheduler's address instead of letting it start a ``LocalCluster``::

    machine-a$ dask scheduler                      # listens on tcp://machine-a:8786
    machine-b$ dask worker tcp://machine-a:8786
    machine-c$ dask worker tcp://machine-a:8786
    anywhere$  python examples/dask_data_parallel.py --scheduler tcp://machine-a:8786

(``dask-scheduler`` and ``dask-worker`` in older releases; Kubernetes, SLURM and the
clouds have their own launchers, ``dask-kubernetes``, ``dask-jobqueue``, ... which all
give a scheduler address.) The workers need the same versions of NumPy, Dask and
distributed as the client (``pip install 'autodag[dask]'`` installs them); what they
run is a dask task graph of NumPy and dask functions, which they unpickle by reference.
Nothing of autodag is sent to them: autodag builds that graph on the client. Only the
client needs autodag and the plugins of the ops it uses.
"""

# dask's annotations are partial: calling its unannotated functions is fine here.
# mypy: disallow-untyped-calls=False

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import compute  # dask.compute
from dask.distributed import Client, LocalCluster, wait

import autodag as ad
from autodag.optim import SGD, Adam, Optimizer

DEFAULT_ROWS = {"linear": 1_000_000, "mlp": 20_000}
DEFAULT_LR = {"sgd": 0.1, "adam": 0.02}


@dataclass
class Model:
    """A loss built once, the Variables it trains, and what its Placeholders are fed."""

    loss: ad.Node
    params: list[ad.Variable]
    feed: dict[ad.Placeholder, Any]


def linear_data(rows: int, cols: int = 20, chunks: int = 4, seed: int = 0) -> tuple[Any, Any]:
    """X (rows, cols) and y = X @ w_true + 0.5 + noise as lazy dask arrays of row chunks.

    Nothing is computed here: each chunk is generated where it is computed (persist the
    arrays to keep them on the workers).
    """
    rng = da.random.default_rng(seed)
    per_chunk = -(-rows // chunks)
    x = rng.standard_normal((rows, cols), chunks=(per_chunk, cols))
    w_true = np.linspace(-1.0, 1.0, cols)
    y = x @ w_true + 0.5 + 0.1 * rng.standard_normal(rows, chunks=per_chunk)
    return x, y


def spiral_data(rows: int, chunks: int = 4, seed: int = 0, *, turns: float = 2.0,
                noise: float = 0.03) -> tuple[Any, Any]:
    """Points (rows, 2) on two interleaved spirals and their classes one-hot (rows, 2),
    as lazy dask arrays of row chunks (the data set of ``autodag demo``)."""
    rng = da.random.default_rng(seed)
    per_chunk = -(-rows // chunks)
    label = rng.integers(0, 2, rows, chunks=per_chunk).astype(np.float64)
    t = da.sqrt(rng.uniform(0.0, 1.0, rows, chunks=per_chunk)) * turns * 2 * math.pi
    r = (1.0 - 2.0 * label) * t / (turns * 2 * math.pi)  # the second arm turned by 180
    x = da.stack([r * da.cos(t), r * da.sin(t)], axis=1)
    x = x + rng.normal(0.0, noise, (rows, 2), chunks=(per_chunk, 2))
    return x, da.stack([1.0 - label, label], axis=1)


def linear_model(x: Any, y: Any, lam: float = 1e-3) -> Model:
    """Ridge regression on X (n, d) and y (n,): ``mean((X @ w + b - y)**2) + lam*sum(w**2)``."""
    n, d = x.shape
    with ad.Graph():
        xp = ad.Placeholder(name="X", shape=(n, d))
        yp = ad.Placeholder(name="y", shape=(n,))
        w = ad.Variable(np.zeros(d), name="w")
        b = ad.Variable(0.0, name="b")
        loss = ad.ops.mean((xp @ w + b - yp) ** 2) + lam * ad.ops.sum(w**2)
    return Model(loss, [w, b], {xp: x, yp: y})


def mlp_model(x: Any, t: Any, hidden: int = 32, seed: int = 0) -> Model:
    """The demo's MLP (2-hidden-layer tanh) with the mean softmax cross-entropy against
    one-hot classes ``t`` (n, k)."""
    n, n_in = x.shape
    n_out = t.shape[1]
    rng = np.random.default_rng(seed)
    with ad.Graph():
        xp = ad.Placeholder(name="x", shape=(n, n_in))
        tp = ad.Placeholder(name="t", shape=(n, n_out))
        params: list[ad.Variable] = []

        def dense(h: ad.Node, k: int, n_from: int, n_to: int, gain: float) -> ad.Node:
            w = ad.Variable(rng.normal(0.0, gain / np.sqrt(n_from), (n_from, n_to)),
                            name=f"W{k}")
            b = ad.Variable(np.zeros(n_to), name=f"b{k}")
            params.extend([w, b])
            out: ad.Node = h @ w + b
            return out

        # A wide first layer (gain 3) gives the tanh units the many turns of the spirals.
        h1 = ad.ops.tanh(dense(xp, 1, n_in, hidden, 3.0))
        h2 = ad.ops.tanh(dense(h1, 2, hidden, hidden, 1.0))
        logits = dense(h2, 3, hidden, n_out, 1.0)
        loss = ad.ops.mean(ad.ops.softmax_cross_entropy(logits, tp), name="loss")
    return Model(loss, params, {xp: x, tp: t})


def train_step(model: Model, opt: Optimizer) -> float:
    """One step: lazy loss and gradients, one ``dask.compute``, the update on the client.

    With NumPy data ``dask.compute`` hands the values back as they are, so the same step
    trains on NumPy arrays.
    """
    value = ad.evaluate(model.loss, feed_dict=model.feed)  # a lazy dask array
    grads = ad.grad(model.loss, model.params, feed_dict=model.feed)  # lazy too
    value, *grads = compute(value, *grads)  # the forward and backward passes run
    opt.step(grads)  # NumPy gradients: the parameters are updated on the client
    return float(value)


def train(model: Model, opt: Optimizer, steps: int,
          report: Callable[[int, float], None] | None = None) -> list[float]:
    """``steps`` training steps; the loss before each update."""
    losses = []
    for k in range(1, steps + 1):
        losses.append(train_step(model, opt))
        if report is not None:
            report(k, losses[-1])
    return losses


def make_optimizer(name: str, params: Sequence[ad.Variable], lr: float) -> Optimizer:
    """``SGD`` (``sgd``) or ``Adam`` (``adam``) over ``params``."""
    return SGD(params, lr=lr) if name == "sgd" else Adam(params, lr=lr)


@contextmanager
def connect(scheduler: str | None = None, workers: int = 2) -> Iterator[Client]:
    """A ``dask.distributed.Client`` of the cluster at ``scheduler``, or of a new
    ``LocalCluster`` of ``workers`` processes (one thread each) closed on exit."""
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def persist(client: Client, *arrays: Any) -> list[Any]:
    """The arrays computed once and kept in the workers' memory."""
    kept = list(client.persist(list(arrays)))
    wait(kept)
    return kept


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, connect, persist the data, train and print the loss per step."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--scheduler", default=None,
                   help="address of a running scheduler, e.g. tcp://host:8786 (default: "
                   "start a LocalCluster)")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes of the LocalCluster (default %(default)s)")
    p.add_argument("--model", choices=("linear", "mlp"), default="linear")
    p.add_argument("--rows", type=int, default=None,
                   help="rows of data (default: 1,000,000 linear, 20,000 mlp)")
    p.add_argument("--chunks", type=int, default=4, help="row chunks (default %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="training steps (default %(default)s)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                   help="default: sgd for linear, adam for mlp")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.1 for sgd, 0.02 for adam)")
    args = p.parse_args(argv)
    rows = args.rows or DEFAULT_ROWS[args.model]
    opt_name = args.optimizer or ("sgd" if args.model == "linear" else "adam")
    with connect(args.scheduler, args.workers) as client:
        n_workers = len(client.scheduler_info()["workers"])
        print(f"cluster: {client.scheduler_info()['address']}, {n_workers} workers")
        t0 = time.perf_counter()
        if args.model == "linear":
            x, y = persist(client, *linear_data(rows, chunks=args.chunks))
            model = linear_model(x, y)
        else:
            x, y = persist(client, *spiral_data(rows, chunks=args.chunks))
            model = mlp_model(x, y)
        print(f"data: X {x.shape[0]:,} x {x.shape[1]} in {x.numblocks[0]} row chunks, "
              f"generated and persisted on the workers in {time.perf_counter() - t0:.1f} s")
        opt = make_optimizer(opt_name, model.params, args.lr or DEFAULT_LR[opt_name])
        t0 = time.perf_counter()
        train(model, opt, args.steps,
              lambda k, loss: print(f"step {k:3d}  loss {loss:.6f}", flush=True))
        seconds = time.perf_counter() - t0
        print(f"{args.steps} {opt_name} steps in {seconds:.1f} s "
              f"({seconds / args.steps * 1e3:.0f} ms per step, one compute each)")


if __name__ == "__main__":
    main()
