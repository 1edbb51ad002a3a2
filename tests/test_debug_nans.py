"""``ad.debug_nans()``: the first NaN or inf of a run, named at the node and line where it
was born, on every path (evaluate, grad, passes, compiled programs and loops, symbolic
gradients); nothing changes outside the context."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import numpy as np
import pytest

import autodag as ad

HERE = os.path.basename(__file__)
# NumPy warns where NaN and inf are made; this module makes them on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _log_graph() -> tuple[ad.Variable, ad.Node, ad.Node]:
    with ad.Graph():
        x = ad.Variable(np.array([-1.0, 2.0, 3.0]), name="x")
        h = ad.ops.log(x, name="h")  # NaN at x = -1: born here
        y = ad.ops.sum(h * 2.0, name="y")
    return x, h, y


def _sqrt_graph() -> tuple[ad.Variable, ad.Node, ad.Node]:
    """sqrt(x*x) at x = 0: the forward pass is finite; the backward pass makes inf at
    sqrt (1 / (2 sqrt 0)) and NaN at the product (inf * 0)."""
    with ad.Graph():
        x = ad.Variable(np.array([0.0, 1.5]), name="x")
        sq = x * x
        r = ad.ops.sqrt(sq, name="r")
        y = ad.ops.sum(r)
    return x, sq, y


def test_forward_nan_names_node_op_plugin_line_and_inputs() -> None:
    _x, h, y = _log_graph()
    assert np.isnan(ad.evaluate(y))  # outside the context: NumPy's answer, no error
    with ad.debug_nans(), pytest.raises(ad.NonFiniteError) as info:
        ad.evaluate(y)
    err = info.value
    assert isinstance(err, ad.AutodagError)
    assert err.node is h and err.phase == "forward" and err.input_index is None
    msg = str(err)
    assert "forward pass" in msg and "'h'" in msg and "op 'log'" in msg
    assert "autodag-math" in msg and f"{HERE}:{h.site[1]}" in msg  # type: ignore[index]
    assert "'x': float64 shape (3,), min -1, max 3, 0 NaN, 0 inf" in msg
    assert "1 NaN element" in msg


def test_the_graph_stays_usable_after_the_error() -> None:
    x, _, y = _log_graph()
    with ad.debug_nans():
        with pytest.raises(ad.NonFiniteError):
            ad.grad(y, [x])
        x.value = np.array([1.0, 2.0, 4.0])
        (g,) = ad.grad(y, [x])  # finite now: checked and passed
    np.testing.assert_allclose(g, 2.0 / np.array([1.0, 2.0, 4.0]))


def test_nan_born_in_the_backward_pass_only() -> None:
    x, sq, y = _sqrt_graph()
    assert np.isfinite(ad.evaluate(y))
    with ad.debug_nans():
        assert ad.evaluate(y) == pytest.approx(1.5)  # the forward pass is clean
        with pytest.raises(ad.NonFiniteError) as info:
            ad.grad(y, [x])
    err = info.value
    # NaN first appears in multiply's gradient for its first input (inf * 0).
    assert err.phase == "backward" and err.node is sq and err.input_index == 0
    msg = str(err)
    assert "backward pass" in msg and "gradient for input 0 ('x')" in msg
    assert "incoming gradient: float64 shape (2,)" in msg and "1 inf" in msg


def test_inf_mode_stops_at_the_first_infinity() -> None:
    x, _sq, y = _sqrt_graph()
    with ad.debug_nans(inf=True), pytest.raises(ad.NonFiniteError) as info:
        ad.grad(y, [x])
    err = info.value
    assert err.phase == "backward" and err.node.op.name == "sqrt"  # type: ignore[union-attr]
    assert "NaN or inf" in str(err)


def test_nan_mode_lets_infinities_through() -> None:
    with ad.Graph():
        x = ad.Variable(np.array([0.0, 2.0]), name="x")
        y = ad.ops.sum(1.0 / x)
    with ad.debug_nans():
        assert ad.evaluate(y) == np.inf
    with ad.debug_nans(inf=True), pytest.raises(ad.NonFiniteError, match="forward pass"):
        ad.evaluate(y)


def test_a_nan_fed_to_a_placeholder_is_named_as_the_input() -> None:
    with ad.Graph():
        p = ad.Placeholder(name="data")
        y = ad.ops.sum(p * 3.0)
    with ad.debug_nans(), pytest.raises(ad.NonFiniteError) as info:
        ad.evaluate(y, {p: np.array([1.0, np.nan])})
    assert info.value.phase == "input" and info.value.node is p
    assert "Placeholder 'data'" in str(info.value)


def test_forward_and_backward_pass() -> None:
    _x, sq, y = _sqrt_graph()
    order = ad.topological_sort(y)
    with ad.debug_nans():
        ad.forward_pass(order)
        with pytest.raises(ad.NonFiniteError) as info:
            ad.backward_pass(order)
    assert info.value.node is sq and info.value.phase == "backward"


def test_compiled_program() -> None:
    x, h, y = _log_graph()
    prog = ad.compile(y, wrt=[x], inputs=[x])
    bad = np.array([-1.0, 2.0, 3.0])
    value, _ = prog(bad)
    assert np.isnan(value)
    with ad.debug_nans(), pytest.raises(ad.NonFiniteError) as info:
        prog(bad)
    assert info.value.node is h
    value, (g,) = prog(np.array([1.0, 2.0, 4.0]))  # and the fast path is back outside
    np.testing.assert_allclose(g, 2.0 / np.array([1.0, 2.0, 4.0]))


def test_nan_born_inside_a_compiled_loop() -> None:
    """x walks down by d each step and sqrt(x) is read on the way: from x0 = 10 with
    d = 0.1 it turns negative at step 101 of 300, inside the rolled loop."""
    with ad.Graph():
        x0, d = ad.Placeholder(name="x0"), ad.Placeholder(name="d")
        x: Any = x0
        roots: list[ad.Node] = []
        for _ in range(300):
            r = ad.ops.sqrt(x)
            roots.append(r)
            x = x - d + r * 0.0
        y = x * 1.0
    prog = ad.compile(y, wrt=[x0, d], inputs=[x0, d])
    assert "for _k0 in range(" in prog.source  # the loop is rolled
    value, grads = prog(40.0, 0.1)
    assert value == pytest.approx(10.0) and grads == pytest.approx([1.0, -300.0])
    with np.errstate(invalid="ignore"):
        assert np.isnan(prog(10.0, 0.1)[0])
    with ad.debug_nans(), pytest.raises(ad.NonFiniteError) as info:
        prog(10.0, 0.1)
    err = info.value
    step = next(k for k in range(300) if 10.0 - 0.1 * k < 0)  # x after k steps of 0.1
    assert err.phase == "forward" and err.node is roots[step]
    assert "op 'sqrt'" in str(err) and f"{HERE}:" in str(err)


def test_symbolic_gradients() -> None:
    x, _sq, y = _sqrt_graph()
    (g,) = ad.gradients(y, [x])
    assert np.isnan(ad.evaluate(g)).any()
    with ad.debug_nans(), pytest.raises(ad.NonFiniteError) as info:
        ad.evaluate(g)
    assert info.value.phase == "forward"  # a node of the gradient graph made it
    assert f"{HERE}:" in str(info.value)


def test_other_threads_are_not_affected() -> None:
    _x, _, y = _log_graph()
    seen: list[Any] = []
    with ad.debug_nans():
        t = threading.Thread(target=lambda: seen.append(ad.evaluate(y)))
        t.start()
        t.join()
    assert len(seen) == 1 and np.isnan(seen[0])


def test_environment_variable_turns_it_on() -> None:
    code = textwrap.dedent("""
        import numpy as np
        import autodag as ad
        with ad.Graph():
            x = ad.Variable(np.array([-1.0]), name="x")
            y = ad.ops.log(x)
        try:
            ad.evaluate(y)
        except ad.NonFiniteError as e:
            print("caught", e.phase)
    """)
    for value, expected in (("1", "caught forward"), ("", "")):
        env = {**os.environ, "AUTODAG_DEBUG_NANS": value}
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == expected
