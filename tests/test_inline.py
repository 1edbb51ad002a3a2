"""Ops' inline templates in compiled programs: written out, and each op's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import autodag as ad

from .fd import numeric_grads

#: Calls of the third-party ops' forward and backward rules, by op name.
CALLS: dict[str, int] = {}


def _counted(name: str, fn: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        CALLS[name] = CALLS.get(name, 0) + 1
        return fn(*args, **kwargs)

    return call


def _mix_forward(a: Any, b: Any) -> Any:
    return a * a * b - 3 * b


#: mix(a, b) = a*a*b - 3b, written only with operators: the scalar function serves it.
MIX = ad.OpDef(
    name="mix", arity=2,
    forward=_counted("mix.forward", _mix_forward),
    backward=(
        _counted("mix.vjp0", lambda xp, g, out, a, b: g * 2 * a * b),
        _counted("mix.vjp1", lambda xp, g, out, a, b: g * (a * a - 3)),
    ),
    inline="{0} * {0} * {1} - 3 * {1}",
    inline_vjps=("{g} * 2 * {0} * {1}", "{g} * ({0} * {0} - 3)"),
)

#: tri(a, b, c) = a + b*c*c; the rules for b and c share g*c, computed once.
TRI = ad.OpDef(
    name="tri", arity=3,
    forward=_counted("tri.forward", lambda a, b, c: a + b * c * c),
    backward=(
        _counted("tri.vjp0", lambda xp, g, out, a, b, c: g),
        _counted("tri.vjp1", lambda xp, g, out, a, b, c: g * c * c),
        _counted("tri.vjp2", lambda xp, g, out, a, b, c: g * c * 2 * b),
    ),
    inline="{0} + {1} * {2} * {2}",
    inline_vjps=("{g}", "{g} * {2} * {2}", "{g} * {2} * 2 * {1}"),
)

#: grow(a) = exp(a) - 1, with an xp call in both templates and a rule reading ``out``.
GROW = ad.OpDef(
    name="grow", arity=1,
    forward=_counted("grow.forward", lambda a: np.expm1(a)),
    backward=(_counted("grow.vjp0", lambda xp, g, out, a: g * (out + 1)),),
    inline="xp.expm1({0})",
    inline_vjps=("{g} * ({out} + 1)",),
)


class _Plugin:
    def __init__(self, ops: list[ad.OpDef]) -> None:
        self.ops = ops

    @ad.hookimpl
    def autodag_register_ops(self) -> list[ad.OpDef]:
        """The test ops."""
        return self.ops


@pytest.fixture
def third_party() -> Iterator[None]:
    plugin = _Plugin([MIX, GROW, TRI])
    ad.register_plugin(plugin, name="inline-test-ops")
    CALLS.clear()
    try:
        yield
    finally:
        ad.unregister_plugin(plugin)


def _reference(x: Any, y: Any) -> Any:
    m = x * x * y - 3 * y
    return np.expm1(m * 0.25) + m / (1 + x * x)


def test_third_party_templates_are_written_out_and_match_finite_differences(
    third_party: None,
) -> None:
    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        m = ad.ops.get("mix")(x, y)
        z = ad.ops.get("grow")(m * 0.25) + m / (1 + x * x)
    prog = ad.compile(z, wrt=[x, y], inputs=[x, y])
    src = prog.source
    # grow answers in NumPy: the scalar function hands every call on to the general one.
    assert "def _scalar" in src and "def _plan" in src
    assert "v0 * v0 * v1 - 3 * v1" in src
    # xp.expm1 in the template: the math plugin's expm1 op, or NumPy's where it is absent.
    assert "_xf_expm1(" in src or "_xp_expm1(" in src
    rng = np.random.default_rng(7)
    for xv, yv in [(0.7, -0.4), (-1.2, 0.3)]:
        value, grads = prog(xv, yv)
        assert float(value) == pytest.approx(_reference(xv, yv), rel=1e-12)
        ref = numeric_grads(_reference, [xv, yv])
        np.testing.assert_allclose([float(g) for g in grads], [float(r) for r in ref],
                                   rtol=1e-6, atol=1e-8)
    xa, ya = rng.standard_normal((2, 3)), rng.standard_normal(3)
    value, (gx, gy) = prog(xa, ya)
    np.testing.assert_allclose(value, _reference(xa, ya), rtol=1e-12)
    rx, ry = numeric_grads(_reference, [xa, ya])
    np.testing.assert_allclose(gx, rx, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gy, ry, rtol=1e-6, atol=1e-8)
    # Written out: the compiled program never called the ops' own rules.
    assert CALLS == {}


def test_an_op_with_operator_templates_gets_the_scalar_function(third_party: None) -> None:
    with ad.Graph():
        x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        z = ad.ops.get("mix")(x, y) * x
    prog = ad.compile(z, wrt=[x, y], inputs=[x, y])
    assert "def _scalar" in prog.source

    def f(a: Any, b: Any) -> Any:
        return (a * a * b - 3 * b) * a

    value, grads = prog(1.5, -0.5)
    assert value == pytest.approx(f(1.5, -0.5), rel=1e-12)
    assert all(type(g) is float for g in grads)
    ref = numeric_grads(f, [1.5, -0.5])
    assert grads == pytest.approx([float(r) for r in ref], rel=1e-6)
    assert CALLS == {}
    # The interpreter runs the rules themselves: the same gradients.
    assert [float(g) for g in ad.grad(z, [x, y], {x: 1.5, y: -0.5})] == pytest.approx(grads)
    assert CALLS["mix.vjp0"] == 1 and CALLS["mix.vjp1"] == 1


def _doubling_multiply(templates: bool) -> ad.OpDef:
    """multiply replaced by 2*a*b, so that the built-in's templates would show."""
    return ad.OpDef(
        name="multiply", arity=2, prefix="mul", override=True,
        forward=_counted("mul.forward", lambda a, b: 2 * a * b),
        backward=(
            _counted("mul.vjp0", lambda xp, g, out, a, b: 2 * g * b),
            _counted("mul.vjp1", lambda xp, g, out, a, b: 2 * g * a),
        ),
        inline="2 * {0} * {1}" if templates else None,
        inline_vjps=("2 * {g} * {1}", "2 * {g} * {0}") if templates else None,
    )


@pytest.mark.parametrize("templates", [False, True])
def test_an_overriding_op_runs_its_own_rules_not_the_builtin_templates(
    templates: bool,
) -> None:
    plugin = _Plugin([_doubling_multiply(templates)])
    ad.register_plugin(plugin, name="doubling-multiply")
    CALLS.clear()
    try:
        with ad.Graph():
            x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
            z = x * y + x
        prog = ad.compile(z, wrt=[x, y], inputs=[x, y])
        src = prog.source
        for xv, yv in [(0.5, 3.0), (np.array([1.0, -2.0]), np.array([0.25, 4.0]))]:
            value, grads = prog(xv, yv)

            def f(a: Any, b: Any) -> Any:
                return 2 * a * b + a

            np.testing.assert_allclose(value, f(xv, yv), rtol=1e-12)
            for g, r in zip(grads, numeric_grads(f, [xv, yv]), strict=True):
                np.testing.assert_allclose(g, r, rtol=1e-6)
    finally:
        ad.unregister_plugin(plugin)
    if templates:
        assert "2 * v0 * v1" in src and CALLS == {}
    else:
        assert "v0 * v1" not in src  # the built-in multiply's expression
        assert CALLS["mul.forward"] >= 2 and CALLS["mul.vjp0"] >= 2
    # The built-in multiply is back once the plugin is gone.
    with ad.Graph():
        x = ad.Placeholder(name="x")
        z = x * 3.0
    assert ad.compile(z, wrt=[x], inputs=[x])(2.0) == (6.0, [3.0])


def test_what_an_ops_rules_share_is_computed_once(third_party: None) -> None:
    with ad.Graph():
        x, y, w = (ad.Placeholder(name=n) for n in "xyw")
        z = ad.ops.get("tri")(x * w, y, w) * y
    prog = ad.compile(z, wrt=[x, y, w], inputs=[x, y, w])
    assert "(_q := " in prog.source and "_q = " in prog.source  # scalar, then general

    def f(a: Any, b: Any, c: Any) -> Any:
        return (a * c + b * c * c) * b

    for args in [(0.3, -1.1, 0.8), (np.array([0.5, 2.0]), np.array([1.5, -0.5]), 1.25)]:
        value, grads = prog(*args)
        np.testing.assert_allclose(value, f(*args), rtol=1e-12)
        for g, r in zip(grads, numeric_grads(f, list(args)), strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-6)
    assert CALLS == {}
