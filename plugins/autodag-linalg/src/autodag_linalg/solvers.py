"""numpy.linalg's inverses and determinants: inv, solve, det, slogdet, matrix_power, pinv.

All take stacks of matrices (the last two axes) as NumPy does, and run on any backend
(``array_api=True``, see :mod:`._dispatch`): NumPy's functions on NumPy values and,
matrix by matrix, on Dask's; the standard's ``linalg`` functions on other arrays.

A singular matrix gives NaN where NumPy raises LinAlgError (as JAX answers): the
engine infers shapes by running forwards on all-ones matrices, which are singular.
The rules hold where the matrix is invertible (pinv's where its rank is constant).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample

from ._dispatch import linalg_apply, linalg_call
from ._einsum import shape_of
from .results import SlogdetResult

__all__ = ["DET", "INV", "MATRIX_POWER", "PINV", "SLOGDET", "SLOGDET_SIGN", "SOLVE", "mT"]

_Rng = np.random.Generator


def mT(xp: Any, x: Any) -> Any:
    """The transpose of the last two axes."""
    return xp.swapaxes(x, -1, -2)


def _inv_vjp(xp: Any, g: Any, out: Any, a: Any) -> Any:
    return -xp.matmul(xp.matmul(mT(xp, out), g), mT(xp, out))


def _solve_vector(a: Any, b: Any) -> Any:
    # NumPy reads b as a vector only when 1-D: a block of vectors is a stack of them.
    return np.linalg.solve(a, b[..., None])[..., 0]


def _solve(a: Any, b: Any) -> Any:
    def xp_solve(xp: Any, x: Any, y: Any) -> Any:
        return xp.linalg.solve(x, y)

    if len(shape_of(b)) == 1:
        return linalg_apply(_solve_vector, "(i,j),(j)->(i)", a, b, xp_fn=xp_solve)
    return linalg_apply(np.linalg.solve, "(i,j),(j,k)->(i,k)", a, b, xp_fn=xp_solve)


def _slogdet_part(k: int) -> Callable[[Any], Any]:
    def forward(a: Any) -> Any:
        return linalg_apply(lambda x: np.linalg.slogdet(x)[k], "(i,j)->()", a,
                            xp_fn=lambda xp, x: xp.linalg.slogdet(x)[k])

    return forward


def _solve_vjps(k: int) -> Callable[..., Any]:
    def vjp(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
        if xp.ndim(b) == 1:  # b a vector, out (..., M): solved as the matrices (..., M, 1)
            gb = xp.squeeze(xp.linalg_solve(mT(xp, a), xp.expand_dims(g, -1)), -1)
            if k == 1:
                return gb
            return -(xp.expand_dims(gb, -1) * xp.expand_dims(out, -2))
        gb = xp.linalg_solve(mT(xp, a), g)
        return gb if k == 1 else -xp.matmul(gb, mT(xp, out))

    return vjp


def _expand2(xp: Any, x: Any) -> Any:
    return xp.expand_dims(xp.expand_dims(x, -1), -1)


def _det_vjp(xp: Any, g: Any, out: Any, a: Any) -> Any:
    return _expand2(xp, g * out) * mT(xp, xp.linalg_inv(a))


def _slogdet_vjp(xp: Any, g: Any, out: Any, a: Any) -> Any:
    return _expand2(xp, g) * mT(xp, xp.linalg_inv(a))


def _power_sum(xp: Any, g: Any, b: Any, m: int) -> Any:
    """The gradient of b**m (m > 0) as a matrix power: sum of (b^T)^k g (b^T)^(m-1-k)."""
    bt = mT(xp, b)
    total = None
    for k in range(m):
        left = g if k == 0 else xp.matmul(xp.linalg_matrix_power(bt, k), g)
        term = left if k == m - 1 else xp.matmul(left, xp.linalg_matrix_power(bt, m - 1 - k))
        total = term if total is None else total + term
    return total


def _matrix_power(a: Any, n: int) -> Any:
    return linalg_call("matrix_power", a, n)


def _matrix_power_vjp(xp: Any, g: Any, out: Any, a: Any, n: int) -> Any:
    if n == 0:
        return g * 0
    if n > 0:
        return _power_sum(xp, g, a, n)
    b = xp.linalg_inv(a)
    gb = _power_sum(xp, g, b, -n)
    return -xp.matmul(xp.matmul(mT(xp, b), gb), mT(xp, b))


def _pinv(a: Any, rcond: Any, hermitian: bool) -> Any:
    # The standard's pinv has rtol, NumPy's rcond, each with its own default: an rcond
    # given is passed as rtol.
    return linalg_apply(lambda x: np.linalg.pinv(x, rcond, hermitian), "(i,j)->(j,i)", a,
                        xp_fn=lambda xp, x: xp.linalg.pinv(x, rtol=rcond))


def _pinv_vjp(xp: Any, g: Any, out: Any, a: Any, rcond: Any, hermitian: bool) -> Any:
    p, pt, gt = out, mT(xp, out), mT(xp, g)
    ppt = xp.matmul(p, pt)
    ptp = xp.matmul(pt, p)
    first = -xp.matmul(xp.matmul(pt, g), pt)
    second = xp.matmul(gt, ppt) - xp.matmul(xp.matmul(a, p), xp.matmul(gt, ppt))
    third = xp.matmul(ptp, gt) - xp.matmul(xp.matmul(ptp, gt), xp.matmul(p, a))
    return first + second + third


def _well_conditioned(rng: _Rng, *shape: int) -> Any:
    """Matrices near the identity: invertible, away from singularity."""
    n = shape[-1]
    return rng.standard_normal(shape) * 0.3 + np.eye(n) * 2.0


def _square_samples(rng: _Rng) -> list[Sample]:
    return [Sample((_well_conditioned(rng, 3, 3),)),
            Sample((_well_conditioned(rng, 2, 2, 2),))]


def _det_samples(rng: _Rng) -> list[Sample]:
    m = _well_conditioned(rng, 3, 3)
    m[0] = -m[0]  # a negative determinant as well
    return [Sample((m,)), Sample((_well_conditioned(rng, 2, 2, 2),))]


def _solve_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    w = _well_conditioned
    return [Sample((w(rng, 3, 3), r((3,)))), Sample((w(rng, 3, 3), r((3, 2)))),
            Sample((w(rng, 2, 3, 3), r((3,)))), Sample((w(rng, 2, 3, 3), r((2, 3, 2))))]


def _matrix_power_samples(rng: _Rng) -> list[Sample]:
    w = _well_conditioned
    return [Sample((w(rng, 3, 3) * 0.5,), {"n": 3}), Sample((w(rng, 2, 2, 2),), {"n": -2}),
            Sample((w(rng, 2, 2),), {"n": 0}), Sample((w(rng, 3, 3),), {"n": 1})]


def _pinv_samples(rng: _Rng) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 2)) + np.eye(3, 2),)), Sample((r((2, 2, 3)) + np.eye(2, 3),))]


INV: Final = OpDef(
    name="linalg_inv", arity=1, forward=lambda a: linalg_call("inv", a), array_api=True,
    backward=(_inv_vjp,), input_names=("a",), samples=_square_samples,
    doc="Matrix inverse, as numpy.linalg.inv (NaN for a singular matrix).",
)
SOLVE: Final = OpDef(
    name="linalg_solve", arity=2, forward=_solve, backward=(_solve_vjps(0), _solve_vjps(1)),
    input_names=("a", "b"), samples=_solve_samples, array_api=True,
    doc="Solve a x = b, as numpy.linalg.solve (b a vector only when 1-D; NaN for a "
        "singular a).",
)
DET: Final = OpDef(
    name="linalg_det", arity=1, forward=lambda a: linalg_call("det", a), array_api=True,
    backward=(_det_vjp,),
    input_names=("a",), samples=_det_samples,
    doc="Determinant, as numpy.linalg.det; its gradient det * inv(a).T holds where a is "
        "invertible.",
)
def _numpy_slogdet(a: Any) -> tuple[Any, Any]:
    """numpy.linalg.slogdet(node): the pair (sign, logabsdet), as NumPy returns it."""
    import autodag

    ops = autodag.ops  # the ops themselves: ops.linalg may stand for this function
    return SlogdetResult(ops.linalg_slogdet_sign(a), ops.linalg_slogdet(a))


SLOGDET: Final = OpDef(
    name="linalg_slogdet", arity=1, forward=_slogdet_part(1), array_api=True,
    backward=(_slogdet_vjp,), input_names=("a",), samples=_det_samples,
    numpy_function=_numpy_slogdet,
    doc="log|det a|: the logabsdet of numpy.linalg.slogdet (its sign, not "
        "differentiable, is linalg_slogdet_sign; numpy.linalg.slogdet on a node gives "
        "the pair); gradient inv(a).T.",
)
SLOGDET_SIGN: Final = OpDef(
    name="linalg_slogdet_sign", arity=1, forward=_slogdet_part(0), array_api=True,
    backward=None, input_names=("a",), samples=_det_samples,
    doc="The sign of det a: the sign of numpy.linalg.slogdet, 0 for a singular matrix "
        "(no gradient: piecewise constant); linalg_slogdet gives its logabsdet.",
)
MATRIX_POWER: Final = OpDef(
    name="linalg_matrix_power", arity=1, attributes={"n": REQUIRED}, forward=_matrix_power,
    backward=(_matrix_power_vjp,), input_names=("a",), samples=_matrix_power_samples,
    array_api=True,
    doc="Integer matrix power, as numpy.linalg.matrix_power (negative n inverts; NaN "
        "for a singular matrix then).",
)
PINV: Final = OpDef(
    name="linalg_pinv", arity=1, attributes={"rcond": None, "hermitian": False},
    forward=_pinv, array_api=True,
    backward=(_pinv_vjp,), input_names=("a",), samples=_pinv_samples,
    doc="Moore-Penrose pseudo-inverse, as numpy.linalg.pinv; the gradient holds where "
        "the rank is constant (full-rank inputs).",
)
