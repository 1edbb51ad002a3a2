"""numpy.linalg's inverses and determinants: inv, solve, det, slogdet, matrix_power, pinv.

All take stacks of matrices (the last two axes) as NumPy does, and are NumPy-only
(``array_api=False``): Dask's linalg has no det, slogdet, pinv or matrix_power and its
inv and solve take single 2-D matrices only, so no one forward serves every backend.

A singular matrix gives NaN where NumPy raises LinAlgError (as JAX answers): the
engine infers shapes by running forwards on all-ones matrices, which are singular.
The rules hold where the matrix is invertible (pinv's where its rank is constant).

Static shape inference may still hand a forward another library's arrays (its
dummies): they take that library's ``linalg`` function (``linalg_call``), a whole
stack of NaN where it fails, so that the op is refused by name when the graph runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample
from autodag.backend import namespace_of

from ._einsum import any_foreign, shape_of

__all__ = ["DET", "INV", "MATRIX_POWER", "PINV", "SLOGDET", "SLOGDET_SIGN", "SOLVE",
           "linalg_call", "mT", "nan_where_fails"]

_Rng = np.random.Generator


def mT(xp: Any, x: Any) -> Any:
    """The transpose of the last two axes."""
    return xp.swapaxes(x, -1, -2)


def nan_where_fails(fn: Callable[..., Any], a: Any, *rest: Any, core: int = 2) -> Any:
    """``fn(a, *rest)``, with NaN for the matrices of the stack ``a`` that make it raise
    LinAlgError (``core``: the result's axes per matrix of ``a``)."""
    try:
        return fn(a, *rest)
    except np.linalg.LinAlgError:
        pass
    dtype = np.result_type(a)
    a = np.array(a, dtype=dtype if dtype.kind in "fc" else np.float64)  # a copy to write
    batch = a.shape[:-2]
    bad = np.zeros(batch, dtype=bool)
    for idx in np.ndindex(batch):
        try:
            fn(a[idx], *rest)
        except np.linalg.LinAlgError:
            bad[idx] = True
    a[bad] = np.eye(a.shape[-1], a.shape[-2], dtype=a.dtype)
    return np.where(bad.reshape(batch + (1,) * core), np.nan, fn(a, *rest))


def linalg_call(name: str, a: Any, *rest: Any, core: int = 2) -> Any:
    """``numpy.linalg.<name>(a, *rest)`` (NaN where it fails), or on another library's
    arrays its own ``linalg.<name>``."""
    if not any_foreign((a, *rest)):
        return nan_where_fails(getattr(np.linalg, name), a, *rest, core=core)
    xp = namespace_of(a, *rest)
    fn = getattr(xp.linalg, name)
    try:
        return fn(a, *rest)
    except (np.linalg.LinAlgError, RuntimeError):
        # torch's LinAlgError is a RuntimeError. The identity never fails: its result
        # gives the shape and dtype, NaN every value.
        eye = a * 0 + xp.eye(a.shape[-2], a.shape[-1], dtype=a.dtype)
        return fn(eye, *rest) * float("nan")


def _inv_vjp(xp: Any, g: Any, out: Any, a: Any) -> Any:
    return -xp.matmul(xp.matmul(mT(xp, out), g), mT(xp, out))


def _solve(a: Any, b: Any) -> Any:
    return linalg_call("solve", a, b, core=1 if len(shape_of(b)) == 1 else 2)


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
    if any_foreign((a,)):
        return namespace_of(a).linalg.pinv(a)  # rtol, the standard's rcond: its default
    return np.linalg.pinv(a, rcond, hermitian)


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
    name="linalg_inv", arity=1, forward=lambda a: linalg_call("inv", a),
    backward=(_inv_vjp,), input_names=("a",), samples=_square_samples,
    doc="Matrix inverse, as numpy.linalg.inv (NaN for a singular matrix).",
)
SOLVE: Final = OpDef(
    name="linalg_solve", arity=2, forward=_solve, backward=(_solve_vjps(0), _solve_vjps(1)),
    input_names=("a", "b"), samples=_solve_samples,
    doc="Solve a x = b, as numpy.linalg.solve (b a vector only when 1-D; NaN for a "
        "singular a).",
)
DET: Final = OpDef(
    name="linalg_det", arity=1, forward=lambda a: linalg_call("det", a, core=0),
    backward=(_det_vjp,),
    input_names=("a",), samples=_det_samples,
    doc="Determinant, as numpy.linalg.det; its gradient det * inv(a).T holds where a is "
        "invertible.",
)
def _numpy_slogdet(a: Any) -> tuple[Any, Any]:
    """numpy.linalg.slogdet(node): the pair (sign, logabsdet), as NumPy returns it."""
    import autodag

    return autodag.ops.linalg.slogdet_sign(a), autodag.ops.linalg.slogdet(a)


SLOGDET: Final = OpDef(
    name="linalg_slogdet", arity=1, forward=lambda a: linalg_call("slogdet", a)[1],
    backward=(_slogdet_vjp,), input_names=("a",), samples=_det_samples,
    numpy_function=_numpy_slogdet,
    doc="log|det a|: the logabsdet of numpy.linalg.slogdet (its sign, not "
        "differentiable, is linalg_slogdet_sign; numpy.linalg.slogdet on a node gives "
        "the pair); gradient inv(a).T.",
)
SLOGDET_SIGN: Final = OpDef(
    name="linalg_slogdet_sign", arity=1, forward=lambda a: linalg_call("slogdet", a)[0],
    backward=None, input_names=("a",), samples=_det_samples,
    doc="The sign of det a: the sign of numpy.linalg.slogdet, 0 for a singular matrix "
        "(no gradient: piecewise constant); linalg_slogdet gives its logabsdet.",
)
MATRIX_POWER: Final = OpDef(
    name="linalg_matrix_power", arity=1, attributes={"n": REQUIRED}, forward=_matrix_power,
    backward=(_matrix_power_vjp,), input_names=("a",), samples=_matrix_power_samples,
    doc="Integer matrix power, as numpy.linalg.matrix_power (negative n inverts; NaN "
        "for a singular matrix then).",
)
PINV: Final = OpDef(
    name="linalg_pinv", arity=1, attributes={"rcond": None, "hermitian": False},
    forward=_pinv,
    backward=(_pinv_vjp,), input_names=("a",), samples=_pinv_samples,
    doc="Moore-Penrose pseudo-inverse, as numpy.linalg.pinv; the gradient holds where "
        "the rank is constant (full-rank inputs).",
)
