"""autodag.testing.check_op passes correct ops and names the defect of broken ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import registry, testing
from autodag.testing import OpCheckError, OpCheckResult, SampleReport, check_op


def square(**kw: Any) -> ad.OpDef:
    base: dict[str, Any] = {
        "name": "sq", "arity": 1, "forward": lambda a: a * a,
        "backward": (lambda xp, g, out, a: 2 * g * a,), "input_names": ("x",),
        "samples": lambda rng: [ad.Sample((rng.standard_normal((2, 3)),))],
    }
    base.update(kw)
    return ad.OpDef(**base)


def test_a_correct_op_passes_and_reports_what_was_checked() -> None:
    res = check_op(square())
    assert (res.op, res.samples, res.gradients_checked) == ("sq", 1, True)
    assert 0 <= res.max_abs_error < 1e-6
    assert res.checks == (testing.GRADIENTS, testing.SYMBOLIC, testing.JVP,
                          testing.SECOND_ORDER, testing.STATIC_SHAPES, testing.FLOAT32)
    assert res.needs == ()  # multiply and the engine's helpers are built-in
    (detail,) = res.details
    assert isinstance(detail, SampleReport) and detail.index == 0 and not detail.notes
    assert [c for c, _ in detail.checks] == list(res.checks)
    errors = dict(detail.checks)
    assert errors[testing.GRADIENTS] == res.max_abs_error
    symbolic = errors[testing.SYMBOLIC]
    assert symbolic is not None and symbolic < 1e-12
    assert errors[testing.STATIC_SHAPES] is None
    assert detail.describe().startswith("sample 0 (input shapes (2, 3)): gradients (max |error|")
    assert check_op(square(), np.arange(3.0)).samples == 1
    assert isinstance(res, OpCheckResult)


def test_ops_are_accepted_by_name_and_as_registered_op() -> None:
    assert check_op("multiply").gradients_checked
    assert check_op(ad.get_registry().get("exp")).samples == 3
    assert not check_op("less").gradients_checked  # not differentiable: forward checks only


def test_check_op_failures_are_assertion_errors() -> None:
    assert issubclass(OpCheckError, AssertionError)


def test_wrong_gradient_names_op_input_and_worst_element() -> None:
    def rule(xp: Any, g: Any, out: Any, a: Any) -> Any:
        r = 2 * g * a
        r[1, 2] += 0.5
        return r

    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(OpCheckError,
                       match=r"op 'sq', sample 0 \(input shapes \(2, 3\)\): gradient of input 0 "
                             r"\('x'\) is wrong at index \(1, 2\).*1 of 6 elements wrong"):
        check_op(square(backward=(rule,)), x)


def test_wrong_number_of_gradients() -> None:
    op = ad.OpDef(name="pair", arity=2, forward=lambda a, b: a * b,
                  backward=lambda xp, g, out, a, b: (g * b,))
    with pytest.raises(OpCheckError, match="backward returned 1 gradients for 2 inputs"):
        check_op(op, np.ones(2), np.ones(2))


def test_gradient_of_an_unreducible_shape() -> None:
    op = square(backward=(lambda xp, g, out, a: np.ones((4,)),))
    with pytest.raises(OpCheckError, match=r"shape \(4,\) for input 0 \('x'\) of shape \(2, 3\)"):
        check_op(op)


def test_broadcast_gradients_are_summed_like_the_engine_does() -> None:
    # A rule returning the full broadcast gradient for a (3,)-shaped input is correct.
    op = ad.OpDef(name="mul", arity=2, forward=lambda a, b: a * b,
                  backward=(lambda xp, g, out, a, b: g * b, lambda xp, g, out, a, b: g * a))
    rng = np.random.default_rng(1)
    check_op(op, rng.standard_normal((2, 3)), rng.standard_normal(3))
    bad = ad.OpDef(name="mul", arity=2, forward=lambda a, b: a * b,
                   backward=(lambda xp, g, out, a, b: g * b,
                             lambda xp, g, out, a, b: (g * a)[0]))
    with pytest.raises(OpCheckError, match=r"input 1 is wrong"):
        check_op(bad, rng.standard_normal((2, 3)), rng.standard_normal(3))


def test_forward_that_mutates_its_input() -> None:
    def fwd(a: Any) -> Any:
        a *= 1.5
        return a

    with pytest.raises(OpCheckError, match=r"forward mutated input 0 \('x'\)"):
        check_op(square(forward=fwd))


def test_backward_that_mutates_the_output_gradient() -> None:
    def rule(xp: Any, g: Any, out: Any, a: Any) -> Any:
        g *= 2 * a
        return g

    with pytest.raises(OpCheckError, match="backward mutated the output gradient"):
        check_op(square(backward=(rule,)))


def test_float32_inputs_must_stay_float32() -> None:
    upcast_value = square(forward=lambda a: np.asarray(a, dtype=np.float64) ** 2)
    with pytest.raises(OpCheckError, match="float32 inputs gave a float64 value"):
        check_op(upcast_value)
    upcast_grad = square(
        backward=(lambda xp, g, out, a: 2 * np.asarray(g, dtype=np.float64) * a,),
        symbolic=False)
    with pytest.raises(OpCheckError, match=r"float64 gradient for input 0 \('x'\)"):
        check_op(upcast_grad)
    check_op(upcast_grad, check_dtypes=False)


def test_attributes_and_variadic_ops() -> None:
    x = np.arange(6.0).reshape(2, 3)
    check_op("sum", x, attrs={"axis": 1})
    check_op("concatenate", x, x[:1], attrs={"axis": 0})
    with pytest.raises(OpCheckError, match=r"inputs do not fit the op.*unexpected keyword"):
        check_op("sum", x, attrs={"axes": 1})


def test_misuse_is_a_plain_error() -> None:
    with pytest.raises(ValueError, match="has no samples"):
        check_op(square(samples=None))
    with pytest.raises(TypeError, match="op must be a name"):
        check_op(3)  # type: ignore[arg-type]
    with pytest.raises(ad.OpNotFoundError):
        check_op("no_such_op")


# --- what the old check_op passed: ops that break once users call gradients or jvp --
def _samples(rng: np.random.Generator) -> list[ad.Sample]:
    return [ad.Sample((rng.standard_normal((2, 3)),)), ad.Sample((rng.standard_normal(()),))]


@pytest.fixture
def plugin() -> Iterator[Any]:
    """Register ops as a run-time plugin named 'tcheck'; unregister them afterwards."""
    names: list[str] = []

    def register(*ops: ad.OpDef) -> str:
        class Plugin:
            @ad.hookimpl
            def autodag_register_ops(self) -> list[ad.OpDef]:
                return list(ops)

        names.append(ad.register_plugin(Plugin(), name="tcheck"))
        return names[-1]

    yield register
    for name in names:
        ad.unregister_plugin(name)


def np_cos_rule(xp: Any, g: Any, out: Any, a: Any) -> Any:
    # NumPy with no op behind it: fine on numbers, a NumpyFunctionError on nodes.
    return g * np.cos(np.asarray(a))


NP_SIN = ad.OpDef(name="np_sin", arity=1, forward=np.sin, backward=(np_cos_rule,),
                  samples=_samples)


def test_a_numpy_call_in_a_symbolic_rule_fails_naming_op_plugin_and_rule(plugin: Any) -> None:
    plugin(NP_SIN)
    with ad.Graph():
        x = ad.Variable(np.array([0.2, 0.5]))
        y = ad.ops.get("np_sin")(x)
    np.testing.assert_allclose(ad.grad(y, [x])[0], np.cos(x.value))  # first order is fine
    with pytest.raises(OpCheckError) as info:
        check_op("np_sin")
    msg = str(info.value)
    assert msg.startswith("op 'np_sin' from plugin 'tcheck' (registered at run time), sample 0")
    assert "autodag.gradients (the symbolic gradient" in msg
    assert "the backward rule of input 0 of node 'np_sin/0'" in msg
    assert "raised NumpyFunctionError: node " in msg and "is a graph node" in msg
    assert "use xp.<name> (xp.cos(a)) instead, or declare the op symbolic=False" in msg
    assert "test_testing.py" in msg and "return g * np.cos(np.asarray(a))" in msg
    assert isinstance(info.value.__cause__, ad.SymbolicGradientError)
    # Declared NumPy-only, the same op passes: first order only.
    res = check_op(ad.OpDef(name="np_sin", arity=1, forward=np.sin, backward=(np_cos_rule,),
                            samples=_samples, symbolic=False))
    assert testing.GRADIENTS in res.checks and testing.JVP not in res.checks


def test_gradients_and_jvp_name_the_op_whose_rule_failed_on_nodes(plugin: Any) -> None:
    plugin(NP_SIN)
    with ad.Graph():
        x = ad.Variable(np.array([0.2, 0.5]), name="x")
        y = ad.ops.get("np_sin")(x)
    site = r"created at .*test_testing.py:\d+"
    rule = r"the backward rule of input 0 of node 'np_sin/0' \(op 'np_sin' from plugin 'tcheck'"
    with pytest.raises(ad.SymbolicGradientError,
                       match=rf"{rule}.*{site}.*NumpyFunctionError") as info:
        ad.gradients(y, [x], grad_ys=np.ones(2))
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(ad.SymbolicGradientError, match=rf"{rule}.*{site}.*NumpyFunctionError"):
        ad.jvp(y, [x], [np.ones(2)])
    with pytest.raises(ad.GradientError, match="symbolic=False"):
        ad.hessian(ad.ops.sum(y), x)


def test_a_numpy_call_in_a_jvp_rule_is_named_too(plugin: Any) -> None:
    plugin(ad.OpDef(name="sin_jvp", arity=1, forward=np.sin,
                    backward=(lambda xp, g, out, a: g * xp.cos(a),),
                    jvp=lambda xp, ts, out, a: ts[0] * np.cos(np.asarray(a)),
                    samples=_samples))
    with pytest.raises(OpCheckError,
                       match=r"autodag.jvp .*failed.*the jvp rule of node 'sin_jvp/\d+'.*"
                             r"NumpyFunctionError"):
        check_op("sin_jvp")


def test_a_wrong_jvp_rule_is_compared_with_finite_differences() -> None:
    op = ad.OpDef(name="sin_jvp", arity=1, forward=np.sin,
                  backward=(lambda xp, g, out, a: g * xp.cos(a),),
                  jvp=lambda xp, ts, out, a: ts[0] * xp.sin(a), samples=_samples)
    with pytest.raises(OpCheckError, match=r"forward-mode derivative \(autodag.jvp\) along a "
                                           r"random tangent is wrong at index"):
        check_op(op)


def test_a_wrong_second_derivative_is_found(plugin: Any) -> None:
    # frozen(a) is a with no gradient: the rule is right on numbers and to first order,
    # but its own derivative misses the term through the frozen factor.
    frozen = ad.OpDef(name="frozen", arity=1, forward=lambda a: a, backward=(None,))
    cube = ad.OpDef(name="cube", arity=1, forward=lambda a: a ** 3,
                    backward=(lambda xp, g, out, a: 3 * g * a * xp.frozen(a),),
                    samples=_samples)
    plugin(frozen, cube)
    with pytest.raises(OpCheckError, match=r"sample 0 .*the second derivative \(Hessian-vector "
                                           r"product\) for input 0 is wrong at index"):
        check_op("cube")


def test_a_rule_needing_an_op_that_is_not_registered_fails_naming_it() -> None:
    # xp.fabs is NumPy's for numbers (first order works), but no plugin registers it.
    op = square(backward=(lambda xp, g, out, a: 2 * g * xp.fabs(a) * xp.sign(a),))
    with pytest.raises(OpCheckError, match=r"its rules use xp.fabs: no op named 'fabs' is "
                                           r"registered.*autodag.grad works.*symbolic=False"):
        check_op(op)


def test_a_missing_name_in_a_rule_of_another_op_is_explained_once(plugin: Any) -> None:
    # twice's rule, run on nodes for the jvp of usetwice, asks for an op nobody registers.
    twice = ad.OpDef(name="twice", arity=1, forward=lambda a: 2 * a,
                     backward=(lambda xp, g, out, a: xp.frobnicate(g),))
    op = ad.OpDef(name="usetwice", arity=1, forward=lambda a: a * a,
                  backward=(lambda xp, g, out, a: xp.twice(g * a),), samples=_samples)
    plugin(twice, op)
    with pytest.raises(OpCheckError, match=r"xp.frobnicate was used by the derivative rule of "
                                           r"node 'twice/\d+'.*autodag.grad works") as info:
        check_op("usetwice")
    assert str(info.value).count("no op named 'frobnicate' is registered") == 1


@pytest.fixture
def math_not_loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the array plugin loaded (the process's plugins again afterwards)."""
    monkeypatch.setenv(registry.ENV_LOAD_ONLY, "autodag-array")
    ad.reset_plugins()
    yield
    ad.reset_plugins()


def test_a_rule_needing_an_op_of_an_unloaded_plugin_names_that_plugin(
        math_not_loaded: None) -> None:
    op = square(backward=(lambda xp, g, out, a: 2 * g * xp.abs(a) * xp.sign(a),))
    assert "abs" not in ad.get_registry()
    with pytest.raises(OpCheckError, match=r"its rules use xp.abs: no op named 'abs' is "
                                           r"registered; it is provided by installed plugin "
                                           r"'math' \(autodag-math 0.1.0\), which is not loaded"):
        check_op(op)


def test_needs_lists_other_plugins_ops_the_rules_use(plugin: Any) -> None:
    helper = ad.OpDef(name="twice", arity=1, forward=lambda a: 2 * a,
                      backward=(lambda xp, g, out, a: 2 * g,))
    op = ad.OpDef(name="sinh_ish", arity=1, forward=lambda a: (np.exp(a) - np.exp(-a)) / 2,
                  backward=(lambda xp, g, out, a: xp.twice(g) * (xp.exp(a) + xp.exp(-a)) / 4,),
                  samples=_samples)
    plugin(helper, op)
    res = check_op("sinh_ish")
    # exp is the math plugin's; twice is its own plugin's, multiply the built-in one's.
    assert res.needs == ("exp (math)",)
    assert check_op("relu").needs == ("greater (math)", "where (math)")
    assert check_op("log_softmax").needs == ("sum (array)", "exp (math)")


def test_a_wrong_inline_template_fails_against_the_interpreter() -> None:
    wrong_vjp = square(inline="{0} * {0}", inline_vjps=("{g} * {0}",))
    with pytest.raises(OpCheckError, match=r"the compiled gradient of input 0 \('x'\) "
                                           r"\(arrays\) is wrong.*autodag.compile gave.*"
                                           r"the template inline_vjps\[0\]='\{g\} \* \{0\}'"):
        check_op(wrong_vjp)
    wrong_forward = square(inline="{0} + {0}", inline_vjps=("2 * {g} * {0}",))
    with pytest.raises(OpCheckError, match=r"the compiled value \(arrays\) is wrong.*the "
                                           r"template inline='\{0\} \+ \{0\}'"):
        check_op(wrong_forward)
    res = check_op(square(inline="{0} * {0}", inline_vjps=("2 * {g} * {0}",)))
    assert testing.INLINE in res.checks


def test_inline_templates_are_checked_on_scalar_samples_too() -> None:
    # A 0-d sample runs twice: as NumPy values and as Python floats (the scalar function).
    res = check_op(square(inline="{0} * {0}", inline_vjps=("2 * {g} * {0}",)), np.array(1.5))
    assert testing.INLINE in res.checks
    op = ad.OpDef(name="rem", arity=2, forward=np.fmod, backward=None, inline="{0} % {1}")
    with pytest.raises(OpCheckError, match=r"the compiled value \(arrays\) is wrong"):
        check_op(op, np.array(-5.5), np.array(2.0))  # fmod keeps the sign, % does not


def test_a_forward_whose_static_shape_differs_fails() -> None:
    positives = ad.OpDef(name="positives", arity=1, forward=lambda a: a[a > 0], backward=None,
                         samples=lambda rng: [ad.Sample((np.array([1.0, -2.0, 3.0]),))])
    with pytest.raises(OpCheckError, match=r"static shape inference gives shape \(3,\) and "
                                           r"dtype float64 for the output \(float64 inputs\), "
                                           r"but forward gives shape \(2,\)"):
        check_op(positives)
    upcast_ones = ad.OpDef(name="odd_dtype", arity=1, backward=None,
                           forward=lambda a: a.astype(np.float32) if np.all(a == 1) else a,
                           samples=lambda rng: [ad.Sample((np.array([1.0, -2.0]),))])
    with pytest.raises(OpCheckError, match=r"gives shape \(2,\) and dtype float32 .* forward "
                                           r"gives shape \(2,\) and dtype float64"):
        check_op(upcast_ones)


def test_second_order_at_a_kink_is_built_but_not_compared() -> None:
    res = check_op("abs", np.array([0.0, 1.5]))
    (detail,) = res.details
    assert dict(detail.checks)[testing.SECOND_ORDER_BUILT] is None
    assert testing.SECOND_ORDER not in res.checks
    assert any("built and evaluated, not compared" in n for n in detail.notes)
    res = check_op("max")  # ties in some samples, none in others
    assert testing.SECOND_ORDER in res.checks
    assert any(testing.SECOND_ORDER_BUILT in dict(d.checks) for d in res.details)


def test_every_first_party_op_passes() -> None:
    first_party = [r for r in ad.get_registry().ops.values()
                   if r.plugin.builtin or (r.plugin.distribution or "").startswith("autodag-")]
    assert len(first_party) > 50
    for reg in first_party:
        if reg.opdef.samples is not None:
            res = check_op(reg)
            assert testing.STATIC_SHAPES in res.checks, reg.opdef.name
            if reg.opdef.differentiable and reg.opdef.symbolic:
                assert {testing.SYMBOLIC, testing.JVP} <= set(res.checks), reg.opdef.name


def test_order_1_leaves_out_second_order_and_other_orders_are_refused() -> None:
    res = check_op(square(), order=1)
    assert testing.SECOND_ORDER not in res.checks
    assert {testing.GRADIENTS, testing.JVP, testing.FLOAT32} <= set(res.checks)
    with pytest.raises(ad.ArgumentError, match="order must be 1 or 2, got 3"):
        check_op(square(), order=3)


def test_one_sample_alone_is_that_sample_as_the_full_run_checks_it() -> None:
    two = square(samples=lambda rng: [ad.Sample((rng.standard_normal((2, 3)),)),
                                      ad.Sample((rng.standard_normal(4),))])
    full = check_op(two)
    alone = check_op(two, sample=1)
    assert alone.samples == 1 and alone.details == (full.details[1],)
    with pytest.raises(ad.ArgumentError, match=r"sample=2 needs .* has 2"):
        check_op(two, sample=2)
    with pytest.raises(ad.ArgumentError, match=r"inputs were given"):
        check_op(two, np.ones(3), sample=0)


def test_a_failure_says_which_check_failed_and_what_passed_before() -> None:
    def rule(xp: Any, g: Any, out: Any, a: Any) -> Any:
        r = 2 * g * a
        r[1, 2] += 0.5
        return r

    with pytest.raises(OpCheckError) as info:
        check_op(square(backward=(rule,)), np.arange(6.0).reshape(2, 3))
    assert info.value.check == testing.GRADIENTS
    assert info.value.report is not None
    assert [c for c, _ in info.value.report.checks] == [testing.STATIC_SHAPES]
    # The rule is off by 0.5 at one element; central differences of a*a are exact to ~1e-9.
    assert info.value.max_abs_error == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(OpCheckError) as info:
        check_op(ad.OpDef(name="boom", arity=1, forward=lambda a: 1 / 0, backward=None),
                 np.ones(2))
    assert info.value.check == testing.FORWARD and info.value.max_abs_error is None
