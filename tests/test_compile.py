"""autodag.compile: values and gradients against hand-derived formulas and finite
differences, reuse with new inputs, threads, memory-safe accumulation, and errors."""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.compiler import limits

from .fd import numeric_grads


def test_seed_graph_python_floats_in_and_out() -> None:
    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        c = ad.Constant(1.3, name="c")
        z = (x * y + c) * c + x
    prog = ad.compile(z, wrt=[x, y, c], inputs=[x, y])
    for xv, yv in [(0.9, 0.4), (-2.0, 3.5), (0.0, 0.0)]:
        value, (gx, gy, gc) = prog(xv, yv)
        assert value == pytest.approx((xv * yv + 1.3) * 1.3 + xv)
        # dz/dx = c*y + 1, dz/dy = c*x, dz/dc = (x*y + c) + c
        assert (gx, gy, gc) == pytest.approx((1.3 * yv + 1, 1.3 * xv, xv * yv + 2.6))
        assert all(type(g) is float for g in (gx, gy, gc))


def test_chain_with_power_and_division_matches_finite_differences() -> None:
    with ad.Graph():
        x0, a, b = (ad.Placeholder(name=n) for n in ("x0", "a", "b"))
        x: Any = x0
        for _ in range(30):
            x = (x * a + b) / (1 + x**2)
    prog = ad.compile(x, wrt=[x0, a, b], inputs=[x0, a, b])

    def f(x0v: Any, av: Any, bv: Any) -> Any:
        for _ in range(30):
            x0v = (x0v * av + bv) / (1 + x0v**2)
        return x0v

    point = (np.float64(0.5), np.float64(0.9), np.float64(0.1))
    value, grads = prog(0.5, 0.9, 0.1)
    assert value == pytest.approx(f(*point))
    ref = numeric_grads(f, list(point))
    for g, r in zip(grads, ref, strict=True):
        assert g == pytest.approx(float(r), rel=1e-6, abs=1e-9)


def test_arrays_broadcasting_and_dtypes() -> None:
    rng = np.random.default_rng(0)
    with ad.Graph():
        w = ad.Placeholder(name="w", dtype=np.float32)
        bias = ad.Placeholder(name="b", dtype=np.float32)
        xin = ad.Placeholder(name="x", dtype=np.float32)
        h = xin @ w + bias
        loss = ad.ops.sum(h * h)
    prog = ad.compile(loss, wrt=[w, bias, xin], inputs=[xin, w, bias])
    xv = rng.standard_normal((5, 3)).astype(np.float32)
    wv = rng.standard_normal((3, 4)).astype(np.float32)
    bv = rng.standard_normal(4).astype(np.float32)
    value, (gw, gb, gx) = prog(xv, wv, bv)
    hv = xv @ wv + bv
    np.testing.assert_allclose(value, np.sum(hv * hv), rtol=1e-5)
    np.testing.assert_allclose(gw, xv.T @ (2 * hv), rtol=1e-4)
    np.testing.assert_allclose(gb, (2 * hv).sum(0), rtol=1e-4)
    np.testing.assert_allclose(gx, (2 * hv) @ wv.T, rtol=1e-4)
    assert gw.dtype == gb.dtype == gx.dtype == np.float32
    assert gb.shape == (4,)


def test_integer_inputs_give_float_gradients_and_unrelated_nodes_zeros() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x", dtype=int)
        y = ad.Variable(np.zeros((2, 2)), name="unrelated")
        z = x * x * 3
    prog = ad.compile(z, wrt=[x, y], inputs=[x])
    value, (gx, gy) = prog(np.array([1, 2, 3]))
    np.testing.assert_array_equal(value, [3, 12, 27])
    np.testing.assert_array_equal(gx, [6.0, 12.0, 18.0])
    assert gx.dtype == np.float64
    np.testing.assert_array_equal(gy, np.zeros((2, 2)))


def test_repeated_contributions_never_write_into_shared_or_user_arrays() -> None:
    # x feeds add(x, x) and many later uses: gradients accumulate in place only into
    # buffers the program made, never into the seed, a user array, or an aliased result.
    xv = np.array([1.0, 2.0, 3.0])
    keep = xv.copy()
    with ad.Graph():
        x = ad.Placeholder(name="x")
        s = x + x
        t = s + x + x * 2 + x - x
        z = ad.ops.sum(t * 1.0)
    prog = ad.compile(z, wrt=[x, s, x], inputs=[x])
    _, (g1, gs, g2) = prog(xv)
    np.testing.assert_array_equal(g1, np.full(3, 5.0))  # d/dx of 2x + x + 2x + x - x
    np.testing.assert_array_equal(gs, np.ones(3))
    assert g1 is not g2 and not np.shares_memory(g1, g2)
    np.testing.assert_array_equal(xv, keep)
    # Run again: results of the first call are not touched by the second.
    _, (h1, _, _) = prog(xv * 2)
    np.testing.assert_array_equal(g1, np.full(3, 5.0))
    assert not np.shares_memory(g1, h1)


def test_variables_not_among_inputs_are_read_at_call_time() -> None:
    with ad.Graph():
        w = ad.Variable(2.0, name="w")
        x = ad.Placeholder(name="x")
        z = w * x * x
    prog = ad.compile(z, wrt=[w, x], inputs=[x])
    assert prog(3.0) == (18.0, [9.0, 12.0])
    w.value = 5.0
    assert prog(3.0) == (45.0, [9.0, 30.0])


def test_multiple_outputs_and_evaluation_only() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        a, b = x * 2, x * x
    prog = ad.compile([b, a], wrt=[x], inputs=[x])
    values, grads = prog(3.0)
    assert values == [9.0, 6.0] and grads == [6.0]  # the gradient is of the first output
    ev = ad.compile([a, b], inputs=[x])
    assert ev(4.0) == ([8.0, 16.0], [])


def test_threads_share_one_program() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        w = ad.Placeholder(name="w")
        z = ad.ops.sum(ad.ops.tanh(x @ w))
    prog = ad.compile(z, wrt=[w], inputs=[x, w])
    rng = np.random.default_rng(1)
    cases = [(rng.standard_normal((4, 3)), rng.standard_normal((3, 2))) for _ in range(8)]
    expected = [xv.T @ (1 - np.tanh(xv @ wv) ** 2) for xv, wv in cases]
    errors: list[str] = []

    def work(k: int) -> None:
        for _ in range(50):
            xv, wv = cases[k]
            _, (gw,) = prog(xv, wv)
            if not np.allclose(gw, expected[k]):
                errors.append(f"thread {k} got a wrong gradient")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_large_plans_are_cut_into_chunks_with_the_same_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def build() -> tuple[Any, Any]:
        with ad.Graph():
            x, a = ad.Placeholder(name="x"), ad.Placeholder(name="a")
            h: Any = x
            for _ in range(25):
                h = h * a + ad.ops.tanh(h) / (1 + h**2)
        return ad.compile(h, wrt=[x, a], inputs=[x, a]), h

    whole, _ = build()
    monkeypatch.setattr(limits, "CHUNK", 7)
    chunked, _ = build()
    assert chunked.source.count("def _c") > 5
    xv = np.linspace(-1, 1, 5)
    v1, g1 = whole(xv, 0.7)
    v2, g2 = chunked(xv, 0.7)
    np.testing.assert_allclose(v1, v2)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b)


def test_forward_errors_name_op_nodes_shapes_and_site() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        y = ad.Placeholder(name="y")
        z = x * 2 + y  # the site reported below
    prog = ad.compile(z, wrt=[x], inputs=[x, y])
    with pytest.raises(ad.ShapeMismatchError) as info:
        prog(np.ones((2, 3)), np.ones(4))
    msg = str(info.value)
    for part in ("'add'", "'y'", "(2, 3)", "(4,)", "builtin", "test_compile.py:"):
        assert part in msg, (part, msg)
    assert prog(np.ones(2), np.ones(2))[1][0].tolist() == [2.0, 2.0]


def test_bad_calls_and_missing_inputs_are_explained() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        p = ad.Placeholder(name="other", shape=(2,))
        z = x * p
    with pytest.raises(ad.MissingFeedError, match="'other'"):
        ad.compile(z, wrt=[x], inputs=[x])
    prog = ad.compile(z, wrt=[x], inputs=[x, p])
    with pytest.raises(TypeError, match=r"2 input value\(s\).*'x'.*'other'.*got 1"):
        prog(1.0)
    with pytest.raises(ValueError, match=r"'other'.*\(3,\)"):
        prog(1.0, np.ones(3))
    with pytest.raises(TypeError, match="Placeholders or Variables"):
        ad.compile(z, inputs=[z])


def test_intermediates_no_rule_reads_are_dropped_before_the_backward_pass() -> None:
    refs: list[Any] = []
    seen_alive: list[bool] = []

    def track(a: Any) -> Any:
        out = a * 1.0
        refs.append(weakref.ref(out))
        return out

    def probe_rule(xp: Any, g: Any, out: Any, a: Any) -> Any:
        seen_alive.append(refs[-1]() is not None)
        return g

    ops = [
        ad.OpDef(name="track_value", arity=1, forward=track,
                 backward=(lambda xp, g, out, a: g,)),
        ad.OpDef(name="probe_value", arity=1, forward=lambda a: a + 0.0,
                 backward=(probe_rule,)),
    ]

    class Plugin:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return ops

    plugin = Plugin()
    ad.register_plugin(plugin, name="probe-plugin")
    try:
        with ad.Graph():
            x = ad.Placeholder(name="x")
            # h is read by no backward rule (the multiply rule for h reads the constant).
            z = ad.ops.sum(ad.ops.get("probe_value")(ad.ops.get("track_value")(x) * 2.0))
        prog = ad.compile(z, wrt=[x], inputs=[x])
        _, (gx,) = prog(np.arange(4.0))
    finally:
        ad.unregister_plugin(plugin)
    np.testing.assert_array_equal(gx, np.full(4, 2.0))
    assert seen_alive == [False]


def test_scalar_function_and_general_function_agree() -> None:
    # Python floats run the terse scalar function; arrays of the same values run the
    # general one. Both against hand-derived gradients of z = x*y/(1 + x**2) - y.
    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        s = x * y
        z = s / (1 + x**2) - y + s  # s feeds two ops: its gradient is a sum
    prog = ad.compile(z, wrt=[x, y, s], inputs=[x, y])
    assert "def _scalar" in prog.source
    for xv, yv in [(0.5, 2.0), (-1.5, 0.25), (0.0, 3.0)]:
        d = 1 + xv**2
        ref = [yv / d - xv * yv * 2 * xv / d**2 + yv, xv / d - 1 + xv, 1 / d + 1]
        value, grads = prog(xv, yv)
        assert value == pytest.approx(xv * yv / d - yv + xv * yv)
        assert grads == pytest.approx(ref)
        assert all(type(g) is float for g in grads)
        av, ag = prog(np.array([xv]), np.array([yv]))
        np.testing.assert_allclose(av, [value])
        for g, r in zip(ag, ref, strict=True):
            np.testing.assert_allclose(g, [r])


def test_numpy_scalars_in_give_numpy_scalars_out_with_python_float_answers() -> None:
    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        z = x * y / (1 + x**2)
    prog = ad.compile(z, wrt=[x, y], inputs=[x, y])
    value, grads = prog(np.float64(0.5), 2.0)
    ref_v, ref_g = prog(0.5, 2.0)
    assert type(value) is np.float64 and value == ref_v
    assert type(grads[0]) is np.float64 and type(grads[1]) is float
    assert grads == ref_g == pytest.approx([2.0 * (1 - 0.25) / 1.25**2, 0.5 / 1.25])
    v32, g32 = prog(np.float32(0.5), np.float32(2.0))
    assert type(v32) is np.float32 and all(type(g) is np.float32 for g in g32)
    assert [float(g) for g in g32] == pytest.approx(ref_g, rel=1e-6)


def test_int_constants_give_numpys_answers_and_dtypes() -> None:
    # Programs multiply float arrays by an int constant's float twin (faster in NumPy):
    # values and dtypes stay what NumPy gives with the int, for int arrays too.
    cases = [(float, np.array([1.5, -2.0], np.float32)), (float, np.array([1.5, -2.0])),
             (np.int64, np.array([3, -4]))]
    for dtype, feed in cases:
        with ad.Graph():
            p = ad.Placeholder(name="p", dtype=dtype)
            y = (p * 3 + 1) - 2 * p / 4 + p**2
        prog = ad.compile(y, wrt=[p], inputs=[p])
        assert "cf" in prog.source
        value, (g,) = prog(feed)
        ref = (feed * 3 + 1) - 2 * feed / 4 + feed**2
        assert value.dtype == ref.dtype and np.array_equal(value, ref)
        expect = (3 - 0.5 + 2 * feed).astype(g.dtype)
        assert g.dtype == (np.float32 if feed.dtype == np.float32 else np.float64)
        np.testing.assert_array_equal(g, expect)


def test_python_floats_in_give_python_floats_out_on_every_path() -> None:
    # Floats take a short way through the program; ints, unrelated wrt nodes and
    # values that leave Python numbers take the long one: the answers agree.
    with ad.Graph():
        x, y, u = (ad.Placeholder(name=n) for n in "xyu")
        c = ad.Constant(2.0, name="c")
        z = (x * c) ** 0.5 + y
    prog = ad.compile([z, y], wrt=[x, y, c, u], inputs=[x, y, u])
    values, grads = prog(2.0, 1.0, 5.0)
    assert values == [3.0, 1.0] and all(type(v) is float for v in values)
    assert grads == pytest.approx([0.5, 1.0, 0.5, 0.0])
    assert all(type(g) is float for g in grads)
    assert prog(2, 1, 5) == (values, grads)
    with np.errstate(invalid="ignore"):
        (v, _), g = prog(-2.0, 1.0, 5.0)  # a negative base to the power 0.5: NumPy's nan
    assert np.isnan(v) and np.isnan(g[0]) and g[1] == 1.0 and g[3] == 0.0


def test_python_arithmetic_errors_fall_back_to_numpy_answers() -> None:
    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        z = x / y
    prog = ad.compile(z, wrt=[x, y], inputs=[x, y])
    # y*y underflows to 0.0 in the rule -x/y**2: Python would raise, NumPy says -inf.
    value, (gx, gy) = prog(1.0, 1e-200)
    assert value == 1e200 and gx == 1e200 and gy == -np.inf
    for _ in range(3):  # interpreted first, then compiled: the same answer
        assert [float(g) for g in ad.grad(z, [x, y], {x: 1.0, y: 1e-200})] == [1e200, -np.inf]


def test_forward_errors_in_the_scalar_function_name_the_op() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        z = x**3.0 + x  # x**2.0 would be rewritten to x*x, which gives inf
    prog = ad.compile(z, wrt=[x], inputs=[x])
    assert prog(3.0) == (30.0, [28.0])
    with pytest.raises(ad.OpExecutionError, match=r"'power'.*'x' float64 shape \(\)"):
        prog(1e200)  # Python's float power overflows


def test_gradients_are_writeable_arrays_the_caller_owns() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(3, 4))
        total, mean = ad.ops.sum(x), ad.ops.mean(x)
        loss = total + mean
    xv = np.arange(12.0).reshape(3, 4)
    prog = ad.compile([loss, total], wrt=[x], inputs=[x])
    cases = [(prog(xv)[1][0], 1 + 1 / 12), (prog(xv)[1][0], 1 + 1 / 12)]
    for out, expect in [(loss, 1 + 1 / 12), (total, 1.0), (mean, 1 / 12)]:
        for _ in range(2):  # interpreted, then compiled
            cases.append((ad.grad(out, [x], {x: xv})[0], expect))
    order = ad.topological_sort(total)
    ad.forward_pass(order, {x: xv})
    cases.append((ad.backward_pass(order)[0], 1.0))
    for g, expect in cases:
        assert g.flags.writeable and 0 not in g.strides
        np.testing.assert_allclose(g, np.full((3, 4), expect))
        g[0, 0] = -1.0  # the caller's to change, without touching another result
    assert [g[0, 1] for g, _ in cases] == [e for _, e in cases]


def test_numeric_namespace_calls_mean_what_the_op_means() -> None:
    # Rules call ops as xp.op(inputs..., attr=...): a shortcut past OpDef.bind that must
    # give the same results and the same errors.
    xp = ad.get_registry().numeric
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(xp.sum(a, axis=0), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(xp.sum(a, 1, True), [[3.0], [12.0]])  # attrs by position
    assert xp.sum(a=a) == 15.0  # an input by keyword
    assert xp.sum(a) == 15.0 and xp.multiply(2.0, 3.0) == 6.0
    np.testing.assert_array_equal(xp.expand_dims(a, axis=0).shape, (1, 2, 3))
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        xp.sum(a, bogus=1)
    with pytest.raises(TypeError, match="missing required argument 'axis'"):
        xp.expand_dims(a)
    with pytest.raises(TypeError, match=r"takes 2 input\(s\), got 1"):
        xp.multiply(1.0)
    with pytest.raises(TypeError, match="multiple values for argument 'axis'"):
        xp.sum(a, 0, axis=1)


def test_threads_making_the_general_function_at_once_agree() -> None:
    with ad.Graph():
        x, a = ad.Placeholder(name="x"), ad.Placeholder(name="a")
        z = (x * a + 1.0) / (1 + x**2)
    prog = ad.compile(z, wrt=[x, a], inputs=[x, a])
    assert prog(0.5, 2.0)[1] == pytest.approx([2 / 1.25 - 2.0 * 2 * 0.5 / 1.25**2, 0.4])
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work(k: int) -> None:
        try:
            xv = np.full(3, 0.1 * k)
            barrier.wait()  # all ask for the (not yet made) array function together
            _, (gx, ga) = prog(xv, 2.0)
            d = 1 + xv**2
            np.testing.assert_allclose(gx, 2 / d - (2 * xv + 1) * 2 * xv / d**2)
            assert ga == pytest.approx(float(np.sum(xv / d)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("a, b", [(1.0, 0.0), (1, 0), (-2, 0.0), (np.float64(3.0), 0.0),
                                  (np.ones(3), np.zeros(3))])
def test_division_by_zero_answers_what_the_interpreter_does(a: Any, b: Any) -> None:
    # Python raises on 1 / 0.0 where the graph answers inf: the program reruns the call
    # on NumPy floats, or through the interpreter, and answers the same.
    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        out = x / y
    prog = ad.compile(out, wrt=[x, y], inputs=[x, y])
    with np.errstate(divide="ignore", invalid="ignore"):
        value, grads = prog(a, b)
        want_v = ad.evaluate(out, {x: a, y: b})
        want_g = ad.grad(out, [x, y], {x: a, y: b})
    np.testing.assert_array_equal(value, want_v)
    assert np.all(np.isinf(value)) and np.all(np.sign(value) == np.sign(a))
    for g, w in zip(grads, want_g, strict=True):
        np.testing.assert_array_equal(g, w)


def test_a_constant_division_by_zero_without_rewrites_answers_inf() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        out = x * (ad.Constant(1.0) / ad.Constant(0.0))
    prog = ad.compile(out, wrt=[x], inputs=[x], disable_rewrites="all")
    with np.errstate(divide="ignore", invalid="ignore"):
        for xv in (2.0, 2, np.full(3, 2.0)):
            value, (g,) = prog(xv)
            np.testing.assert_array_equal(value, np.inf * np.ones(np.shape(xv)))
            np.testing.assert_array_equal(g, np.inf * np.ones(np.shape(xv)))
