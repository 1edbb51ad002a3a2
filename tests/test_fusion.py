"""Fused elementwise kernels (the ``fusion`` extra): which nodes a kernel computes, and
fused programs giving the unfused program's values and gradients (to a few ulp), dtypes,
broadcasting and NaN/inf results, for the built-in forms and a plugin's."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import fusion, hooktables, registry
from autodag.compiler import fuse, limits
from autodag.plugin_cli import plugins_command
from autodag.shapes import StaticShapes
from autodag.traversal import topological_sort
from tests.test_plugins import CUBE, fresh_plugins, install, make_dist

pytest.importorskip("numba")

#: Fused kernels differ from NumPy's results by rounding only: x**3 as products, a
#: wider register for an intermediate (float32), another order of the same additions.
RTOL = {np.float64: 1e-11, np.float32: 2e-5}


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Plugin state rebuilt for the test, the suite's own plugins only."""
    yield from fresh_plugins(monkeypatch, keep_load_only=True)


def _pair(out: ad.Node, ins: list[ad.Node]) -> tuple[ad.Program, ad.Program]:
    return (ad.compile(out, wrt=ins, inputs=ins, fuse=True),
            ad.compile(out, wrt=ins, inputs=ins, fuse=False))


def _kernels(prog: ad.Program) -> list[fuse.Kernel]:
    fuser = prog._fuser
    assert fuser is not None
    return [k for ks in fuser.kernels() for k in ks]


def _close(a: Any, b: Any, rtol: float) -> None:
    """Equal to ``rtol`` where finite (scaled by the larger magnitude), the same NaN and
    inf elsewhere."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(np.isinf(a), np.isinf(b)) and np.array_equal(
        a[np.isinf(a)], b[np.isinf(b)])
    fin = np.isfinite(a)
    scale = max(1.0, float(np.max(np.abs(b[fin]), initial=0.0)))
    assert np.allclose(a[fin], b[fin], rtol=rtol, atol=rtol * scale)


def test_w4_fuses_into_kernels_and_matches_the_hand_derived_gradient() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(x**3 + 3 * x / (x**2 + 1))
    prog, plain = _pair(out, [x])
    xs = np.random.default_rng(0).standard_normal(4096)
    v, (g,) = prog(xs)
    d = xs * xs + 1
    assert np.isclose(v, np.sum(xs**3 + 3 * xs / d), rtol=1e-12)
    np.testing.assert_allclose(g, 3 * xs**2 + 3 / d - 6 * xs**2 / d**2, rtol=1e-12)
    vp, (gp,) = plain(xs)
    _close(v, vp, 1e-12)
    _close(g, gp, 1e-12)
    ks = _kernels(prog)
    # The forward chain under the sum, and the whole gradient: two kernels.
    assert len(ks) == 2 and all(k.ops >= 5 for k in ks)
    assert "v0 ** 3" in ks[0].expr
    src = prog.source
    assert "# fusion: numba kernels" in src and ks[1].expr in src
    assert src.splitlines()[-1].startswith("# rewrites:")


UNARY: list[Callable[[Any], Any]] = [
    lambda a: -a, lambda a: a * a, lambda a: a**3, lambda a: a ** -2, lambda a: 2.5 * a,
    ad.ops.sqrt, ad.ops.abs, ad.ops.exp, ad.ops.sin, lambda a: a / 3.0, lambda a: 1 / a,
]
BINARY: list[Callable[[Any, Any], Any]] = [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
    ad.ops.maximum, ad.ops.minimum,
    lambda a, b: ad.ops.where(ad.ops.greater(a, b), a, b * 2.0),
]


def _random_graph(rng: np.random.Generator, ins: list[ad.Node], depth: int) -> ad.Node:
    nodes = list(ins)
    for _ in range(depth):
        if rng.random() < 0.4:
            f = UNARY[rng.integers(len(UNARY))]
            nodes.append(f(nodes[rng.integers(len(nodes))]))
        else:
            g = BINARY[rng.integers(len(BINARY))]
            nodes.append(g(nodes[rng.integers(len(nodes))], nodes[rng.integers(len(nodes))]))
    return ad.ops.sum(nodes[-1] + nodes[-2] * 0.5)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_elementwise_graphs_fused_agree_with_unfused(seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    with ad.Graph():
        # One input broadcasts along rows: kernels read operands of several shapes.
        a = ad.Placeholder(name="a", dtype=dtype, shape=(16, 8))
        b = ad.Placeholder(name="b", dtype=dtype, shape=(16, 8))
        c = ad.Placeholder(name="c", dtype=dtype, shape=(8,))
        out = _random_graph(rng, [a, b, c], depth=10)
    prog, plain = _pair(out, [a, b, c])
    vals = [rng.uniform(0.5, 2.0, s).astype(dtype) for s in [(16, 8), (16, 8), (8,)]]
    # NaN, inf, zeros and negatives on the way in.
    vals[0][0, :4] = [np.nan, np.inf, 0.0, -1.5]
    vals[2][5] = -np.inf
    with np.errstate(all="ignore"):  # the unfused forward warns on 0/0, as NumPy does
        v, gs = prog(*vals)
        vp, gps = plain(*vals)
    _close(v, vp, RTOL[dtype])
    for g, gp in zip(gs, gps, strict=True):
        assert g.dtype == dtype
        _close(g, gp, RTOL[dtype])


def test_a_kernel_covers_a_chain_and_stops_at_what_it_cannot_compute() -> None:
    with ad.Graph():
        # Variables: values of known shape and backend, as fusion's copies of the leaves.
        x = ad.Variable(np.ones(64), name="x")
        y = ad.Variable(np.ones(64), name="y")
        inner = (x * y + 1.0) / (x - y)  # one kernel of four ops
        e = ad.ops.exp(inner)  # no form: the chain ends, exp reads an array
        out = e * 2.0 - x
        total = ad.ops.sum(out)
    order = topological_sort([total, inner])
    forms = {n: p.item for n, p in registry.get_table(hooktables.KERNEL_FORMS).items.items()}
    ks = fuse.kernels(order, [total, inner], StaticShapes(), forms)
    by_root = {k.root: k for k in ks}
    assert set(by_root) == {inner, out}
    assert by_root[inner].ops == 4 and set(by_root[inner].inputs) == {x, y}
    # The exp's value is an input of the kernel after it, not computed inside it.
    assert by_root[out].inputs == (e, x) and by_root[out].ops == 2
    assert "exp" not in by_root[out].expr


def test_a_node_several_kernels_read_is_an_array_when_costly() -> None:
    with ad.Graph():
        x = ad.Variable(np.ones(64), name="x")
        shared = x * x
        for _ in range(limits.FUSE_RECOMPUTE_OPS):
            shared = shared * 1.5 + x
        out1, out2 = shared + 1.0, shared * 3.0
        cheap = x + 2.0
        out3, out4 = cheap * x, cheap / x
    forms = {n: p.item for n, p in registry.get_table(hooktables.KERNEL_FORMS).items.items()}
    outs = [out1, out2, out3, out4]
    ks = fuse.kernels(topological_sort(outs), outs, StaticShapes(), forms)
    roots = {k.root for k in ks}
    assert shared in roots and cheap not in roots
    (k3,) = [k for k in ks if k.root is out3]
    assert k3.inputs == (x,) and k3.ops == 2  # (x + 2) * x, the cheap node recomputed


def test_small_arrays_and_python_numbers_run_unfused() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(x * x + x)
    prog = ad.compile(out, wrt=[x], inputs=[x], fuse=True)
    assert prog(3.0) == (12.0, [7.0])
    small = np.arange(limits.FUSE_MIN_SIZE - 1, dtype=float)
    v, (g,) = prog(small)
    assert v == np.sum(small * small + small) and np.array_equal(g, 2 * small + 1)
    assert _kernels(prog) == []


def test_float32_stays_float32_and_nan_inf_are_the_unfused_ones() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x", dtype=np.float32)
        y = x / (x - 1.0)  # 1/0 -> inf, 0/0 at x = 1 -> nan in the gradient
        out = ad.ops.sum(y * y)
    prog, plain = _pair(out, [x])
    xs = np.array([1.0, 0.0, 2.0, np.inf, -np.inf, np.nan, 0.5, 3.0] * 4, dtype=np.float32)
    with np.errstate(all="ignore"):
        v, (g,) = prog(xs)
        vp, (gp,) = plain(xs)
    assert g.dtype == np.float32 and np.asarray(v).dtype == np.asarray(vp).dtype
    _close(v, vp, RTOL[np.float32])
    _close(g, gp, RTOL[np.float32])
    assert _kernels(prog)


def test_fuse_argument_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(x * x * 2.0)
    assert ad.compile(out, wrt=[x], inputs=[x], fuse=False)._fuser is None
    assert "# fusion: off" in ad.compile(out, inputs=[x], wrt=[x], fuse=False).source
    with pytest.raises(ad.ArgumentError, match="takes True, False or None"):
        ad.compile(out, wrt=[x], inputs=[x], fuse="yes")  # type: ignore[arg-type]
    monkeypatch.setenv(fusion.ENV, "0")
    assert ad.compile(out, wrt=[x], inputs=[x])._fuser is None
    assert ad.compile(out, wrt=[x], inputs=[x], fuse=True)._fuser is not None
    monkeypatch.delenv(fusion.ENV)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba" else real(name, *a))
    assert ad.compile(out, wrt=[x], inputs=[x])._fuser is None  # runs as without the extra
    with pytest.raises(ad.ArgumentError, match=r"fuse=True\) needs numba.*autodag\[fusion\]"):
        ad.compile(out, wrt=[x], inputs=[x], fuse=True)


def test_by_default_fusion_waits_for_its_cost_then_keeps_the_faster(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(x * x * 2.0 + x)
    prog = ad.compile(out, wrt=[x], inputs=[x])
    fuser = prog._fuser
    assert fuser is not None and not fuser.forced
    xs = np.linspace(-1, 1, 512)
    expected = (np.sum(xs * xs * 2.0 + xs), 4 * xs + 1)
    monkeypatch.setattr(limits, "FUSE_BUILD_COST", 1e9)
    for _ in range(3):
        v, (g,) = prog(xs)
        assert np.isclose(v, expected[0]) and np.allclose(g, expected[1])
    assert fuser.kernels() == []  # not built: the calls have cost less than building
    monkeypatch.setattr(limits, "FUSE_BUILD_COST", 0.0)
    prog(xs)  # builds, and is the first timed call
    (entry,) = fuser._cache.values()
    assert entry is not None and entry.trial.choice is None
    trial = entry.trial
    for _ in range(2 * limits.FUSE_TRIALS + 2):
        v, (g,) = prog(xs)
        assert np.isclose(v, expected[0]) and np.allclose(g, expected[1])
    assert trial.choice is not None
    assert len(trial.fused) == len(trial.plain) == limits.FUSE_TRIALS
    # Kept when faster; else dropped, its memory with it.
    (kept,) = fuser._cache.values()
    assert (kept is entry) if trial.choice else (kept is None)


def test_a_fused_program_pickles_and_runs_from_threads() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        w = ad.Variable(np.full(256, 0.5), name="w")
        out = ad.ops.sum((x - w) * (x - w) / (w + 1.0))
    prog = ad.compile(out, wrt=[w], inputs=[x], fuse=True)
    again = pickle.loads(pickle.dumps(prog))
    assert again._fuser is not None and again._fuser.forced
    xs = np.linspace(0, 3, 256)
    ref = prog(xs)
    got: list[Any] = []

    def work() -> None:
        for _ in range(20):
            got.append(again(xs))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 60 and _kernels(prog)
    for v, (g,) in got:
        assert v == ref[0] and np.array_equal(g, ref[1][0])


FORMED = CUBE + """

@autodag.hookimpl
def autodag_kernel_forms():
    return {"cube": autodag.KernelForm("{0} * {0} * {0}")}
"""

BROKEN = CUBE + """

@autodag.hookimpl
def autodag_kernel_forms():
    return {"cube": "{0} * {0} * {0}"}
"""


def _cube_program() -> tuple[ad.Program, ad.Program]:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(ad.ops.get("cube")(x * 2.0) + x)
    return _pair(out, [x])


def _plugins_json() -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    assert plugins_command(argparse.Namespace(json=True), out, err) == 0
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def test_a_plugins_kernel_form_is_fused_and_listed(plugin_env: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-formed", "0.1", {"formed": "tplug_formed"},
              {"tplug_formed": FORMED})
    install(plugin_env, tmp_path)
    prog, _ = _cube_program()
    xs = np.linspace(-2, 2, 64)
    v, (g,) = prog(xs)
    assert np.isclose(v, np.sum(8 * xs**3 + xs)) and np.allclose(g, 24 * xs**2 + 1)
    assert any("((v0 * float64(2.0)) * (v0 * float64(2.0)) * (v0 * float64(2.0)))" in k.expr
               for k in _kernels(prog))
    entry = {p["name"]: p for p in _plugins_json()["plugins"]}["formed"]
    assert entry["kernel_forms"] == ["cube"]


def test_a_broken_form_plugin_is_skipped_and_its_ops_run_unfused(
        plugin_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-badform", "0.1", {"badform": "tplug_badform"},
              {"tplug_badform": BROKEN})
    install(plugin_env, tmp_path)
    with pytest.warns(ad.PluginWarning, match=r"'badform' \(tplug-badform 0.1\).*malformed "
                      r"kernel form for op 'cube': str .* is not an autodag.KernelForm"):
        table = registry.get_table(hooktables.KERNEL_FORMS)
    assert "cube" not in table.items and "add" in table.items
    prog, _ = _cube_program()
    xs = np.linspace(-2, 2, 64)
    v, (g,) = prog(xs)
    assert np.isclose(v, np.sum(8 * xs**3 + xs)) and np.allclose(g, 24 * xs**2 + 1)
    assert all("cube" not in k.expr for k in _kernels(prog))


class WrongForms:
    """Forms numba cannot compile, or of another dtype: their kernels are dropped."""

    @ad.hookimpl
    def autodag_kernel_forms(self) -> dict[str, ad.KernelForm]:
        return {"cube": ad.KernelForm("{0} +* {0}"),
                "sin": ad.KernelForm("{0} > 0")}


def test_forms_that_fail_or_give_another_dtype_leave_their_nodes_unfused(
        plugin_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_dist(tmp_path, "tplug-cube", "0.1", {"cube": "tplug_cube"}, {"tplug_cube": CUBE})
    install(plugin_env, tmp_path)
    ad.register_plugin(WrongForms(), name="wrong")
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(ad.ops.sin(x + 1.0) + ad.ops.get("cube")(x - 1.0))
    prog = ad.compile(out, wrt=[x], inputs=[x], fuse=True)
    xs = np.linspace(-2, 2, 64)
    v, (g,) = prog(xs)
    assert np.isclose(v, np.sum(np.sin(xs + 1) + (xs - 1) ** 3))
    np.testing.assert_allclose(g, np.cos(xs + 1) + 3 * (xs - 1) ** 2, rtol=1e-12)
    assert all(">" not in k.expr and "+*" not in k.expr for k in _kernels(prog))


def test_a_plan_compiles_only_its_largest_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "FUSE_MAX_KERNELS", 1)
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(ad.ops.exp(x * 2.0 + 1.0) * (x - 3.0) / (x + 4.0))
    prog, plain = _pair(out, [x])
    xs = np.linspace(-1, 1, 64)
    v, (g,) = prog(xs)
    vp, (gp,) = plain(xs)
    _close(v, vp, 1e-12)
    _close(g, gp, 1e-12)
    (k,) = _kernels(prog)  # of the gradient's kernels, the one of most ops
    assert k.ops >= 5


def test_a_graph_without_an_elementwise_chain_is_not_built() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        w = ad.Placeholder(name="w")
        h = ad.ops.tanh(x @ w)
        out = ad.ops.sum(h * h)  # the one op with a form reads an op without one
    prog = ad.compile(out, wrt=[w], inputs=[x, w], fuse=True)
    xs, ws = np.ones((8, 4)), np.full((4, 3), 0.1)
    v, (g,) = prog(xs, ws)
    t = np.tanh(xs @ ws)
    assert np.isclose(v, np.sum(t * t))
    np.testing.assert_allclose(g, xs.T @ (2 * t * (1 - t * t)), rtol=1e-12)
    fuser = prog._fuser
    assert fuser is not None and list(fuser._cache.values()) == [None]
    assert "runs unfused" in prog.source


def test_a_kernel_that_fails_at_run_time_leaves_the_unfused_program_to_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = ad.ops.sum(x * x * 3.0 + x)
    prog = ad.compile(out, wrt=[x], inputs=[x], fuse=True)
    xs = np.linspace(-1, 1, 64)
    prog(xs)
    fuser = prog._fuser
    assert fuser is not None
    (entry,) = fuser._cache.values()
    assert entry is not None

    def broken(self: Any, leaf_values: Any) -> Any:
        raise MemoryError("a kernel that cannot run")

    monkeypatch.setattr(type(entry), "run", broken)
    v, (g,) = prog(xs)
    assert np.isclose(v, np.sum(3 * xs * xs + xs)) and np.allclose(g, 6 * xs + 1)
    assert list(fuser._cache.values()) == [None]
    with ad.Graph():  # an error of the graph itself is the unfused program's own
        y = ad.Placeholder(name="y")
        bad = ad.ops.sum(ad.ops.reshape(y * 2.0 + 1.0, (5, 5)))
    prog2 = ad.compile(bad, wrt=[y], inputs=[y], fuse=True)
    with pytest.raises(ad.AutodagError, match="reshape"):
        prog2(np.ones(64))
