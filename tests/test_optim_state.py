"""Optimizer state: ``state_dict`` after k steps, loaded into a fresh optimizer on fresh
copies of the parameters (in this process, through a graph file, in another process),
continues exactly as the uninterrupted run; wrong states are ArgumentErrors."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.demo_model import mlp, two_spirals
from autodag.optim import SGD, Adam, Optimizer

Make = Callable[[list[ad.Variable]], Optimizer]
#: An optimizer class, called with parameters alone (its default settings).
Fresh = Callable[[list[ad.Variable]], Optimizer]


def _fresh(opt: Optimizer) -> Fresh:
    cls: Fresh = type(opt)
    return cls


RNG = np.random.default_rng(7)
A = RNG.normal(size=(6, 3))
Y = RNG.normal(size=(6, 2))
W0 = RNG.normal(size=(3, 2))
V0 = RNG.normal(size=2).astype(np.float32)
B0 = 0.3


def _problem(values: dict[str, Any] | None = None) -> tuple[list[ad.Variable], ad.Node]:
    """loss = sum((A @ W + v + b - Y)^2) + sum(v^2): a float64 matrix W, a float32 vector
    v and a Python-float scalar b, in a graph of their own (from ``values``, copied)."""
    vals: dict[str, Any] = {"W": W0, "v": V0, "b": B0} if values is None else values
    with ad.Graph():
        w = ad.Variable(np.array(vals["W"], copy=True), name="W")
        v = ad.Variable(np.array(vals["v"], copy=True), name="v")
        b = ad.Variable(float(vals["b"]), name="b")  # a Python float stays one
        r = A @ w + v + b - Y
        loss = ad.ops.sum(r * r) + ad.ops.sum(v * v)
    return [w, v, b], loss


def _values(params: list[ad.Variable]) -> dict[str, Any]:
    return {p.name: copy.copy(p.value) for p in params}


def _run(opt: Optimizer, loss: ad.Node, steps: int) -> list[dict[str, Any]]:
    """``steps`` steps; the parameters' values after each."""
    out = []
    for _ in range(steps):
        opt.step(ad.grad(loss, opt.params))
        out.append(_values(opt.params))
    return out


def _same_values(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in w:
            assert type(g[k]) is type(w[k]), k
            np.testing.assert_array_equal(g[k], w[k], err_msg=k)
            assert np.result_type(g[k]) == np.result_type(w[k]), k


OPTIMIZERS = [
    pytest.param(lambda ps: SGD(ps, lr=0.01), id="sgd"),
    pytest.param(lambda ps: SGD(ps, lr=0.01, momentum=0.9), id="sgd-momentum"),
    pytest.param(lambda ps: SGD(ps, lr=0.01, momentum=0.9, nesterov=True), id="nesterov"),
    pytest.param(lambda ps: SGD(ps, lr=0.02, momentum=0.5, weight_decay=0.1), id="sgd-wd"),
    pytest.param(lambda ps: Adam(ps, lr=0.05), id="adam"),
    pytest.param(lambda ps: Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6,
                                 weight_decay=0.01), id="adam-settings"),
]
K, M = 4, 5  # steps before the interruption, steps after it


def _uninterrupted(make: Make) -> list[dict[str, Any]]:
    params, loss = _problem()
    return _run(make(params), loss, K + M)


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("k", [K, 0])
def test_resumed_run_equals_the_uninterrupted_one(make: Make, k: int) -> None:
    want = _uninterrupted(make)
    params, loss = _problem()
    opt = make(params)
    _same_values(_run(opt, loss, k), want[:k])
    state = opt.state_dict()
    fresh, fresh_loss = _problem(_values(params))
    resumed = _fresh(opt)(fresh)  # default settings, replaced by the loaded ones
    resumed.load_state_dict(state)
    assert resumed.steps == k and resumed.lr == opt.lr
    _same_values(_run(resumed, fresh_loss, K + M - k), want[k:])


@pytest.mark.parametrize("make", OPTIMIZERS[1:])
def test_the_state_matters(make: Make) -> None:
    # Resuming with the parameters alone (a fresh optimizer) departs from the run, so the
    # test above does test the state: velocity, moments, step count.
    want = _uninterrupted(make)
    params, loss = _problem()
    _run(make(params), loss, K)
    fresh, fresh_loss = _problem(_values(params))
    got = _run(make(fresh), fresh_loss, M)
    assert not np.array_equal(got[-1]["W"], want[-1]["W"])


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_state_dict_is_a_snapshot(make: Make) -> None:
    params, loss = _problem()
    opt = make(params)
    _run(opt, loss, K)
    state = opt.state_dict()
    frozen = copy.deepcopy(state)
    for slot in frozen["state"][0]:  # the optimizer's arrays changed in place
        for value in getattr(opt, slot):
            if isinstance(value, np.ndarray):
                value[...] = 0.5
    _run(opt, loss, 2)  # and later steps
    assert state["steps"] == K
    for entry, was in zip(state["state"], frozen["state"]):
        for slot, value in was.items():
            if value is None:
                assert entry[slot] is None
            else:
                np.testing.assert_array_equal(entry[slot], value)
    # A loaded state is copied in as well: changing the dict afterwards changes nothing.
    want = _uninterrupted(make)
    fresh, fresh_loss = _problem(want[K - 1])  # the values the state was taken at
    resumed = _fresh(opt)(fresh)
    resumed.load_state_dict(frozen)
    for entry in frozen["state"]:
        for value in entry.values():
            if isinstance(value, np.ndarray):
                value[...] = 1e9
    frozen["settings"]["lr"] = 123.0
    _same_values(_run(resumed, fresh_loss, M), want[K:])


def test_state_dict_contents() -> None:
    params, loss = _problem()
    opt = Adam(params, lr=0.05, betas=(0.8, 0.99))
    _run(opt, loss, 1)
    state = opt.state_dict()
    assert state["optimizer"] == "Adam" and state["steps"] == 1
    assert state["settings"] == {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-8,
                                 "weight_decay": 0.0}
    assert state["params"] == ["W", "v", "b"]
    # After one step m = (1 - b1) g and v = (1 - b2) g^2, with g the first gradient.
    _, first_loss = _problem()
    g = ad.grad(first_loss, list(first_loss.graph.variables))
    for entry, grad in zip(state["state"], g):
        np.testing.assert_allclose(entry["m"], 0.2 * np.asarray(grad), rtol=1e-6)
        np.testing.assert_allclose(entry["v"], 0.01 * np.asarray(grad) ** 2, rtol=1e-6)
    assert state["state"][1]["m"].dtype == np.float32  # the float32 parameter's own dtype
    sgd = SGD(params, lr=0.1).state_dict()
    assert sgd["state"] == [{"velocity": None}] * 3 and sgd["steps"] == 0


def test_parameters_are_matched_by_name_in_any_order() -> None:
    make: Make = lambda ps: Adam(ps, lr=0.05)  # noqa: E731
    want = _uninterrupted(make)
    params, loss = _problem()
    opt = make(params)
    _run(opt, loss, K)
    fresh, fresh_loss = _problem(_values(params))
    resumed = Adam(fresh[::-1])  # b, v, W
    resumed.load_state_dict(opt.state_dict())
    got = _run(resumed, fresh_loss, M)
    _same_values([{k: d[k] for k in ("W", "v", "b")} for d in got], want[K:])


def _stepped(make: Make = lambda ps: SGD(ps, lr=0.01, momentum=0.9)) -> Optimizer:
    params, loss = _problem()
    opt = make(params)
    _run(opt, loss, 2)
    return opt


def _renamed(state: dict[str, Any]) -> None:
    state["params"][0] = "V"


def _reordered_wrongly(state: dict[str, Any]) -> None:
    state["params"] = ["W", "W", "b"]


@pytest.mark.parametrize(("spoil", "match"), [
    (lambda s: s.update(optimizer="Adam"), r"SGD\.load_state_dict: got the state of 'Adam', "
                                           r"not SGD"),
    (lambda s: s.pop("optimizer"), r"got the state of None, not SGD"),
    (_renamed, r"the state is for parameters \['V', 'v', 'b'\], this optimizer has \['W', "
               r"'v', 'b'\] \(missing \['W'\], unexpected \['V'\]\)"),
    (_reordered_wrongly, r"missing \['v'\], unexpected \[\]"),
    (lambda s: s["params"].pop(), r"'params' and 'state' must be lists of equal length"),
    (lambda s: s.update(params="W"), r"'params' and 'state' must be lists"),
    (lambda s: s["settings"].update(lr=-0.1), r"SGD: lr must be a positive number, got -0\.1"),
    (lambda s: s["settings"].update(lr=float("nan")), r"lr must be a positive number"),
    (lambda s: s["settings"].update(momentum=-1.0), r"momentum must be a non-negative"),
    (lambda s: s["settings"].update(nesterov=True, momentum=0.0), r"nesterov momentum needs"),
    (lambda s: s["settings"].pop("momentum"), r"settings must name \('lr', 'momentum', "),
    (lambda s: s["settings"].update(betas=(0.9, 0.99)), r"settings must name"),
    (lambda s: s.update(steps=-1), r"steps must be a count, got -1"),
    (lambda s: s.update(steps=True), r"steps must be a count, got True"),
    (lambda s: s.update(steps=2.0), r"steps must be a count, got 2\.0"),
    (lambda s: s["state"][0].update(velocity=np.zeros((2, 3))),
     r"'velocity' of Variable 'W' has shape \(2, 3\), the parameter \(3, 2\)"),
    (lambda s: s["state"][2].update(velocity=np.zeros(2)),
     r"'velocity' of Variable 'b' has shape \(2,\), the parameter \(\)"),
    (lambda s: s["state"].__setitem__(1, None),
     r"the state of Variable 'v' must be a dict of \('velocity',\), got None"),
    (lambda s: s["state"][0].pop("velocity"), r"the state of Variable 'W' must be a dict"),
    (lambda s: s["state"][2].update(m=None), r"the state of Variable 'b' must be a dict"),
], ids=["other-class", "no-class", "renamed", "duplicate-names", "lengths", "params-str",
        "negative-lr", "nan-lr", "negative-momentum", "nesterov-without-momentum",
        "missing-setting", "unknown-setting", "negative-steps", "bool-steps", "float-steps",
        "wrong-shape", "scalar-shape", "entry-none", "entry-without-slot", "entry-extra"])
def test_wrong_state_is_an_argument_error_and_changes_nothing(
    spoil: Callable[[dict[str, Any]], Any], match: str
) -> None:
    opt = _stepped()
    state = opt.state_dict()
    spoil(state)
    target = _stepped()
    before = target.state_dict()
    with pytest.raises(ad.ArgumentError, match=match):
        target.load_state_dict(state)
    after = target.state_dict()
    assert after["settings"] == before["settings"] and after["steps"] == before["steps"]
    for e1, e2 in zip(after["state"], before["state"]):
        np.testing.assert_array_equal(e1["velocity"], e2["velocity"])


def test_state_of_adam_into_sgd_and_not_a_mapping() -> None:
    adam = _stepped(lambda ps: Adam(ps))
    sgd = _stepped()
    with pytest.raises(ad.ArgumentError, match=r"Adam\.load_state_dict: got the state of "
                                               r"'SGD', not Adam"):
        adam.load_state_dict(sgd.state_dict())
    with pytest.raises(ad.ArgumentError, match=r"got the state of 'list', not SGD"):
        sgd.load_state_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ad.ArgumentError, match=r"Adam: betas\[0\] must be in \[0, 1\)"):
        state = adam.state_dict()
        state["settings"]["betas"] = (1.0, 0.999)
        adam.load_state_dict(state)


@pytest.mark.parametrize("make", [OPTIMIZERS[2], OPTIMIZERS[5]])
def test_state_survives_a_graph_file(tmp_path: Path, make: Make) -> None:
    want = _uninterrupted(make)
    params, loss = _problem()
    opt = make(params)
    _run(opt, loss, K)
    ad.save(tmp_path / "ckpt.adg", loss, metadata={"optimizer": opt.state_dict(), "k": K})
    loaded = ad.load(tmp_path / "ckpt.adg")
    state = loaded.metadata["optimizer"]
    assert loaded.metadata["k"] == K and state["params"] == ["W", "v", "b"]
    resumed = _fresh(opt)(loaded.variables)
    resumed.load_state_dict(state)
    assert isinstance(loaded.outputs, ad.Node)
    got = _run(resumed, loaded.outputs, M)
    _same_values(got, want[K:])
    assert resumed.params[1].value.dtype == np.float32


# --- the demo network: a checkpoint resumed in a fresh process ---

N_STEPS, SAVE_AT = 12, 5


def _demo() -> tuple[list[ad.Variable], ad.Node, ad.Program, Any, Any]:
    rng = np.random.default_rng(3)
    features, labels = two_spirals(24, rng)
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(None, 2))
        t = ad.Placeholder(name="labels", dtype=np.int64, shape=(None,))
        params, _, loss = mlp(x, t, rng, hidden=8)
    return params, loss, ad.compile(loss, wrt=params, inputs=[x, t]), features, labels


def _train(opt: Optimizer, prog: ad.Program, features: Any, labels: Any,
           steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        value, grads = prog(features, labels)
        opt.step(grads)
        losses.append(float(value))
    return losses


RESUME = textwrap.dedent("""
    import sys
    import numpy as np
    import autodag as ad
    from autodag.optim import Adam
    path, steps = sys.argv[1], int(sys.argv[2])
    ckpt = ad.load(path)
    meta = ckpt.metadata
    opt = Adam(ckpt.variables)
    opt.load_state_dict(meta["optimizer"])
    prog = ad.compile(ckpt.outputs, wrt=opt.params, inputs=[ckpt["x"], ckpt["labels"]])
    losses = []
    for _ in range(steps):
        value, grads = prog(meta["x"], meta["labels"])
        opt.step(grads)
        losses.append(float(value))
    np.save(path + ".losses.npy", np.array(losses))
""")


def test_demo_checkpoint_resumes_exactly_in_a_fresh_process(tmp_path: Path) -> None:
    params, _, prog, features, labels = _demo()
    want = _train(Adam(params, lr=0.02), prog, features, labels, N_STEPS)
    assert want[-1] < want[0]  # it trains

    params, loss, prog, features, labels = _demo()
    opt = Adam(params, lr=0.02)
    first = _train(opt, prog, features, labels, SAVE_AT)
    assert first == want[:SAVE_AT]
    path = tmp_path / "ckpt.adg"
    ad.save(path, loss, metadata={"optimizer": opt.state_dict(), "x": features,
                                  "labels": labels})
    res = subprocess.run([sys.executable, "-c", RESUME, str(path), str(N_STEPS - SAVE_AT)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rest = np.load(f"{path}.losses.npy", allow_pickle=False).tolist()
    assert first + rest == want
