"""autodag.testing.check_op passes correct ops and names the defect of broken ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.testing import OpCheckError, OpCheckResult, check_op


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
    assert res == OpCheckResult("sq", 1, True, res.max_abs_error)
    assert 0 <= res.max_abs_error < 1e-6
    assert check_op(square(), np.arange(3.0)).samples == 1


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
        backward=(lambda xp, g, out, a: 2 * np.asarray(g, dtype=np.float64) * a,))
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
