"""Data-parallel training on a Dask cluster started by the test (examples/dask_data_parallel.py).

A ``LocalCluster`` of two worker processes on localhost holds a small row-chunked data
set; a few SGD and Adam steps of the example's linear model on it must match the same
steps on the same data as NumPy arrays, with the lazy loss and gradients run by one
compute per step and none inside autodag. ``autodag demo --dask`` trains the demo's
network the same way.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import pickle
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import cli, demo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "dask_data_parallel.py"
ROWS, COLS, CHUNKS, STEPS = 4_000, 5, 4, 5
LR = {"sgd": 0.1, "adam": 0.05}
_NO_DASK = "dask and distributed are not installed (pip install 'autodag[dask]')"
HAVE_DASK = all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason=_NO_DASK)
needs_plugins = pytest.mark.skipif(
    bool(demo.missing_ops()),
    reason=f"plugins providing {sorted(demo.missing_ops())} are not installed",
)


# First in the file: the demo starts a cluster of its own, best before the module's starts.
@needs_dask
@needs_plugins
def test_demo_dask_trains_the_demo_network_on_a_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo", "--dask", "--quick", "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "on a Dask LocalCluster, 2 Adam steps" in out
    losses = re.findall(r"^step +\d+/2  loss (\S+)$", out, re.M)
    # The same steps as the NumPy demo's, on the same points.
    numpy_run = demo.train_spirals(io.StringIO(), steps=2, n_per_class=demo.QUICK["n_per_class"],
                                   progress=demo.ProgressLines(2, io.StringIO()))
    assert len(losses) == 2
    assert losses == [f"{v:.4f}" for v in numpy_run.losses]
    assert (tmp_path / "seed-graph.dot").exists()
    assert not (tmp_path / "mlp-graph.dot").exists()


def test_demo_dask_without_dask_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for module in ("dask", "dask.array", "distributed"):
        monkeypatch.setitem(sys.modules, module, None)  # as if they were not installed
    out = io.StringIO()
    assert demo.run_demo(tmp_path, out, dask=True) == 1
    assert out.getvalue() == ("cannot train on Dask: dask and distributed are not installed; "
                              "pip install 'autodag[dask]'\n")
    assert not any(tmp_path.iterdir())  # said at once, before anything else


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """The example script as a module."""
    if not HAVE_DASK:
        pytest.skip(_NO_DASK)
    if not {"mean", "sum"} <= set(ad.get_registry().ops):
        pytest.skip("autodag-array (mean, sum) is not installed")
    spec = importlib.util.spec_from_file_location("dask_data_parallel", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks the module up
    spec.loader.exec_module(module)
    return module


@dataclass
class Cluster:
    """A client of the test's cluster, and the number of graphs the scheduler received
    so far (one per compute or persist)."""

    client: Any
    counter: Any

    @property
    def graphs(self) -> int:
        return int(self.counter.graphs)


@pytest.fixture(scope="module")
def cluster(example: ModuleType) -> Iterator[Cluster]:
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    class GraphCounter(SchedulerPlugin):
        def __init__(self) -> None:
            self.graphs = 0

        def update_graph(self, scheduler: Any, **kwargs: Any) -> None:
            self.graphs += 1

    counter = GraphCounter()
    # The scheduler's HTTP server (health checks; no dashboard) on any free port: its
    # default, 8787, may be taken, which would only warn.
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1", scheduler_kwargs={"dashboard_address": ":0"},
    ) as local, Client(local) as client:  # type: ignore[no-untyped-call]
        local.scheduler.add_plugin(counter, name="graph-counter")
        yield Cluster(client, counter)


@pytest.fixture(scope="module")
def data(example: ModuleType, cluster: Cluster) -> tuple[Any, Any, Any, Any]:
    """X, y held on the workers, and the same values as NumPy arrays."""
    x, y = example.persist(cluster.client,
                           *example.linear_data(ROWS, cols=COLS, chunks=CHUNKS))
    assert x.numblocks == (CHUNKS, 1)
    return x, y, np.asarray(x.compute()), np.asarray(y.compute())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_steps_on_cluster_data_match_the_same_steps_on_numpy_data(
    example: ModuleType, cluster: Cluster, data: tuple[Any, Any, Any, Any], optimizer: str
) -> None:
    x, y, x_np, y_np = data
    on_cluster = example.linear_model(x, y)
    on_numpy = example.linear_model(x_np, y_np)
    opt_cluster = example.make_optimizer(optimizer, on_cluster.params, LR[optimizer])
    opt_numpy = example.make_optimizer(optimizer, on_numpy.params, LR[optimizer])
    losses = []
    for _ in range(STEPS):
        before = cluster.graphs
        loss = example.train_step(on_cluster, opt_cluster)
        assert cluster.graphs == before + 1  # one compute per step
        assert loss == pytest.approx(example.train_step(on_numpy, opt_numpy), rel=1e-10)
        for p, q in zip(on_cluster.params, on_numpy.params):
            assert type(p.value) is type(q.value)  # NumPy parameters stay NumPy
            np.testing.assert_allclose(p.value, q.value, rtol=1e-10, atol=0.0)
        losses.append(loss)
    assert all(b < a for a, b in itertools.pairwise(losses)), losses


def test_evaluate_and_grad_are_lazy_and_compute_nothing(
    example: ModuleType, cluster: Cluster, data: tuple[Any, Any, Any, Any]
) -> None:
    import dask.array as da

    x, y, _, _ = data
    model = example.linear_model(x, y)
    before = cluster.graphs
    value = ad.evaluate(model.loss, feed_dict=model.feed)
    grads = ad.grad(model.loss, model.params, feed_dict=model.feed)
    assert cluster.graphs == before
    assert isinstance(value, da.Array) and value.shape == ()
    assert [type(g) for g in grads] == [da.Array, da.Array]
    assert [g.shape for g in grads] == [(COLS,), ()]


@pytest.mark.parametrize("model", ["linear", pytest.param("mlp", marks=needs_plugins)])
def test_the_workers_are_sent_no_autodag_code(example: ModuleType, model: str) -> None:
    # What a worker unpickles: dask's and NumPy's functions (by reference), the keys of
    # the data and the small NumPy parameters; so workers need no autodag installed.
    if model == "linear":
        m = example.linear_model(*example.linear_data(ROWS, cols=COLS, chunks=CHUNKS))
    else:
        m = example.mlp_model(*example.spiral_data(ROWS, chunks=CHUNKS))
    lazy = [ad.evaluate(m.loss, feed_dict=m.feed), *ad.grad(m.loss, m.params, feed_dict=m.feed)]
    for arr in lazy:
        assert b"autodag" not in pickle.dumps(dict(arr.__dask_graph__()))
