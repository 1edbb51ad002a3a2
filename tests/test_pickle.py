"""Nodes, graphs and compiled programs pickle and deep-copy by name: the copy is a new,
independent graph with the same names, sites, values and counters, and an op is looked up
in the registry again (an error naming it when missing, a warning when its version moved)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

import autodag as ad
from autodag.plugins import PluginInfo

T = TypeVar("T")

X0 = np.array([0.0, 1.0, 2.0])
FEED = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -3.0]], dtype=np.float32)


def _pickled(proto: int) -> Callable[[T], T]:
    def clone(obj: T) -> T:
        out: T = pickle.loads(pickle.dumps(obj, protocol=proto))
        return out

    return clone


#: Every way of copying a graph: pickle at each protocol that keeps its objects, deepcopy.
CLONES = [pytest.param(_pickled(p), id=f"pickle{p}") for p in range(2, 6)] + [
    pytest.param(copy.deepcopy, id="deepcopy")]


def _model() -> tuple[ad.Graph, dict[str, ad.Node]]:
    """loss = sum((x * 2 + p) ** 2) with x a Variable, p a float32 placeholder of shape
    (None, 3): default and given names, a Constant, broadcasting."""
    with ad.Graph() as g:
        x = ad.Variable(X0.copy(), name="x")
        c = ad.Constant(2.0)
        p = ad.Placeholder("p", dtype=np.float32, shape=(None, 3))
        h = x * c + p
        loss = ad.ops.sum(h * h, name="loss")
    return g, {"x": x, "c": c, "p": p, "h": h, "loss": loss}


def _expected_loss(x: np.ndarray, feed: np.ndarray) -> float:
    return float(np.sum((x * 2.0 + feed.astype(np.float64)) ** 2))


def _expected_grad(x: np.ndarray, feed: np.ndarray) -> np.ndarray:
    # d/dx sum((2x + p)^2) = sum over rows of 4 (2x + p).
    out: np.ndarray = np.sum(4.0 * (2.0 * x + feed.astype(np.float64)), axis=0)
    return out


@pytest.mark.parametrize("clone", CLONES)
def test_leaves_keep_value_name_site_and_declarations(clone: Callable[[Any], Any]) -> None:
    _, n = _model()
    x, c, p = n["x"], n["c"], n["p"]
    x2, c2, p2 = clone([x, c, p])
    assert isinstance(x2, ad.Variable) and isinstance(c2, ad.Constant)
    assert isinstance(p2, ad.Placeholder)
    assert [x2.name, c2.name, p2.name] == ["x", "Const/0", "p"]
    assert x2.where() == x.where() and x2.where().startswith(__file__)
    assert c2.where() == c.where() and p2.where() == p.where()
    np.testing.assert_array_equal(x2.value, X0)
    assert x2.value is not x.value
    assert c2.value == 2.0 and type(c2.value) is float
    assert p2.dtype == np.float32 and p2.declared_shape == (None, 3) and p2.value is None
    assert x2.graph is c2.graph is p2.graph and x2.graph is not x.graph
    # The declarations still check feeds.
    assert p2.check_feed(np.ones((4, 3))).dtype == np.float32
    with pytest.raises(ad.FeedError, match=r"'p' has shape \(2, 2\), declared shape"):
        p2.check_feed(np.ones((2, 2)))


@pytest.mark.parametrize("clone", CLONES)
def test_operator_copy_evaluates_like_numpy(clone: Callable[[Any], Any]) -> None:
    _, n = _model()
    loss = n["loss"]
    assert isinstance(loss, ad.Operator)
    loss2 = clone(loss)
    assert isinstance(loss2, ad.Operator) and loss2.name == "loss"
    assert loss2.op.name == "sum" and loss2.plugin == loss.plugin
    assert loss2.where() == loss.where()
    x2, p2 = (next(v for v in loss2.graph.nodes if v.name == k) for k in ("x", "p"))
    assert float(ad.evaluate(loss2, {p2: FEED})) == pytest.approx(_expected_loss(X0, FEED))
    grad = ad.grad(loss2, [x2], {p2: FEED})[0]
    np.testing.assert_allclose(grad, _expected_grad(X0, FEED), rtol=1e-12)


@pytest.mark.parametrize("clone", CLONES)
def test_graph_copy_keeps_order_names_and_counters(clone: Callable[[Any], Any]) -> None:
    g, _ = _model()
    g2 = clone(g)
    assert isinstance(g2, ad.Graph) and g2 is not g
    assert [v.name for v in g2.nodes] == [v.name for v in g.nodes]
    assert [type(v) for v in g2.nodes] == [type(v) for v in g.nodes]
    assert len(g2.variables) == 1 and len(g2.placeholders) == 1 and len(g2.constants) == 1
    assert all(v.graph is g2 for v in g2.nodes)
    assert not set(g2.nodes) & set(g.nodes)
    # The counters came along: new default names continue, never clash with old ones.
    with g2:
        k = ad.Constant(3.0)
        m = g2.nodes[4] * k  # h * k: the graph's third multiply (x * c, h * h before)
    assert (k.name, m.name) == ("Const/1", "mul/2") and k.graph is g2 and m.graph is g2
    assert len({v.name for v in g2.nodes}) == len(g2.nodes)
    # The original's counters are its own.
    with g:
        assert ad.Constant(1.0).name == "Const/1"
    assert len(g) == len(g2) - 1


@pytest.mark.parametrize("clone", CLONES)
def test_copy_is_independent_of_the_original(clone: Callable[[Any], Any]) -> None:
    _, n = _model()
    x2, loss2 = clone([n["x"], n["loss"]])
    p2 = loss2.graph.placeholders
    (p2,) = list(p2)
    x2.value = np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(n["x"].value, X0)
    assert float(ad.evaluate(n["loss"], {n["p"]: FEED})) == pytest.approx(
        _expected_loss(X0, FEED))
    assert float(ad.evaluate(loss2, {p2: FEED})) == pytest.approx(
        _expected_loss(np.ones(3), FEED))
    # In-place changes of the original's array do not reach the copy either.
    n["x"].value[0] = 100.0
    np.testing.assert_array_equal(x2.value, np.ones(3))


def test_nodes_pickled_together_share_one_graph_and_separately_do_not() -> None:
    _, n = _model()
    x2, loss2 = pickle.loads(pickle.dumps([n["x"], n["loss"]]))
    assert x2.graph is loss2.graph
    assert x2 in loss2.graph.variables
    x3 = pickle.loads(pickle.dumps(n["x"]))
    assert x3.graph is not x2.graph


@pytest.mark.parametrize("clone", CLONES)
def test_gradient_nodes_copy(clone: Callable[[Any], Any]) -> None:
    _, n = _model()
    (gx,) = ad.gradients(n["loss"], [n["x"]])
    gx2, loss2 = clone([gx, n["loss"]])
    assert gx2.name == gx.name and gx2.graph is loss2.graph
    (p2,) = list(loss2.graph.placeholders)
    np.testing.assert_allclose(ad.evaluate(gx2, {p2: FEED}), _expected_grad(X0, FEED),
                               rtol=1e-12)


@pytest.mark.parametrize("clone", CLONES)
def test_compiled_program_is_planned_again(clone: Callable[[Any], Any]) -> None:
    g, n = _model()
    prog = ad.compile(n["loss"], wrt=[n["x"]], inputs=[n["p"]])
    prog2 = clone(prog)
    assert isinstance(prog2, ad.Program) and prog2 is not prog
    assert prog2.outputs[0].graph is not g and prog2.outputs[0].name == "loss"
    assert prog2.wrt[0].graph is prog2.outputs[0].graph and prog2.wrt[0].name == "x"
    assert prog2.inputs[0].name == "p"
    value, (grad,) = prog2(FEED)
    assert float(value) == pytest.approx(_expected_loss(X0, FEED))
    np.testing.assert_allclose(grad, _expected_grad(X0, FEED), rtol=1e-12)
    # The copy reads its own Variable; the original program still reads the original's.
    prog2.wrt[0].value = np.ones(3)
    assert float(prog2(FEED)[0]) == pytest.approx(_expected_loss(np.ones(3), FEED))
    assert float(prog(FEED)[0]) == pytest.approx(_expected_loss(X0, FEED))


def test_program_with_list_outputs_keeps_its_form() -> None:
    with ad.Graph():
        a = ad.Variable(3.0, name="a")
        b = ad.Variable(-2.0, name="b")
        f = a * b + a
    prog = ad.compile([f, a * a], wrt=[a, b], inputs=[a, b])
    values, grads = pickle.loads(pickle.dumps(prog))(3.0, -2.0)
    # f = ab + a = -3, a^2 = 9; df/da = b + 1 = -1, df/db = a = 3.
    assert isinstance(values, list) and [float(v) for v in values] == [-3.0, 9.0]
    assert [float(g) for g in grads] == [-1.0, 3.0]
    # Without wrt the copy takes no gradients, as the original takes none.
    nograd = copy.deepcopy(ad.compile(f, inputs=[a, b]))
    assert nograd.wrt == () and nograd(3.0, -2.0) == (-3.0, [])


def test_python_float_and_numpy_kinds_are_kept() -> None:
    with ad.Graph():
        f = ad.Variable(0.5, name="f")
        s = ad.Variable(np.float32(1.5), name="s")
        a = ad.Variable(np.arange(4, dtype=np.float32).reshape(2, 2), name="a")
    f2, s2, a2 = pickle.loads(pickle.dumps([f, s, a]))
    assert type(f2.value) is float and f2.value == 0.5
    assert type(s2.value) is np.float32 and s2.value == np.float32(1.5)
    assert a2.value.dtype == np.float32 and a2.value.shape == (2, 2)
    np.testing.assert_array_equal(a2.value, [[0, 1], [2, 3]])


def _chain(n: int) -> ad.Node:
    """x + 1 + 1 + ... (n additions): 2 n + 1 nodes, each add one deeper than the last."""
    with ad.Graph():
        y: ad.Node = ad.Variable(0.0, name="x")
        for _ in range(n):
            y = y + 1.0
    return y


def test_long_chain_pickles_without_recursion_error() -> None:
    n = 10_000
    y2 = pickle.loads(pickle.dumps(_chain(n), protocol=pickle.HIGHEST_PROTOCOL))
    assert y2.name == f"add/{n - 1}" and len(y2.graph) == 2 * n + 1
    assert float(ad.evaluate(y2)) == float(n)


@pytest.mark.slow
def test_long_chain_deep_copies_and_pickles_at_every_protocol() -> None:
    n = 20_000
    y = _chain(n)
    for clone in [*(_pickled(p) for p in range(2, 6)), copy.deepcopy]:
        y2 = clone(y)
        assert y2.name == f"add/{n - 1}" and len(y2.graph) == 2 * n + 1
        assert float(ad.evaluate(y2)) == float(n)


def test_pickle_then_unpickle_in_a_fresh_process(tmp_path: Path) -> None:
    _, n = _model()
    (gx,) = ad.gradients(n["loss"], [n["x"]])
    prog = ad.compile(n["loss"], wrt=[n["x"]], inputs=[n["p"]])
    (tmp_path / "nodes.pkl").write_bytes(pickle.dumps({"nodes": [n["loss"], gx, n["p"]],
                                                      "program": prog, "feed": FEED}))
    child = textwrap.dedent("""
        import pickle, sys
        import numpy as np
        import autodag as ad
        folder = sys.argv[1]
        with open(folder + "/nodes.pkl", "rb") as f:
            data = pickle.load(f)
        loss, gx, p = data["nodes"]
        feed = data["feed"]
        value, (pgrad,) = data["program"](feed)
        np.savez(folder + "/out.npz", loss=ad.evaluate(loss, {p: feed}),
                 grad=ad.evaluate(gx, {p: feed}), ploss=value, pgrad=pgrad,
                 where=np.array(loss.where()))
    """)
    res = subprocess.run([sys.executable, "-c", child, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "out.npz", allow_pickle=False) as out:
        for key in ("loss", "ploss"):
            assert float(out[key]) == pytest.approx(_expected_loss(X0, FEED))
        for key in ("grad", "pgrad"):
            np.testing.assert_allclose(out[key], _expected_grad(X0, FEED), rtol=1e-12)
        assert str(out["where"]) == n["loss"].where()


# --- an op whose plugin is gone, or moved to another version ---

PLUGIN = "tplug-pickled"


class _Triple:
    @ad.hookimpl
    def autodag_register_ops(self) -> list[ad.OpDef]:
        return [ad.OpDef(name="tplug_triple", arity=1, forward=lambda a: 3 * a,
                         backward=(lambda xp, g, out, a: 3 * g,))]


def _register(version: str) -> _Triple:
    """The throwaway op's plugin, registered as version ``version`` of a distribution."""
    plugin = _Triple()
    pm: Any = ad.get_plugin_manager()
    pm.infos[PLUGIN] = PluginInfo(PLUGIN, "tplug-pickled-dist", version)
    ad.register_plugin(plugin, name=PLUGIN)
    return plugin


@pytest.fixture
def throwaway() -> Iterator[None]:
    """Whatever the test registered under PLUGIN is taken out again."""
    yield
    if ad.get_plugin_manager().get_plugin(PLUGIN) is not None:
        ad.unregister_plugin(PLUGIN)
    assert "tplug_triple" not in ad.get_registry()


def _tripled() -> ad.Node:
    with ad.Graph():
        x = ad.Variable(2.0, name="x")
        out: ad.Node = ad.ops.get("tplug_triple")(x, name="t")
    return out


def test_missing_op_on_unpickle_names_op_and_distribution(throwaway: None) -> None:
    _register("1.0")
    data = pickle.dumps(_tripled())
    assert float(ad.evaluate(pickle.loads(data))) == 6.0
    ad.unregister_plugin(PLUGIN)
    with pytest.raises(ad.AutodagError, match=r"node 't'.*op 'tplug_triple'.*"
                                              r"'tplug-pickled-dist' 1\.0.*no loaded plugin"):
        pickle.loads(data)
    # Registered again, the same bytes load.
    _register("1.0")
    assert float(ad.evaluate(pickle.loads(data))) == 6.0


def test_other_plugin_version_on_unpickle_warns(throwaway: None) -> None:
    _register("1.0")
    data = pickle.dumps(_tripled())
    ad.unregister_plugin(PLUGIN)
    _register("2.0")
    with pytest.warns(ad.PluginWarning, match=r"'tplug_triple' was stored from "
                                              r"tplug-pickled-dist 1\.0.*tplug-pickled-dist "
                                              r"2\.0"):
        node = pickle.loads(data)
    assert node.plugin.version == "2.0"
    assert float(ad.evaluate(node)) == 6.0
