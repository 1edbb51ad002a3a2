"""Graphs that repeat a block compile to a loop over it, with the same values and gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.compiler import limits
from autodag.compiler.plan import Plan
from autodag.compiler.rolling import codes, find_loop
from autodag.execute import cached_plan
from autodag.interpreter import Interpreted

from .fd import numeric_grads


@pytest.fixture
def roll_small(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let small graphs roll, so tests stay small."""
    monkeypatch.setattr(limits, "ROLL_MIN_NODES", 1)
    monkeypatch.setattr(limits, "ROLL_MIN_LOOP", 1)
    yield


def _chain(steps: int) -> tuple[Any, list[Any]]:
    with ad.Graph():
        x0, a, b = (ad.Placeholder(name=s) for s in ("x0", "a", "b"))
        x: Any = x0
        for _ in range(steps):
            x = (x * a + b) / (1 + x**2)
    return x, [x0, a, b]


def _chain_reference(x0: float, a: float, b: float, steps: int) -> tuple[float, list[float]]:
    """The chain and its gradients, derived by hand."""
    xs, x = [], x0
    for _ in range(steps):
        xs.append(x)
        x = (x * a + b) / (1 + x**2)
    gx, ga, gb = 1.0, 0.0, 0.0
    for xi in reversed(xs):
        num, den = xi * a + b, 1 + xi**2
        ga += gx / den * xi
        gb += gx / den
        gx = gx / den * a - gx * num / den**2 * 2 * xi
    return x, [gx, ga, gb]


def test_a_long_chain_compiles_to_a_loop_with_hand_derived_gradients() -> None:
    out, leaves = _chain(300)  # 2,100 nodes: rolled at the default threshold
    prog = ad.compile(out, wrt=leaves, inputs=leaves)
    scalar = prog.source.split("\ndef ")[0]  # the scalar function comes first
    assert "for _k0 in range(" in scalar
    assert scalar.count("\n") < 100  # not one line per op
    for args in [(0.5, 0.9, 0.1), (-1.2, 1.1, -0.3), (0.0, 0.5, 2.0)]:
        value, grads = prog(*args)
        ref_v, ref_g = _chain_reference(*args, steps=300)
        assert value == pytest.approx(ref_v, rel=1e-12)
        assert grads == pytest.approx(ref_g, rel=1e-9, abs=1e-12)
        assert all(type(g) is float for g in grads)


def test_short_chains_stay_straight_line_at_the_default_threshold() -> None:
    out, leaves = _chain(10)
    prog = ad.compile(out, wrt=leaves, inputs=leaves)
    assert "for _k" not in prog.source


def _rolled_and_unrolled(build: Callable[[], tuple[Any, list[Any], list[Any]]],
                         monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    monkeypatch.setattr(limits, "ROLL_MIN_NODES", 1)
    monkeypatch.setattr(limits, "ROLL_MIN_LOOP", 1)
    out, wrt, inputs = build()
    rolled = ad.compile(out, wrt=wrt, inputs=inputs)
    monkeypatch.setattr(limits, "ROLL_MIN_NODES", 10**9)
    out, wrt, inputs = build()
    unrolled = ad.compile(out, wrt=wrt, inputs=inputs)
    assert "for _k0 in range(" in rolled.source and "for _k" not in unrolled.source
    return rolled, unrolled


def test_loop_between_different_code_and_gradient_of_an_earlier_intermediate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = 12

    def f(x: Any, a: Any, b: Any, t: Any) -> Any:
        h = x * x + a
        for _ in range(steps):
            h = h * a - b / (1 + h * h)
        return (h - t) ** 2 + h * a

    def build() -> tuple[Any, list[Any], list[Any]]:
        with ad.Graph():
            x, a, b, t = (ad.Placeholder(name=s) for s in "xabt")
            h0 = x * x + a
            h = h0
            for _ in range(steps):
                h = h * a - b / (1 + h * h)
            loss = (h - t) ** 2 + h * a
        return loss, [x, a, b, t, h0], [x, a, b, t]

    rolled, unrolled = _rolled_and_unrolled(build, monkeypatch)
    args = [0.3, 0.8, 0.2, 0.5]
    value, grads = rolled(*args)
    assert value == pytest.approx(f(*args), rel=1e-12)
    ref = numeric_grads(f, args)
    assert grads[:4] == pytest.approx([float(r) for r in ref], rel=1e-6, abs=1e-8)

    def from_h0(h0: Any, a: Any, b: Any, t: Any) -> Any:
        h = h0
        for _ in range(steps):
            h = h * a - b / (1 + h * h)
        return (h - t) ** 2 + h * a

    ref_h0 = numeric_grads(from_h0, [args[0] ** 2 + args[1], *args[1:]])[0]
    assert grads[4] == pytest.approx(float(ref_h0), rel=1e-6)
    assert unrolled(*args) == (value, grads)


def test_gradient_of_a_node_inside_the_repetitions_cuts_the_loop_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def build() -> tuple[Any, list[Any], list[Any]]:
        with ad.Graph():
            x, a = ad.Placeholder(name="x"), ad.Placeholder(name="a")
            h, mids = x, []
            for _ in range(30):
                h = h * a + 1 / (1 + h * h)
                mids.append(h)
        return h, [x, a, mids[20]], [x, a]

    rolled, unrolled = _rolled_and_unrolled(build, monkeypatch)

    def tail(h: Any, a: Any) -> Any:
        for _ in range(9):
            h = h * a + 1 / (1 + h * h)
        return h

    value, grads = rolled(0.4, 0.9)
    h20 = _run(0.4, 0.9, 21)
    assert value == pytest.approx(tail(h20, 0.9), rel=1e-12)
    ref = numeric_grads(lambda x, a: _run(x, a, 30), [0.4, 0.9])
    assert grads[:2] == pytest.approx([float(r) for r in ref], rel=1e-6)
    assert grads[2] == pytest.approx(float(numeric_grads(tail, [h20, 0.9])[0]), rel=1e-6)
    assert unrolled(0.4, 0.9) == (value, grads)


def _run(x: Any, a: Any, steps: int) -> Any:
    h = x
    for _ in range(steps):
        h = h * a + 1 / (1 + h * h)
    return h


def _recurrence(rng: np.random.Generator) -> Callable[..., Any]:
    """A random recurrence of two or three states over invariants a and b: one block
    of random ops, repeated."""
    n_states = int(rng.integers(2, 4))
    ops = []
    for k in range(n_states + int(rng.integers(0, 3))):
        # The first operand a state or an earlier op's value: every op is in the loop.
        first = [*range(n_states), *range(n_states + 2, n_states + 2 + k)]
        ops.append((int(rng.integers(0, 5)), int(rng.choice(first)),
                    int(rng.integers(0, n_states + 2 + k))))
    # The new states: the last ops' values, in a random order.
    outs = [int(v) for v in rng.permutation(np.arange(len(ops) - n_states, len(ops)))
            + n_states + 2]
    reps = int(rng.integers(8, 13))

    def block(vals: list[Any]) -> list[Any]:
        for kind, i, j in ops:
            u, v = vals[i], vals[j]
            vals.append([u + v, u * v, u - v, u / (1 + v * v), -u + 0.5][kind])
        return vals

    def f(*xs: Any) -> Any:
        states, (a, b) = list(xs[:n_states]), xs[n_states:]
        for _ in range(reps):
            vals = block([*states, a, b])
            states = [vals[o] for o in outs]
        total = states[0]
        for s in states[1:]:
            total = total + s * 0.5
        return total

    f.n_inputs = n_states + 2  # type: ignore[attr-defined]
    return f


def test_random_recurrences_match_finite_differences(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "ROLL_MIN_NODES", 1)
    rolled = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        f = _recurrence(rng)
        n = f.n_inputs  # type: ignore[attr-defined]
        args = [float(v) for v in rng.uniform(-0.6, 0.6, n)]
        with ad.Graph():
            leaves = [ad.Placeholder(name=f"x{k}") for k in range(n)]
            out = f(*leaves)
        if not isinstance(out, ad.Operator):
            continue  # the output does not depend on the loop
        prog = ad.compile(out, wrt=leaves, inputs=leaves)
        rolled += "for _k0 in range(" in prog.source
        value, grads = prog(*args)
        assert value == pytest.approx(f(*args), rel=1e-12, abs=1e-12), seed
        ref = [float(r) for r in numeric_grads(f, args)]
        assert grads == pytest.approx(ref, rel=1e-5, abs=1e-7), seed
    assert rolled >= 24  # most random blocks do roll: the test covers the loop


def test_values_leaving_python_numbers_in_the_loop_get_numpy_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def build() -> tuple[Any, list[Any], list[Any]]:
        with ad.Graph():
            x, a = ad.Placeholder(name="x"), ad.Placeholder(name="a")
            h = x
            for _ in range(6):
                h = (h * a) ** 0.5 - 1.0
        return h, [x, a], [x, a]

    rolled, unrolled = _rolled_and_unrolled(build, monkeypatch)
    value, grads = rolled(1e12, 1.0)
    assert type(value) is float and np.isfinite([value, *grads]).all()
    assert (value, grads) == unrolled(1e12, 1.0)
    # A negative base to the power 0.5: NumPy's nan, which leaves Python numbers.
    with np.errstate(invalid="ignore"):
        v1, g1 = rolled(0.5, 1.0)
        v2, g2 = unrolled(0.5, 1.0)
    got = np.array([v1, *g1], dtype=float)
    np.testing.assert_array_equal(got, np.array([v2, *g2], dtype=float))
    assert np.isnan(got).all()


def test_forward_errors_in_the_loop_name_the_failing_repetition(roll_small: None) -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        h = x
        powers = []
        for _ in range(6):
            h = h**3.0 + 1.0  # (h**2.0 is rewritten to h*h, which overflows to inf)
            powers.append(h.inputs[0])
    prog = ad.compile(h, wrt=[x], inputs=[x])
    assert "for _k0 in range(" in prog.source
    # 1e40 cubed is 1e120; cubing that overflows Python's float power.
    with pytest.raises(ad.OpExecutionError) as info:
        prog(1e40)
    assert repr(powers[1].name) in str(info.value) and "'power'" in str(info.value)


def test_find_loop_reports_the_repeated_block() -> None:
    out, _ = _chain(40)
    order = ad.topological_sort(out)
    slot = {n: i for i, n in enumerate(order)}
    ins = [[slot[x] for x in n.inputs] if isinstance(n, ad.Operator) else None for n in order]
    loop = find_loop(order, slot, codes(order, ins), 1)
    assert loop is not None
    # Each step is mul, add, power, add, divide and two constants: seven nodes.
    assert loop.period == 7 and loop.reps >= 38
    kinds = {kind for refs in loop.refs if refs for kind, _ in refs}
    assert kinds == {"local", "carry", "fixed"}


def test_grad_on_a_long_chain_agrees_before_and_after_it_compiles(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # grad interprets a new graph and compiles it (here a rolled scalar function) once
    # interpreting has cost about what compiling would: every call agrees with the
    # hand-derived gradients. Interpreting is measured time, so the compile cost is set
    # from the first call's: the switch comes after a few calls on any machine.
    out, leaves = _chain(300)
    x0, a, b = leaves
    ref_v, ref_g = _chain_reference(0.5, 0.9, 0.1, steps=300)
    kinds = []
    for _ in range(60):
        grads = ad.grad(out, leaves, {x0: 0.5, a: 0.9, b: 0.1})
        assert [float(g) for g in grads] == pytest.approx(ref_g, rel=1e-9, abs=1e-12)
        plan = cached_plan((out,), tuple(leaves))
        kinds.append(type(plan).__name__)
        if len(kinds) == 1 and isinstance(plan, Interpreted):
            monkeypatch.setattr(limits, "COMPILE_COST", 3 * plan.spent / len(plan.order))
        if isinstance(plan, Plan):
            assert "for _k0 in range(" in plan.source.split("\ndef ")[0]
            break
    assert kinds[0] == "Interpreted" and kinds[-1] == "Plan"
    assert ad.evaluate(out, {x0: 0.5, a: 0.9, b: 0.1}) == pytest.approx(ref_v, rel=1e-12)


def test_values_only_programs_roll_too_and_take_arrays() -> None:
    out, leaves = _chain(80)  # 562 nodes: rolled at the default threshold
    prog = ad.compile(out, inputs=leaves)
    assert "for _k0 in range(" in prog.source.split("\ndef ")[0]
    value, grads = prog(0.5, 0.9, 0.1)
    assert grads == [] and type(value) is float
    assert value == pytest.approx(_chain_reference(0.5, 0.9, 0.1, steps=80)[0], rel=1e-12)
    # Arrays leave Python numbers: the general function gives the same values.
    xs = np.array([0.5, -1.2])
    arr, _ = prog(xs, 0.9, 0.1)
    ref = [_chain_reference(float(v), 0.9, 0.1, steps=80)[0] for v in xs]
    np.testing.assert_allclose(arr, ref, rtol=1e-12)
    x0, a, b = leaves
    assert ad.evaluate(out, {x0: 0.5, a: 0.9, b: 0.1}) == pytest.approx(value, rel=1e-12)


def _residual_stack(blocks: int) -> tuple[Any, Any, list[Any]]:
    with ad.Graph():
        x0 = ad.Placeholder(name="x0")
        h: Any = x0
        hs = []
        for _ in range(blocks):
            h = ad.ops.tanh(h * 0.9) + h
            hs.append(h)
        loss = ad.ops.sum(h)
    return x0, loss, hs


def _residual_reference(x: Any, blocks: int) -> tuple[float, Any]:
    """sum(h) after h = tanh(0.9 h) + h, and its gradient by the chain rule."""
    h, g = np.array(x, dtype=np.float64), np.ones(np.shape(x))
    for _ in range(blocks):
        t = np.tanh(0.9 * h)
        g = g * (0.9 * (1.0 - t * t) + 1.0)
        h = t + h
    return float(np.sum(h)), g


def test_array_graphs_built_in_a_loop_compile_to_a_loop() -> None:
    x0, loss, _ = _residual_stack(300)  # 1,202 nodes
    prog = ad.compile(loss, wrt=[x0], inputs=[x0])
    assert "for _k0 in range(" in prog.source
    assert prog.source.count("\n") < 100  # one block, not 300
    x = np.linspace(0.5, 2.0, 4)  # away from 0, where the gradient is 1.9 ** 300
    value, (g,) = prog(x)
    ref_v, ref_g = _residual_reference(x, 300)
    assert value == pytest.approx(ref_v, rel=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-12)
    (fd,) = numeric_grads(lambda v: _residual_reference(v, 300)[0], [x])
    np.testing.assert_allclose(g, fd, rtol=1e-6)


class _Capped:
    """A plugin op that fails once its input exceeds a bound (forward) or whose
    backward rule fails where the incoming gradient exceeds one."""

    @staticmethod
    def _forward(a: Any) -> Any:
        if np.max(a) > 5.0:
            raise ValueError(f"capped: {np.max(a):.2f} > 5")
        return a * 1.0

    @staticmethod
    def _vjp(xp: Any, g: Any, out: Any, a: Any) -> Any:
        if np.max(np.abs(g)) > 1.0:
            raise RuntimeError("capped gradient")
        return g

    @ad.hookimpl
    def autodag_register_ops(self) -> list[ad.OpDef]:
        return [ad.OpDef(name="capped", arity=1, forward=self._forward,
                         backward=(self._vjp,), symbolic=False)]


def test_errors_in_an_array_loop_name_the_failing_repetition() -> None:
    plugin = _Capped()
    ad.register_plugin(plugin, name="capped-plugin")
    try:
        with ad.Graph():
            x0 = ad.Placeholder(name="x0")
            h: Any = x0
            caps = []
            for _ in range(200):
                h = ad.ops.get("capped")(ad.ops.tanh(h) * 0.5 + h)
                caps.append(h)
            loss = ad.ops.sum(h)
        prog = ad.compile(loss, wrt=[x0], inputs=[x0])
        assert "for _k0 in range(" in prog.source
        # h grows by at most 0.5 a block: it passes 5 only after the eighth.
        start = np.full(3, 0.5)
        with pytest.raises(ad.ShapeMismatchError) as info:
            prog(start)
        k = next(k for k in range(200) if _capped_path(start, k) > 5.0)
        assert k >= 8
        msg = str(info.value)
        assert f"{caps[k].name!r}" in msg and "capped-plugin" in msg, msg
        assert "test_rolling.py:" in msg  # where the node was made
        # From 0, h stays 0; the backward pass fails where the incoming gradient,
        # 1 at the last block, has grown past 1: in the block before it.
        with pytest.raises(ad.GradientError) as info2:
            prog(np.zeros(3))
        msg = str(info2.value)
        assert f"{caps[198].name!r}" in msg and "capped gradient" in msg, msg
    finally:
        ad.unregister_plugin(plugin)


def _capped_path(x: Any, k: int) -> float:
    """The input of the capped op in block ``k``, computed in NumPy."""
    h = np.array(x, dtype=np.float64)
    for _ in range(k):
        h = np.tanh(h) * 0.5 + h
    return float(np.max(np.tanh(h) * 0.5 + h))


@pytest.mark.parametrize("lag", [2, 3])
def test_array_recurrences_reading_further_back_roll_too(lag: int) -> None:
    def f(x: Any, y: Any, tanh: Any) -> Any:
        hs = [x, y, x * 0.5]
        for _ in range(200):
            hs.append(tanh(hs[-1] * 0.5 + hs[-lag] * 0.3 + 0.1))
        return hs[-1] * hs[-2]

    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        out = ad.ops.sum(f(x, y, ad.ops.tanh))
    prog = ad.compile(out, wrt=[x, y], inputs=[x, y])
    assert "for _k0 in range(" in prog.source
    assert prog.source.count("\n") < 300  # not 200 blocks
    a, b = np.linspace(0.1, 0.9, 3), np.linspace(-0.5, 0.5, 3)
    value, grads = prog(a, b)
    assert value == pytest.approx(float(np.sum(f(a, b, np.tanh))), rel=1e-12)
    ref = numeric_grads(lambda u, v: f(u, v, np.tanh), [a, b])
    for g, r in zip(grads, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-9)


def test_a_gradient_inside_an_array_loop_leaves_a_loop_on_each_side() -> None:
    with ad.Graph():
        x = ad.Placeholder(name="x")
        h: Any = x
        mids = []
        for _ in range(400):
            h = ad.ops.tanh(h * 0.9) + 0.01
            mids.append(h)
        loss = ad.ops.sum(h)
    mid = mids[200]
    prog = ad.compile(loss, wrt=[x, mid], inputs=[x])
    assert prog.source.count("for _k1 in range(") == 2  # a second loop, forward and back
    assert prog.source.count("\n") < 150
    a = np.linspace(0.1, 0.9, 3)
    _, (gx, gmid) = prog(a)

    def steps(v: Any, n: int) -> tuple[Any, Any]:
        """n steps of v = tanh(0.9 v) + 0.01 and their derivative, by the chain rule."""
        d = np.ones_like(v)
        for _ in range(n):
            t = np.tanh(v * 0.9)
            d = d * 0.9 * (1.0 - t * t)
            v = t + 0.01
        return v, d

    m, d_head = steps(a, 201)
    _, d_tail = steps(m, 199)
    np.testing.assert_allclose(gmid, d_tail, rtol=1e-10)
    np.testing.assert_allclose(gx, d_head * d_tail, rtol=1e-10)
    (fd,) = numeric_grads(lambda v: steps(v, 3)[0], [a])  # the rule itself, checked
    np.testing.assert_allclose(steps(a, 3)[1], fd, rtol=1e-6)
