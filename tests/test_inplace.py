"""Arrays computed in place: dying locals handed to their last reader (NumPy's
temporary elision) and small integer powers as products."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autodag as ad
from autodag.builtin_rules import INT_POWERS
from autodag.compiler.consume import consumed, last_reader

#: Elements of a float64 array large enough for NumPy to compute in its buffer (it
#: elides temporaries of 256 KiB and more).
BIG = 40_000


def _elides() -> bool:
    """Whether this NumPy and interpreter reuse a dying operand's buffer."""
    x = np.ones(BIG)
    a: Any = x * 2.0
    before = a.__array_interface__["data"][0]
    b = (a, a := None)[0] + 1.0
    return bool(b.__array_interface__["data"][0] == before)


# --- the text transformation ------------------------------------------------------------
def test_consumed_lets_go_of_a_single_read() -> None:
    assert consumed("v7 = v5 + v6", "v5") == "v7 = (v5, v5 := None)[0] + v6"
    assert consumed("    t0 = g5 * v0", "g5") == "    t0 = (g5, g5 := None)[0] * v0"


def test_consumed_takes_the_last_read_in_evaluation_order() -> None:
    line = "v7 = v5 + (c if v5.__class__ is _nd and v5.dtype.kind == 'f' else v6)"
    got = consumed(line, "v5")
    assert got == ("v7 = v5 + (c if v5.__class__ is _nd and (v5, v5 := None)[0].dtype.kind"
                   " == 'f' else v6)")
    # The conditional's branches come after its test, whatever their place in the text.
    got = consumed("t = (a if v1 else b) + v1", "v1")
    assert got == "t = (a if v1 else b) + (v1, v1 := None)[0]"
    got = consumed("t = (v1 if c else v1 + 1.0)", "v1")
    assert got == "t = (v1 if c else (v1, v1 := None)[0] + 1.0)"


@pytest.mark.parametrize("line", [
    "v5 = v5 + 1",       # the target itself
    "g2 = v5",           # a copy of the name: nothing computed in its buffer
    "if v5 is None:",    # not an assignment
    "v7 = v50 + x.v5",   # other names that contain it
    "v7 = f7(v5, v6)",   # read by a call only: NumPy reuses no buffer there
])
def test_consumed_refuses_what_it_cannot_rewrite(line: str) -> None:
    assert consumed(line, "v5") is None


def test_last_reader_rewrites_only_an_assignment_that_reads_last() -> None:
    lines = ["t0 = g3 * v1", "if t0.shape == v1.shape:", "    g1 = t0"]
    last_reader(lines, "v1")  # the last reader is a test: nothing changes
    assert lines[0] == "t0 = g3 * v1"
    last_reader(lines, "g3")
    assert lines[0] == "t0 = (g3, g3 := None)[0] * v1"


def test_generated_code_hands_dying_values_to_their_last_reader() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(BIG,))
        out = ad.ops.sum((x * x + 1.0) * 3.0)
    prog = ad.compile(out, wrt=[x], inputs=[x], fuse=False)
    assert ":= None)[0]" in prog.source


# --- results and memory ------------------------------------------------------------------
def _chain(x: Any) -> Any:
    a = x * x
    b = a + 1.0
    c = b * 3.0
    d = c - x
    return ad.ops.sum(d) if isinstance(x, ad.Node) else np.sum(d)


def test_a_chain_keeps_fewer_arrays_alive() -> None:
    if not _elides():
        pytest.skip("this NumPy does not elide temporaries here")
    rng = np.random.default_rng(0)
    xv = rng.standard_normal(BIG)
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(BIG,))
        out = _chain(x)
    prog = ad.compile(out, inputs=[x], fuse=False)
    prog(xv)
    tracemalloc.start()
    try:
        value, _ = prog(xv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Each op computes in the buffer of the one before: about one array at a time
    # (without the handing over, each op's result and its input: two).
    assert peak < 1.5 * xv.nbytes
    assert value == pytest.approx(float(_chain(xv)), rel=1e-12)


def _views(x: Any, y: Any) -> Any:
    """A graph where a dying value is also read through a view (transposes, a
    reshape), so its buffer is not free; and where a leaf is read last by an op."""
    a = x * y
    at = a.T
    b = a + 1.0  # a is read again later through its view at
    c = at.reshape(-1) * 2.0
    d = b.reshape(-1) + c
    e = d * x.reshape(-1)
    return e


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.integers(0, 2**16), st.sampled_from([np.float64, np.float32]))
def test_large_arrays_equal_the_interpreter_and_leave_the_inputs(seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    shape = (200, 200)  # 320 KiB in float64, 160 KiB in float32
    xv = rng.standard_normal(shape).astype(dtype)
    yv = rng.standard_normal(shape).astype(dtype)
    keep = xv.copy(), yv.copy()
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=shape, dtype=dtype)
        y = ad.Placeholder(name="y", shape=shape, dtype=dtype)
        e = _views(x, y)
        out = ad.ops.sum(e * e)
    prog = ad.compile([out, e], wrt=[x, y], inputs=[x, y], fuse=False)
    (v1, e1), g1 = prog(xv, yv)
    e1_copy, g1_copy = e1.copy(), [g.copy() for g in g1]
    # A second call must not write into what the first one returned.
    (v2, e2), g2 = prog(yv, xv)
    np.testing.assert_array_equal(e2, ad.evaluate(e, {x: yv, y: xv}))
    assert v2 == ad.evaluate(out, {x: yv, y: xv})
    assert all(g.shape == shape for g in g2)
    np.testing.assert_array_equal(e1, e1_copy)
    for g, c in zip(g1, g1_copy, strict=True):
        np.testing.assert_array_equal(g, c)
    np.testing.assert_array_equal(xv, keep[0])
    np.testing.assert_array_equal(yv, keep[1])
    # The same ops in the same order as the interpreter: equal, not merely close.
    want_e = ad.evaluate(e, {x: xv, y: yv})
    np.testing.assert_array_equal(e1, want_e)
    want_g = ad.grad(out, [x, y], {x: xv, y: yv})
    for g, w in zip(g1, want_g, strict=True):
        np.testing.assert_array_equal(g, w)
    assert v1 == ad.evaluate(out, {x: xv, y: yv})
    # And independently: the gradient of sum(e*e) by hand.
    ev = (xv * yv + 1.0).reshape(-1) + ((xv * yv).T.reshape(-1) * 2.0)
    ev = ev * xv.reshape(-1)
    np.testing.assert_allclose(e1, ev, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_a_failure_after_a_value_was_let_go_is_still_named() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        y = ad.Placeholder(name="y")
        a = x * 2.0
        out = ad.ops.sum(a @ y, name="bad")
    prog = ad.compile(out, wrt=[x], inputs=[x, y], fuse=False)
    with pytest.raises(ad.OpExecutionError, match="matmul") as info:
        prog(np.ones((BIG // 100, 100)), np.ones((3, 3)))
    assert "(400, 100)" in str(info.value) and "(3, 3)" in str(info.value)


def test_a_square_gradient_is_doubled_in_place_exactly() -> None:
    rng = np.random.default_rng(3)
    xv = rng.standard_normal(BIG)
    keep = xv.copy()
    with ad.Graph():
        x = ad.Placeholder(name="x", shape=(BIG,))
        y = ad.Placeholder(name="y", shape=(BIG,))
        out = ad.ops.sum(x * x + y * 0.5)
    prog = ad.compile(out, wrt=[x, y], inputs=[x, y], fuse=False)
    _, (gx, gy) = prog(xv, xv)
    np.testing.assert_array_equal(gx, 2.0 * xv)  # g * x + g * x with g = 1: exact
    np.testing.assert_array_equal(gy, np.full(BIG, 0.5))
    np.testing.assert_array_equal(xv, keep)
    _, (gx2, _) = prog(-xv, xv)
    np.testing.assert_array_equal(gx, 2.0 * xv)  # the first call's result is its own
    np.testing.assert_array_equal(gx2, -2.0 * xv)


# --- integer powers ------------------------------------------------------------------
@pytest.mark.parametrize("n", sorted(INT_POWERS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_integer_powers_are_within_two_ulps_of_pow(n: int, dtype: Any) -> None:
    rng = np.random.default_rng(n + 10)
    xv = (rng.standard_normal(5000) * 3).astype(dtype)
    with ad.Graph():
        x = ad.Variable(xv)
        y = x ** n
    got = ad.evaluate(y)
    assert got.dtype == dtype
    want = np.power(xv.astype(np.float64), n)  # pow in float64: the reference
    ulp = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
    assert np.all(np.abs(got - want) <= 2.5 * ulp)  # 2 of pow's, and pow's own half
    # d/dx x**n = n x**(n-1), by hand, in float64.
    (g,) = ad.grad(ad.ops.sum(y), [x])
    np.testing.assert_allclose(g, n * np.power(xv.astype(np.float64), n - 1),
                               rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("n", [-4, -3, -2, 3, 4])
def test_integer_powers_keep_pows_special_values(n: int) -> None:
    xv = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0])
    with ad.Graph():
        y = ad.Variable(xv) ** n
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.power(xv, n)
        got = ad.evaluate(y)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@st.composite
def _programs(draw: st.DrawFn) -> tuple[list[tuple[str, int, int]], int]:
    """Random elementwise programs over three inputs, values read several times (so
    gradients gather several terms, some of them one array) and dying at random."""
    steps = []
    for k in range(draw(st.integers(2, 10))):
        avail = 3 + k
        op = draw(st.sampled_from(["add", "subtract", "multiply", "divide", "cube",
                                   "negate", "square", "scale"]))
        steps.append((op, draw(st.integers(0, avail - 1)), draw(st.integers(0, avail - 1))))
    return steps, draw(st.integers(0, 2**16))


_OPS: dict[str, Any] = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b, "divide": lambda a, b: a / (b * b + 1.0),
    "cube": lambda a, b: a**3 * 0.1, "negate": lambda a, b: -a,
    "square": lambda a, b: a * a, "scale": lambda a, b: 2.5 * a + b,
}


def _run(steps: list[tuple[str, int, int]], xs: list[Any]) -> list[Any]:
    vals = list(xs)
    for op, i, j in steps:
        vals.append(_OPS[op](vals[i], vals[j]))
    return vals


@settings(max_examples=25, deadline=None, derandomize=True)
@given(_programs())
def test_random_large_programs_match_the_interpreter(prog: tuple[list[Any], int]) -> None:
    steps, seed = prog
    rng = np.random.default_rng(seed)
    xvs = [rng.uniform(-1.5, 1.5, BIG) for _ in range(3)]
    keep = [x.copy() for x in xvs]
    with ad.Graph():
        xs = [ad.Placeholder(name=f"x{k}", shape=(BIG,)) for k in range(3)]
        vals = _run(steps, xs)
        mid = vals[3 + len(steps) // 2]  # an intermediate the caller also gets
        out = ad.ops.sum(vals[-1] * vals[-1])
    prog_ = ad.compile([out, mid], wrt=xs, inputs=xs, fuse=False)
    (v, m), gs = prog_(*xvs)
    m_copy, g_copy = np.array(m, copy=True), [np.array(g, copy=True) for g in gs]
    prog_(*[x[::-1].copy() for x in xvs])  # a second call writes into nothing returned
    np.testing.assert_array_equal(m, m_copy)
    for g, c in zip(gs, g_copy, strict=True):
        np.testing.assert_array_equal(g, c)
    for x, k in zip(xvs, keep, strict=True):
        np.testing.assert_array_equal(x, k)
    feed = dict(zip(xs, xvs, strict=True))
    np.testing.assert_allclose(v, ad.evaluate(out, feed), rtol=1e-12)
    np.testing.assert_allclose(m, ad.evaluate(mid, feed), rtol=1e-12)
    for g, w in zip(gs, ad.grad(out, xs, feed), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    # And independently of both: the plain NumPy program's value, and its derivative
    # along a random direction by central differences in float64.
    def f(zs: list[Any]) -> float:
        return float(np.sum(_run(steps, zs)[-1] ** 2))

    np.testing.assert_allclose(v, f(xvs), rtol=1e-10)
    ds = [rng.standard_normal(BIG) for _ in range(3)]
    h = 1e-6
    fd = (f([x + h * d for x, d in zip(xvs, ds, strict=True)])
          - f([x - h * d for x, d in zip(xvs, ds, strict=True)])) / (2 * h)
    along = sum(float(np.dot(g, d)) for g, d in zip(gs, ds, strict=True))
    assert along == pytest.approx(fd, rel=1e-4, abs=1e-6 * (1.0 + abs(v)))
