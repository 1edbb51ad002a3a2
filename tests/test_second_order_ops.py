"""Second derivatives of every built-in and first-party op, against finite differences.

For each op and sample, ``s = W * y * y / 2`` with ``y = op(*x)``; the symbolic
Hessian-vector product ``d/dx <grad s, V>`` is compared with central differences of the
numeric first-order gradient (``autodag.grad``) along each coordinate, in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.opdef import Sample
from autodag.registry import RegisteredOp

from .fd import numeric_grads

R = np.random.default_rng(7)


def _r(*shape: int) -> Any:
    return R.standard_normal(shape)


def _pos(*shape: int) -> Any:
    return np.abs(R.standard_normal(shape)) + 0.5


#: Samples for built-in ops that declare none, and extra shapes for those that do.
EXTRA: dict[str, list[Sample]] = {
    "expand_dims": [Sample((_r(2, 3),), {"axis": 1}), Sample((_r(3),), {"axis": 0})],
    "squeeze": [Sample((_r(2, 1, 3),), {"axis": None}), Sample((_r(1, 3),), {"axis": 0})],
    "swapaxes": [Sample((_r(2, 3, 4),), {"axis1": 0, "axis2": 2})],
    "unbroadcast": [Sample((_r(2, 3), _r(3))), Sample((_r(4, 1, 3), _r(1, 3)))],
    "broadcast_like": [Sample((_r(3), _r(2, 3))), Sample((_r(2, 1), _r(2, 4)))],
    "log_or_zero": [Sample((_pos(2, 3),)), Sample((_pos(),))],
    "power_base_grad": [Sample((_pos(3), _r(3))), Sample((_pos(2, 3), _r(3)))],
    "matmul": [
        Sample((_r(5, 2, 3), _r(5, 3, 4))),
        Sample((_r(2, 3), _r(5, 3, 4))),
        Sample((_r(5, 2, 3), _r(3))),
        Sample((_r(2, 1, 2, 3), _r(4, 3, 2))),
    ],
    # the exponent's second derivative (a**b * log(a)**2) and the mixed one
    "power": [Sample((_pos(3), _r(3))), Sample((_pos(), _r(2, 2))), Sample((_pos(2, 3), 3.0))],
}


def first_party(reg: RegisteredOp) -> bool:
    """Built-in ops and ops of the project's own ``autodag-*`` plugin distributions."""
    dist = (reg.plugin.distribution or "").lower().replace("_", "-")
    return reg.plugin.builtin or dist.startswith("autodag-")


def _cases() -> list[Any]:
    cases = []
    for name, reg in sorted(ad.get_registry().ops.items()):
        if not first_party(reg) or not reg.opdef.differentiable:
            continue
        samples = list(reg.opdef.samples(np.random.default_rng(0))) if reg.opdef.samples else []
        samples += EXTRA.get(name, [])
        if not samples:
            cases.append(pytest.param(name, None, id=f"{name}-no-samples"))
        for i, s in enumerate(samples):
            # The first two samples in make test, the rest in make slow (CI runs both).
            marks = [pytest.mark.slow] if i >= 2 else []
            cases.append(pytest.param(name, s, id=f"{name}-{i}", marks=marks))
    return cases


def differentiable_inputs(reg: RegisteredOp, inputs: tuple[Any, ...]) -> list[int]:
    """Positions of float inputs that have a backward rule."""
    vjps = reg.opdef.vjps
    return [
        k for k, v in enumerate(inputs)
        if np.result_type(v).kind == "f" and (vjps is None or vjps[k] is not None)
    ]


def build(name: str, sample: Sample, rng: np.random.Generator
          ) -> tuple[list[ad.Variable], ad.Node, ad.Node]:
    """Variables for the differentiable inputs, ``y = op(...)`` and ``s = W * y * y / 2``."""
    reg = ad.get_registry().get(name)
    diff = differentiable_inputs(reg, sample.inputs)
    with ad.Graph():
        nodes: list[Any] = [
            ad.Variable(np.array(v, dtype=np.float64), name=f"x{k}") if k in diff
            else ad.Constant(v, name=f"c{k}")
            for k, v in enumerate(sample.inputs)
        ]
        fn = getattr(ad.ops, name)
        args = (nodes,) if reg.opdef.arity is None else tuple(nodes)
        y = fn(*args, **dict(sample.attrs))
        shape = np.shape(ad.evaluate(y))
        s = ad.Constant(rng.standard_normal(shape) * 0.5) * y * y
    return [n for n in nodes if isinstance(n, ad.Variable)], y, s


@pytest.mark.parametrize(("name", "sample"), _cases())
def test_second_derivative_matches_finite_differences(name: str, sample: Sample | None) -> None:
    assert sample is not None, f"op {name!r} has no samples to check its derivatives on"
    rng = np.random.default_rng(1)
    xs, _, s = build(name, sample, rng)
    if not xs:
        pytest.skip(f"op {name!r}: this sample has no differentiable float input")
    ones = np.ones(np.shape(ad.evaluate(s)))
    g = ad.gradients(s, xs, grad_ys=ones)
    # First order: the symbolic gradient evaluates to the numeric engine's.
    for got, want in zip(ad.evaluate(g), ad.grad(s, xs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    vs = [rng.standard_normal(np.shape(x.value)) for x in xs]
    h = ad.gradients(g, xs, grad_ys=vs)

    def directional(*values: Any) -> float:
        grads = ad.grad(s, xs, feed_dict=dict(zip(xs, values, strict=True)))
        return float(sum(np.sum(gk * vk) for gk, vk in zip(grads, vs, strict=True)))

    reference = numeric_grads(directional, [x.value for x in xs])
    coarse = numeric_grads(directional, [x.value for x in xs], eps=4e-6)
    if not all(np.allclose(r, c, rtol=1e-3, atol=1e-4) for r, c in zip(reference, coarse)):
        # Differences that scale with 1/eps: the gradient jumps here (a tie or a kink, as
        # in max at equal elements), so there is no second derivative to compare with.
        pytest.skip(f"op {name!r}: the gradient is not differentiable at this sample")
    for k, (got, w) in enumerate(zip(ad.evaluate(h), reference, strict=True)):
        assert np.shape(got) == np.shape(xs[k].value)
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6, err_msg=f"{name} input {k}")
