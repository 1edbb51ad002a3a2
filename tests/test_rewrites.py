"""Graph rewrites before compiling: the built-in ones keep values and gradients, plugins
add their own through ``autodag_rewrites``, and each can be turned off by name."""

from __future__ import annotations

import argparse
import io
import json
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import hooktables, registry, rewriting
from autodag.builtin_rewrites import FOLD_MAX_SIZE as FOLD
from autodag.plugin_cli import plugins_command
from tests.test_plugins import CUBE, fresh_plugins, install, make_dist

from .fd import numeric_grads


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Plugin state rebuilt for the test, the suite's own plugins only."""
    yield from fresh_plugins(monkeypatch, keep_load_only=True)


def _both(out: ad.Node, wrt: list[ad.Node], inputs: list[ad.Node],
          **kw: Any) -> tuple[ad.Program, ad.Program]:
    return (ad.compile(out, wrt=wrt, inputs=inputs, **kw),
            ad.compile(out, wrt=wrt, inputs=inputs, disable_rewrites="all"))


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


IDENTITIES: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = [
    # (rewrite, the expression, its derivative by hand)
    ("multiply_by_one", lambda x: ad.ops.tanh(x) * 1, lambda x: 1 - np.tanh(x) ** 2),
    ("multiply_by_one", lambda x: 1.0 * ad.ops.tanh(x), lambda x: 1 - np.tanh(x) ** 2),
    ("add_zero", lambda x: 0 + x * 3.0, lambda x: 3.0 + 0 * x),
    ("subtract_zero", lambda x: x * x - 0.0, lambda x: 2 * x),
    ("divide_by_one", lambda x: ad.ops.exp(x) / 1, np.exp),
    ("power_one", lambda x: (x * 2.0) ** 1, lambda x: 2.0 + 0 * x),
    ("power_two", lambda x: x**2, lambda x: 2 * x),
    ("double_negation", lambda x: ad.ops.negate(ad.ops.negate(ad.ops.sin(x))), np.cos),
]


@pytest.mark.parametrize(("name", "build", "deriv"), IDENTITIES,
                         ids=[f"{n}-{k}" for k, (n, _, _) in enumerate(IDENTITIES)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_identity_fires_and_keeps_values_and_gradients(
        name: str, build: Callable[[Any], Any], deriv: Callable[[Any], Any],
        dtype: Any) -> None:
    xs = np.array([-2.0, -0.5, 0.0, 0.75, 3.0, np.inf, np.nan], dtype=dtype)
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(7,), dtype=dtype)
        out = ad.ops.sum(build(x))
    prog, plain = _both(out, [x], [x])
    assert prog.rewrites.get(name, 0) >= 1, prog.rewrites
    assert f"{name} x" in prog.source.splitlines()[-1]
    assert plain.rewrites == {} and plain.source.endswith("# rewrites: none\n")
    with np.errstate(all="ignore"):
        v, (g,) = prog(xs)
        pv, (pg,) = plain(xs)
        expect = deriv(xs.astype(np.float64))
    assert _same(v, pv) and _same(g, pg)
    assert g.dtype == dtype
    finite = np.isfinite(xs)
    np.testing.assert_allclose(g[finite], expect[finite],
                               rtol=1e-4 if dtype == np.float32 else 1e-13)


def test_identities_leave_what_would_change_the_dtype() -> None:
    with ad.Graph():
        n = ad.Placeholder(name="n", dtype=np.int64, shape=(3,))
        x = ad.Placeholder(name="x", shape=(3,))
        ones = ad.Constant(np.ones(3), name="ones")
        ints = n * 1.0  # int64 * 1.0 is float64: not n itself
        arr = x * ones  # an array of ones may broadcast or upcast: left alone
    prog = ad.compile([ints, arr], inputs=[n, x])
    assert prog.rewrites == {}
    vals, _ = prog(np.arange(3), np.ones(3, np.float32))
    assert vals[0].dtype == np.float64 and vals[1].dtype == np.float64


def test_cse_merges_repeats_and_the_gradient_matches_the_hand_derived_one() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(5,))
        y = ad.Placeholder(name="y", shape=(5,))
        out = ad.ops.sum(ad.ops.exp(x * y) + ad.ops.exp(x * y) * (x * y))
    prog, plain = _both(out, [x, y], [x, y])
    assert prog.rewrites["cse"] == 3  # the second and third x*y, the second exp
    rng = np.random.default_rng(3)
    xs, ys = rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5)
    v, (gx, gy) = prog(xs, ys)
    _, (pgx, _) = plain(xs, ys)
    t = xs * ys
    assert v == pytest.approx(np.sum(np.exp(t) + np.exp(t) * t), rel=1e-14)
    dt = 2 * np.exp(t) + np.exp(t) * t  # d/dt of e^t + e^t t
    np.testing.assert_allclose(gx, dt * ys, rtol=1e-13)
    np.testing.assert_allclose(gy, dt * xs, rtol=1e-13)
    np.testing.assert_allclose(gx, pgx, rtol=1e-14)
    assert len(prog.source) < len(plain.source)


def _step(k: int, a: Any, b: Any, c: ad.Node) -> Any:
    neg, tr = ad.ops.negate, ad.ops.transpose
    return [a * b, a + b, a * 1, a + 0.0, a**2, neg(neg(a)), ad.ops.tanh(a) / 1,
            ad.ops.sin(a) - 0, a * b + a * b, a * ad.ops.exp(c * 0.5 - 1.0),
            tr(tr(a, (1, 0)))][k]


def _random_graph(rng: np.random.Generator, x: ad.Node, y: ad.Node) -> ad.Node:
    c = ad.Constant(rng.uniform(-1, 1, (2, 3)), name="c")
    pool: list[Any] = [x, y]
    for _ in range(12):
        a = pool[rng.integers(len(pool))]
        b = pool[rng.integers(len(pool))]
        pool.append(_step(int(rng.integers(11)), a, b, c))
    return ad.ops.sum(pool[-1] + pool[-2] * pool[-3])


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_rewritten_agree_with_unrewritten_and_finite_differences(
        seed: int) -> None:
    rng = np.random.default_rng(seed)
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(2, 3))
        y = ad.Placeholder(name="y", shape=(2, 3))
        out = _random_graph(rng, x, y)
    prog, plain = _both(out, [x, y], [x, y])
    assert prog.rewrites  # every graph here has something to rewrite
    xs, ys = rng.uniform(-0.8, 0.8, (2, 3)), rng.uniform(-0.8, 0.8, (2, 3))
    v, grads = prog(xs, ys)
    pv, pgrads = plain(xs, ys)
    assert v == pytest.approx(pv, rel=1e-14, abs=1e-14)
    for g, pg in zip(grads, pgrads, strict=True):
        np.testing.assert_allclose(g, pg, rtol=1e-12, atol=1e-12)
    ref = numeric_grads(lambda a, b: float(plain(a, b)[0]), [xs, ys])
    for g, r in zip(grads, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


def test_constants_fold_to_the_value_the_program_would_compute() -> None:
    c = np.linspace(-1.0, 2.0, 5)
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(5,))
        k = ad.Constant(c, name="k")
        out = ad.ops.sum(x * ad.ops.exp(k * 2.0 + 1.0) + ad.ops.sin(k))
    prog, plain = _both(out, [x], [x])
    assert prog.rewrites == {"fold_constants": 4}
    calls = [src.count(" = f") for src in (prog.source, plain.source)]
    assert calls[0] < calls[1]  # exp and sin are called no more
    xs = np.arange(5.0)
    v, (g,) = prog(xs)
    pv, (pg,) = plain(xs)
    assert v == pv and _same(g, pg)
    np.testing.assert_array_equal(g, np.exp(c * 2.0 + 1.0))  # d/dx, by hand


def test_constants_are_not_folded_where_a_gradient_an_error_or_size_forbids() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(3,))
        k = ad.Constant(np.array([1.0, 2.0, 3.0]), name="k")
        zero = ad.Constant(np.zeros(3), name="zero")
        big = ad.Constant(np.ones(2), name="big")
        by_k = ad.ops.sum(x * (k * 2.0))
        nan = ad.ops.sum(x * (zero / zero))
        huge = ad.ops.sum(ad.ops.broadcast_to(big * 3.0, (FOLD + 1, 2)))
    prog = ad.compile(by_k, wrt=[x, k], inputs=[x])  # d/dk needs k * 2 as a node
    assert prog.rewrites == {}
    assert prog(np.ones(3))[1][1].tolist() == [2.0, 2.0, 2.0]
    prog = ad.compile(nan, inputs=[x])  # 0/0 is left to run time, as NumPy reports it
    assert "fold_constants" not in prog.rewrites
    with np.errstate(invalid="ignore"):
        assert np.isnan(prog(np.ones(3))[0])
    prog = ad.compile(huge, inputs=[x])  # big * 3 folds, its broadcast stays
    assert prog.rewrites == {"fold_constants": 1}
    assert prog(np.ones(3))[0] == 3.0 * 2 * (FOLD + 1)


def test_transpose_of_transpose_is_one_transpose_or_none() -> None:
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(2, 3, 4))
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(2, 3, 4))
        tr = ad.ops.transpose
        back = tr(tr(x, (1, 2, 0)), (2, 0, 1))  # the identity
        once = tr(tr(x, (1, 2, 0)), (1, 0, 2))  # x's axes (2, 1, 0)
        out = ad.ops.sum(back * 2.0) + ad.ops.sum(once * tr(x)) + ad.ops.sum(x.T.T)
    prog, plain = _both(out, [x], [x])
    assert prog.rewrites["transpose_transpose"] == 3
    assert prog.source.count(" = f") < plain.source.count(" = f")
    v, (g,) = prog(xs)
    pv, (pg,) = plain(xs)
    assert v == pv and _same(g, pg)
    np.testing.assert_allclose(g, 2.0 + 2 * xs + 1.0, rtol=1e-15)  # by hand


def test_opt_in_rewrites_of_the_plugins_run_only_when_named() -> None:
    xs = np.array([-3.0, -0.5, 0.25, 1.0, 4.0])
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(5,))
        p = ad.Placeholder(name="p", shape=(5,))
        out = (ad.ops.sum(ad.ops.log(ad.ops.exp(x)) * 3.0)
               + ad.ops.sum(ad.ops.exp(ad.ops.log(p)))
               + ad.ops.sum(ad.ops.broadcast_to(x * x, (4, 5))))
    default = ad.compile(out, wrt=[x, p], inputs=[x, p])
    assert not {"log_exp", "exp_log", "sum_broadcast"} & set(default.rewrites)
    names = ["log_exp", "exp_log", "sum_broadcast"]
    prog = ad.compile(out, wrt=[x, p], inputs=[x, p], enable_rewrites=names)
    assert {n: prog.rewrites.get(n) for n in names} == dict.fromkeys(names, 1)
    ps = np.abs(xs) + 0.5
    v, (gx, gp) = prog(xs, ps)
    assert v == pytest.approx(float(default(xs, ps)[0]), rel=1e-14)
    assert gx.tolist() == (3.0 + 8 * xs).tolist() and gp.tolist() == [1.0] * 5


def test_rewriting_never_changes_the_users_graph() -> None:
    with ad.Graph() as g:
        x = ad.Placeholder(name="x")
        out = (x * 1) ** 2 + ad.ops.negate(ad.ops.negate(x))
    before = (len(g.operators), g.version)
    prog = ad.compile(out, wrt=[x], inputs=[x])
    assert prog.rewrites and (len(g.operators), g.version) == before
    assert prog(3.0) == (12.0, [7.0])


def test_turned_off_by_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = x * 1 + x**2
    assert set(ad.compile(out, inputs=[x]).rewrites) == {"multiply_by_one", "power_two"}
    only = ad.compile(out, inputs=[x], disable_rewrites=["power_two"])
    assert set(only.rewrites) == {"multiply_by_one"}
    monkeypatch.setenv(rewriting.ENV, "multiply_by_one, power_two")
    assert ad.compile(out, inputs=[x]).rewrites == {}
    monkeypatch.setenv(rewriting.ENV, "all")
    assert ad.compile(out, inputs=[x]).rewrites == {}
    with pytest.raises(ad.ArgumentError, match=r"no rewrite 'power_tow'.*'power_two'"):
        ad.compile(out, inputs=[x], disable_rewrites="power_tow")


def test_a_program_pickles_with_its_rewrite_arguments() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = x * 1 + x**2
    prog = ad.compile(out, wrt=[x], inputs=[x], disable_rewrites=["power_two"])
    again = pickle.loads(pickle.dumps(prog))
    assert again.rewrites == prog.rewrites == {"multiply_by_one": 1}
    assert again(2.0) == prog(2.0) == (6.0, [5.0])


class Halving:
    """A plugin whose opt-in rewrite turns x / 2 into x * 0.5 (exact, but to show opt-in)."""

    @ad.hookimpl
    def autodag_rewrites(self) -> dict[str, ad.Rewrite]:
        def apply(ctx: Any, node: Any) -> Any:
            a, b = node.inputs
            if ctx.number(b) == 2.0 and ctx.floating(a):
                return ctx.build("multiply", a, ad.Constant(0.5), like=node)
            return None

        return {"halve": ad.Rewrite(("divide",), apply, "x / 2 -> x * 0.5", exact=False)}


class Buggy:
    """A plugin whose rewrite raises, and one that changes the shape."""

    @ad.hookimpl
    def autodag_rewrites(self) -> dict[str, ad.Rewrite]:
        def boom(ctx: Any, node: Any) -> Any:
            raise ValueError("no good")

        return {"boom": ad.Rewrite(("exp",), boom, "raises")}


def test_a_plugins_opt_in_rewrite_runs_only_when_enabled(plugin_env: pytest.MonkeyPatch,
                                                         ) -> None:
    ad.register_plugin(Halving(), name="halving")
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = x / 2
    assert ad.compile(out, inputs=[x]).rewrites == {}
    prog = ad.compile(out, wrt=[x], inputs=[x], enable_rewrites=["halve"])
    assert prog.rewrites == {"halve": 1} and prog(3.0) == (1.5, [0.5])
    entry = {p["name"]: p for p in _plugins_json()["plugins"]}["halving"]
    assert entry["rewrites"] == ["halve"]
    builtin = {p["name"]: p for p in _plugins_json()["plugins"]}["builtin"]
    assert {"cse", "power_two", "multiply_by_one"} <= set(builtin["rewrites"])


def test_a_failing_rewrite_is_an_error_naming_it_its_plugin_and_the_node(
        plugin_env: pytest.MonkeyPatch) -> None:
    ad.register_plugin(Buggy(), name="buggy")
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.exp(x, name="the_exp")
    with pytest.raises(ad.RewriteError, match=r"rewrite 'boom' of plugin 'buggy'.*'the_exp'"
                       r".*test_rewrites.py:\d+.*ValueError: no good.*"
                       r"AUTODAG_DISABLE_REWRITES=boom"):
        ad.compile(out, inputs=[x])
    assert ad.compile(out, inputs=[x], disable_rewrites=["boom"])(0.0)[0] == 1.0


def _plugins_json() -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    assert plugins_command(argparse.Namespace(json=True), out, err) == 0
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


BROKEN = CUBE + """

@autodag.hookimpl
def autodag_rewrites():
    return {"bad": 3}
"""


def test_a_broken_rewrite_plugin_is_skipped_and_its_ops_and_others_keep_working(
        plugin_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-badrw", "0.1", {"badrw": "tplug_badrw"},
              {"tplug_badrw": BROKEN})
    install(plugin_env, tmp_path)
    with pytest.warns(ad.PluginWarning, match=r"'badrw' \(tplug-badrw 0.1\).*malformed "
                      r"rewrite for rewrite 'bad': int 3 is not an autodag.Rewrite"):
        table = registry.get_table(hooktables.REWRITES)
    assert [f.name for f in table.failed] == ["badrw"] and "cse" in table.items
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.get("cube")(x) * 1
    prog = ad.compile(out, wrt=[x], inputs=[x])
    assert prog.rewrites == {"multiply_by_one": 1} and prog(2.0) == (8.0, [12.0])
    (failed,) = _plugins_json()["rewrites_failed"]
    assert failed["name"] == "badrw"
