"""Every op of the first-party plugins that takes an axis, against NumPy.

For each op and each axis (None, int, negative, tuples in any order, the empty tuple),
keepdims and kind of input (Python float and int, NumPy scalars, 0-d to 3-d arrays,
float32), the value must be NumPy's (shape and dtype included) and the gradient of
``sum(out * w)`` must match central differences in float64: through ``autodag.grad``,
a compiled program, symbolic gradients (also differentiated again) and forward mode.
Where NumPy refuses an axis, autodag must refuse it too, with a ShapeMismatchError
naming the op, the axis and the input's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import autodag as ad
from tests.fd import numeric_grads

Ref = Callable[..., Any]

_rng = np.random.default_rng(20240607)


def _r(*shape: int) -> Any:
    """Values some way apart, so that no maximum is near a tie: central differences
    across a tie would see the jump of max's gradient."""
    n = max(1, int(np.prod(shape)))
    step = 4 / n
    x = (_rng.permutation(n) - n / 2) * step + _rng.uniform(0, step / 3, n)
    return x.reshape(shape)


#: Inputs by kind; "rows" is a batch of short rows, which logsumexp reduces another way.
KINDS: dict[str, Any] = {
    "float": 0.7,
    "int": 2,
    "np.float64": np.float64(-0.4),
    "np.float32": np.float32(0.3),
    "0-d": np.array(1.2),
    "1-d": _r(4),
    "2-d": _r(2, 3),
    "rows": _r(32, 3),
    "3-d": _r(2, 3, 4),
    "3-d float32": _r(2, 3, 4).astype(np.float32),
}

#: Axes NumPy takes, by kind. 0 and -1 on 0-d inputs are NumPy's legacy (numpy.sum
#: takes them, numpy.mean does not), so they appear here and, for mean, among the
#: refused axes.
GOOD_AXES: dict[str, list[Any]] = {
    "float": [None, (), -1],
    "int": [None, 0],
    "np.float64": [None, ()],
    "np.float32": [None, -1],
    "0-d": [None, (), 0, -1],
    "1-d": [None, -1, (0,), ()],
    "2-d": [0, -1, (1, 0), (-2,)],
    "rows": [-1, (1,), (-1, 0)],
    "3-d": [None, 1, (0, 2), (-1, -3), (0, -2, 1), ()],
    "3-d float32": [None, -1, (2, 0)],
}
#: Kinds whose cases run with keepdims False only: for a scalar it changes nothing.
SCALARS = ("float", "int", "np.float64", "np.float32")

#: Axes NumPy refuses: out of range, repeated, a tuple for a 0-d input.
BAD_AXES: dict[str, list[Any]] = {
    "float": [1, (0,)],
    "0-d": [1, -2, (0,), (-1,), (0, 0)],
    "1-d": [1, -2, (0, 0), (0, -1), (1,)],
    "2-d": [2, -3, (0, 0), (1, -1), (0, 2)],
    "3-d": [3, -4, (0, 0, 1), (2, -1), (0, 5)],
}


#: NumPy's own logsumexp, stable; typed Any: its stubs take keepdims only as a literal.
_logaddexp_reduce: Any = np.logaddexp.reduce


def _logsumexp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return _logaddexp_reduce(a, axis=axis, keepdims=keepdims)


def _softmax(a: Any, axis: Any) -> Any:  # scipy.special.softmax, from NumPy alone
    return np.exp(a - _logaddexp_reduce(a, axis=axis, keepdims=True))


def _log_softmax(a: Any, axis: Any) -> Any:
    return a - _logaddexp_reduce(a, axis=axis, keepdims=True)


#: op name -> (NumPy's function, whether it takes keepdims)
OPS: dict[str, tuple[Ref, bool]] = {
    "sum": (np.sum, True),
    "mean": (np.mean, True),
    "max": (np.max, True),
    "logsumexp": (_logsumexp, True),
    "softmax": (_softmax, False),
    "log_softmax": (_log_softmax, False),
}


def _numpy_refuses(ref: Ref, x: Any, attrs: dict[str, Any]) -> bool:
    try:
        ref(x, **attrs)
    except (ValueError, TypeError):
        return True
    return False


def _grid(axes: dict[str, list[Any]], keepdims_both: bool = True) -> list[Any]:
    """(op, kind, attrs, whether NumPy refuses them, test id) for every combination."""
    cases = []
    for op, (ref, keepdims) in OPS.items():
        for kind, axis_list in axes.items():
            for axis in axis_list:
                both = keepdims_both and kind not in SCALARS
                for kd in ((False, True) if both else (False,)) if keepdims else (None,):
                    attrs: dict[str, Any] = {"axis": axis}
                    if kd is not None:
                        attrs["keepdims"] = kd
                    label = f"{op}-{kind}-" + "-".join(f"{k}={v}" for k, v in attrs.items())
                    cases.append((op, kind, attrs, _numpy_refuses(ref, KINDS[kind], attrs),
                                  label.replace(" ", "")))
    return cases


_GOOD = [pytest.param(op, kind, attrs, id=label)
         for op, kind, attrs, refused, label in _grid(GOOD_AXES) if not refused]
# keepdims changes no error: once is enough.
_REFUSED = [pytest.param(op, kind, attrs, id=label)
            for op, kind, attrs, refused, label in _grid(GOOD_AXES, False)
            + _grid(BAD_AXES, False) if refused]


# --- the independent references ------------------------------------------------------
def _f64(x: Any) -> Any:
    return np.array(x, dtype=np.float64)


def _hvp_fd(f: Ref, xs: Sequence[Any], us: Sequence[Any], k: float = 1e-3) -> list[Any]:
    """H u of ``sum(f)`` by central differences of the central-difference gradient
    (steps balancing truncation against rounding, which the outer step divides)."""
    up = numeric_grads(f, [_f64(x) + k * u for x, u in zip(xs, us)], eps=1e-5)
    down = numeric_grads(f, [_f64(x) - k * u for x, u in zip(xs, us)], eps=1e-5)
    return [(p - m) / (2 * k) for p, m in zip(up, down)]


def _jvp_fd(ref: Ref, xs: Sequence[Any], ts: Sequence[Any], k: float = 1e-6) -> Any:
    """J t of ``ref`` by central differences along t."""
    hi = ref(*[_f64(x) + k * t for x, t in zip(xs, ts)])
    lo = ref(*[_f64(x) - k * t for x, t in zip(xs, ts)])
    return (np.asarray(hi) - np.asarray(lo)) / (2 * k)


def _close(actual: Any, desired: Any, tol: tuple[float, float], what: str) -> None:
    np.testing.assert_allclose(actual, desired, rtol=tol[0], atol=tol[1], err_msg=what)


def check_against_numpy(build: Callable[..., Any], ref: Ref, inputs: Sequence[Any],
                        seed: int = 0) -> None:
    """``build(*nodes)`` against ``ref(*values)``: value, then first- and second-order
    gradients and forward mode against central differences, every way autodag has."""
    rng = np.random.default_rng(seed)
    want = ref(*inputs)
    f32 = any(np.result_type(x) == np.float32 for x in inputs)
    # (rtol, atol) of values, of gradients and of second derivatives against NumPy
    vtol = (1e-5, 1e-6) if f32 else (1e-12, 1e-12)
    gtol = (1e-4, 1e-5) if f32 else (1e-6, 1e-7)
    htol = (1e-3, 1e-3) if f32 else (1e-4, 1e-5)
    w = rng.standard_normal(np.shape(want))
    if f32:
        w = w.astype(np.float32)  # so that a float32 graph stays float32 throughout
    us = [rng.standard_normal(np.shape(x)) for x in inputs]

    def weighted(*xs: Any) -> Any:
        return ref(*xs) * w

    fd = numeric_grads(weighted, inputs)
    with ad.Graph():
        vs = [ad.Variable(x) for x in inputs]
        z = build(*vs)
        value = ad.evaluate(z)
        assert np.shape(value) == np.shape(want)
        assert np.result_type(value) == np.result_type(want)
        _close(value, want, vtol, "value")

        loss = ad.ops.sum(z * w)
        for g, ref_g in zip(ad.grad(loss, vs), fd, strict=True):
            _close(g, ref_g, gtol, "autodag.grad")

        prog = ad.compile(loss, wrt=vs, inputs=vs)
        cvalue, cgrads = prog(*inputs)
        _close(cvalue, np.sum(want * w), vtol, "compiled value")
        for g, ref_g in zip(cgrads, fd, strict=True):
            _close(g, ref_g, gtol, "compiled")

        gnodes = ad.gradients(loss, vs)
        for x, g, ref_g in zip(inputs, ad.evaluate(gnodes), fd, strict=True):
            _close(g, ref_g, gtol, "symbolic")
            if np.result_type(x) == np.float32:
                assert np.result_type(g) == np.float32, "symbolic gradient left float32"
        inner = ad.ops.sum(gnodes[0] * us[0])
        for gn, u in zip(gnodes[1:], us[1:]):
            inner = inner + ad.ops.sum(gn * u)
        hvp = ad.evaluate(ad.gradients(inner, vs))
        for h, ref_h in zip(hvp, _hvp_fd(weighted, inputs, us), strict=True):
            _close(h, ref_h, htol, "second order")

        tangent = ad.jvp(z, vs, us)
        _close(tangent, _jvp_fd(ref, inputs, us), gtol, "forward mode")


@pytest.mark.parametrize(("op", "kind", "attrs"), _GOOD)
def test_reduction_matches_numpy_in_value_and_derivatives(
    op: str, kind: str, attrs: dict[str, Any]
) -> None:
    ref = OPS[op][0]
    check_against_numpy(lambda v: getattr(ad.ops, op)(v, **attrs),
                        lambda x: ref(x, **attrs), [KINDS[kind]])


@pytest.mark.parametrize(("op", "kind", "attrs"), _REFUSED)
def test_axis_numpy_refuses_is_a_named_error(op: str, kind: str, attrs: dict[str, Any]) -> None:
    x = KINDS[kind]
    shape = str(np.shape(x))
    with ad.Graph():
        v = ad.Variable(x)
        z = getattr(ad.ops, op)(v, **attrs)
        with pytest.raises(ad.ShapeMismatchError) as graph_error:
            ad.evaluate(z)
    # Called directly (as backward rules call ops through xp), not through a graph.
    with pytest.raises(ad.ShapeMismatchError) as direct_error:
        getattr(ad.get_registry().numeric, op)(x, **attrs)
    for exc in (graph_error, direct_error):
        msg = str(exc.value)
        assert f"{op}: axis" in msg and shape in msg and repr(attrs["axis"]) in msg, msg


@pytest.mark.parametrize("op", list(OPS))
def test_a_compiled_program_names_a_bad_axis(op: str) -> None:
    x = KINDS["2-d"]
    with ad.Graph():
        v = ad.Variable(x)
        prog = ad.compile(ad.ops.sum(getattr(ad.ops, op)(v, axis=(0, -2))), wrt=[v],
                          inputs=[v])
    with pytest.raises(ad.ShapeMismatchError,
                       match=rf"{op}: axis=\(0, -2\) names an axis twice, for an input of "
                             rf"shape \(2, 3\)"):
        prog(x)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("axis", [1.0, True, [0], "0"])
def test_an_axis_that_is_not_an_int_is_a_named_error(op: str, axis: Any) -> None:
    with pytest.raises(ad.ShapeMismatchError, match=rf"^{op}: axis must be None, an int "
                                                    rf"or a tuple of ints, got .* \(2, 3\)"):
        getattr(ad.get_registry().numeric, op)(KINDS["2-d"], axis=axis)


def test_the_issue_examples() -> None:
    # logsumexp(ones((2, 3)), axis=(0, 1)) failed on "tuple % int"; 0-d inputs failed
    # on "return arrays must be of ArrayType".
    with ad.Graph():
        assert ad.evaluate(ad.ops.logsumexp(np.ones((2, 3)), axis=(0, 1))) == pytest.approx(
            1 + np.log(6))
        for x in (2.0, np.float64(2.0), np.array(2.0)):
            assert ad.evaluate(ad.ops.logsumexp(x)) == 2.0


def test_logsumexp_of_a_batch_of_rows_refuses_an_axis_out_of_range() -> None:
    # The batch-of-rows path took axis % 2, so axis=5 reduced axis 1 of a (32, 3) array.
    with ad.Graph(), pytest.raises(ad.ShapeMismatchError, match="axis 5 is out of range"):
        ad.evaluate(ad.ops.logsumexp(np.ones((32, 3)), axis=5, keepdims=True))


# --- the other ops with an axis: concatenate, stack, transpose, softmax_cross_entropy -
def _join_cases() -> list[Any]:
    a, b = _r(2, 3), _r(1, 3)
    c = _r(2, 3)
    return [
        pytest.param("concatenate", [a, b], {"axis": 0}, id="concatenate-0"),
        pytest.param("concatenate", [a, b], {"axis": -2}, id="concatenate--2"),
        pytest.param("concatenate", [a, c], {"axis": -1}, id="concatenate--1"),
        pytest.param("concatenate", [a, b], {"axis": None}, id="concatenate-None"),
        pytest.param("concatenate", [np.array(1.5), _r(3)], {"axis": None},
                     id="concatenate-None-0d"),
        pytest.param("concatenate", [0.5, 2.0], {"axis": None}, id="concatenate-None-floats"),
        pytest.param("concatenate", [_r(3).astype(np.float32)] * 2, {"axis": -1},
                     id="concatenate-float32"),
        pytest.param("stack", [a, c], {"axis": 0}, id="stack-0"),
        pytest.param("stack", [a, c], {"axis": 2}, id="stack-2"),
        pytest.param("stack", [a, c, a], {"axis": -1}, id="stack--1"),
        pytest.param("stack", [a, c], {"axis": -3}, id="stack--3"),
        pytest.param("stack", [0.5, np.float64(2.0)], {"axis": -1}, id="stack-scalars"),
        pytest.param("stack", [np.array(0.5), np.array(2.0)], {"axis": 0}, id="stack-0d"),
    ]


@pytest.mark.parametrize(("op", "inputs", "attrs"), _join_cases())
def test_joining_ops_match_numpy_in_value_and_derivatives(
    op: str, inputs: list[Any], attrs: dict[str, Any]
) -> None:
    ref = getattr(np, op)
    check_against_numpy(lambda *vs: getattr(ad.ops, op)(list(vs), **attrs),
                        lambda *xs: ref(list(xs), **attrs), inputs)


@pytest.mark.parametrize(("op", "inputs", "axis", "match"), [
    ("concatenate", [_r(2, 3)] * 2, 2, r"axis 2 is out of range for inputs of shapes "
                                        r"\[\(2, 3\), \(2, 3\)\] \(axes run from -2 to 1\)"),
    ("concatenate", [_r(2, 3)] * 2, (0,), r"axis must be None or an int, got \(0,\)"),
    ("concatenate", [np.array(1.0)] * 2, 0,
     r"axis 0 of inputs of shapes \[\(\), \(\)\]: 0-d inputs have no axis to join along"),
    ("stack", [_r(2, 3)] * 2, 3, r"axis 3 is out of range for the result of stacking "
                                 r"inputs of shape \(2, 3\) \(axes run from -3 to 2\)"),
    ("stack", [_r(2, 3)] * 2, -4, r"axis -4 is out of range"),
    ("stack", [_r(2, 3)] * 2, None, r"axis must be an int, got None"),
    ("stack", [_r(2, 3)] * 2, (0,), r"axis must be an int, got \(0,\)"),
])
def test_joining_ops_name_a_bad_axis(op: str, inputs: list[Any], axis: Any,
                                     match: str) -> None:
    with ad.Graph():
        z = getattr(ad.ops, op)(inputs, axis=axis)
        with pytest.raises(ad.ShapeMismatchError, match=f"{op}: {match}"):
            ad.evaluate(z)
    with pytest.raises(ad.ShapeMismatchError, match=f"^{op}: {match}"):
        getattr(ad.get_registry().numeric, op)(inputs, axis=axis)


@pytest.mark.parametrize(("x", "axes"), [
    (_r(2, 3, 4), (-1, 0, -2)),
    (_r(2, 3, 4), None),
    (_r(2, 3), (-1, -2)),
    (np.array(0.5), ()),
    (1.5, None),
    (_r(2, 3).astype(np.float32), (1, 0)),
], ids=["3-d-negative", "3-d-None", "2-d-negative", "0-d", "float", "float32"])
def test_transpose_matches_numpy_in_value_and_derivatives(x: Any, axes: Any) -> None:
    check_against_numpy(lambda v: ad.ops.transpose(v, axes),
                        lambda a: np.transpose(a, axes), [x])


@pytest.mark.parametrize(("axes", "match"), [
    ((0, 0), r"axes=\(0, 0\) names an axis twice, for an input of shape \(2, 3\)"),
    ((0, 2), r"axis 2 \(in axes=\(0, 2\)\) is out of range for an input of shape \(2, 3\)"),
    ((0,), r"axes \(0,\) name 1 axes, but an input of shape \(2, 3\) has 2"),
    (1, r"axes must be None or a tuple of ints, got 1 for an input of shape \(2, 3\)"),
])
def test_transpose_names_bad_axes(axes: Any, match: str) -> None:
    with pytest.raises(ad.ShapeMismatchError, match=f"^transpose: {match}"):
        ad.get_registry().numeric.transpose(KINDS["2-d"], axes)


def _sce_ref(labels: Any, axis: int) -> Ref:
    def ref(z: Any) -> Any:
        logp = z - _logaddexp_reduce(z, axis=axis, keepdims=True)
        if np.result_type(labels).kind == "i":
            picked = np.take_along_axis(logp, np.expand_dims(labels, axis), axis)
            return -np.squeeze(picked, axis)
        return -np.sum(labels * logp, axis=axis)

    return ref


def _probs(*shape: int) -> Any:
    p = np.exp(_r(*shape))
    return p / p.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize(("logits", "labels", "axis"), [
    (_r(4, 3), np.array([0, 2, 1, 2]), -1),
    (_r(4, 3), np.array([0, 2, 1]), 0),
    (_r(4, 3), np.array([0, 2, 1]), -2),
    (_r(2, 5, 3), np.array([[0, 4, 1], [2, 2, 3]]), 1),
    (_r(5), np.array(3), 0),
    (_r(4, 3), _probs(4, 3), -1),
    (_r(4, 3).astype(np.float32), np.array([1, 0, 0, 2]), 1),
], ids=["last", "first", "first-negative", "middle", "1-d", "probabilities", "float32"])
def test_softmax_cross_entropy_matches_numpy_along_any_axis(
    logits: Any, labels: Any, axis: int
) -> None:
    check_against_numpy(lambda v: ad.ops.softmax_cross_entropy(v, labels, axis=axis),
                        _sce_ref(labels, axis), [logits])


@pytest.mark.parametrize(("logits", "labels", "axis", "match"), [
    (_r(2, 3), np.array([0, 1]), 2,
     r"axis 2 is out of range for an input of shape \(2, 3\) \(axes run from -2 to 1\)"),
    (_r(2, 3), np.array([0, 1]), -3, r"axis -3 is out of range"),
    (_r(2, 3), np.array([0, 1]), (1,), r"axis must be an int, got \(1,\)"),
    (_r(2, 3), np.array([0, 1]), None, r"axis must be an int, got None"),
    (np.array(1.0), np.array(0), -1, r"logits of shape \(\) have no class axis"),
])
def test_softmax_cross_entropy_names_a_bad_class_axis(logits: Any, labels: Any, axis: Any,
                                                      match: str) -> None:
    # The axis was taken modulo the logits' rank: axis 2 of (2, 3) logits meant axis 0.
    with ad.Graph():
        z = ad.ops.softmax_cross_entropy(ad.Variable(logits), labels, axis=axis)
        with pytest.raises(ad.ShapeMismatchError, match=f"softmax_cross_entropy: {match}"):
            ad.evaluate(z)
