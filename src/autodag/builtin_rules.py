"""The built-in plugin's rules: the forward and backward functions of its ops.

Forward rules keep Python scalars as Python scalars where Python computes the same
result as NumPy (the fast path for scalar graphs), and fall back to NumPy where Python
would raise or go complex. NumPy arrays and Python numbers take the NumPy code, another
library's arrays the ``_xp_*`` form beside it, written with that library's own namespace
(``namespace_of``) and never converted to NumPy. Backward rules use only ``xp`` and
Python operators, so they serve numbers and graph nodes alike.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from ._arrays import grad_dtype, sum_to
from .axes import checked_axes
from .backend import broadcast_as, is_array, namespace_of

_PY_REAL: Final = (int, float)
_PY_NUMBERS: Final = (bool, int, float, complex)
# The classes of NumPy's and Python's values: one set lookup finds the NumPy fast path
# (``is_array`` asks more, for the rest: subclasses, lists, other libraries' arrays).
_NUMPY: Final = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})


def _add(a: Any, b: Any) -> Any:
    return a + b


def _subtract(a: Any, b: Any) -> Any:
    return a - b


def _negate(a: Any) -> Any:
    return -a


def _multiply(a: Any, b: Any) -> Any:
    return a * b


def _matmul(a: Any, b: Any) -> Any:
    return a @ b


def _divide(a: Any, b: Any) -> Any:
    try:
        return a / b
    except ZeroDivisionError:
        return np.divide(np.float64(a), b)


def _py_power(a: Any, b: Any) -> Any:
    """``a ** b`` of Python numbers with NumPy's IEEE answers where Python differs.

    Python raises on 0.0 ** -1 and on float overflow, goes complex for (-8.0) ** (1/3),
    and computes integer powers exactly however large (2 ** 10**9 would take minutes):
    NumPy answers inf, nan, or inf for a power beyond the float range.
    """
    if (a.__class__ is int and b.__class__ is int and b > 0 and abs(a) > 1
            and b * math.log2(abs(a)) > 1024):
        return np.power(np.float64(a), b)
    try:
        r = a**b
    except (ZeroDivisionError, OverflowError):
        return np.power(np.float64(a), b)
    if type(r) is complex:
        return np.power(np.float64(a), b)
    return r


#: Integer exponents a float array's power computes as products (``_int_power``).
INT_POWERS: Final = frozenset({-3, -2, 3, 4})


def _int_power(a: Any, n: int) -> Any:
    """``a ** n`` of a float array for an integer ``n`` in ``INT_POWERS``, as products
    (the square first), as JAX's integer_pow and PyTensor compute it: within 2 ulps of
    pow for a tenth to a hundredth of its time, with pow's results for 0, inf and NaN
    (``0 ** -3`` is inf, ``(-0.0) ** 3`` is -0.0); a negative power whose denominator
    overflows is 0 where pow would give a subnormal."""
    m = abs(n)
    r = a * a
    if m == 3:
        r *= a  # in place: no second array, and no keyword call on small ones
    elif m == 4:
        r *= r
    return r if n > 0 else np.divide(1.0, r, out=r)


def _power(a: Any, b: Any) -> Any:
    ta, tb = a.__class__, b.__class__
    if (ta is float or ta is int) and (tb is float or tb is int):
        return _py_power(a, b)
    if ta is np.ndarray and a.dtype.kind == "f" and (tb is float or tb is int):
        if b in INT_POWERS and a.ndim:
            return _int_power(a, int(b))
        # The common case, without the dtype checks below; ``**`` rather than np.power
        # for NumPy's fast paths (x**2 is x*x, x**-1 is 1/x).
        return a**b
    if (ta not in _NUMPY and is_array(a)) or (tb not in _NUMPY and is_array(b)):
        return _xp_power(a, b)
    if np.result_type(a).kind in "biu" and np.result_type(b).kind in "biu":
        # NumPy refuses integers to negative integer powers; autodag computes in float.
        return np.power(np.asarray(a, dtype=np.float64), b)
    return np.power(a, b)


def _broadcast_like(a: Any, like: Any) -> Any:
    if like.__class__ is np.ndarray and like.size <= 4096:
        # A scalar gradient spread over a small array (the rule of sum): cheaper made
        # than NumPy's broadcasting machinery, and writeable. A large one stays a
        # broadcast view, which costs no memory and no pass over it.
        if isinstance(a, np.generic):  # what np.full makes, without its dtype lookup
            r = np.empty(like.shape, dtype=a.dtype)
            r.fill(a)
            return r
        if a.__class__ not in _NUMPY and is_array(a):
            return _xp_broadcast_like(a, like)
        if np.ndim(a) == 0:
            return np.full(like.shape, a)
    elif ((like.__class__ not in _NUMPY and is_array(like))
          or (a.__class__ not in _NUMPY and is_array(a))):
        return _xp_broadcast_like(a, like)
    return np.broadcast_to(a, np.broadcast_shapes(np.shape(a), np.shape(like)))


def _seed_like(a: Any) -> Any:
    """Ones of a's shape in its gradient dtype and its own library: a derivative's seed."""
    if a.__class__ is float or a.__class__ is int or a.__class__ is bool:
        return 1.0
    if a.__class__ not in _NUMPY and is_array(a):
        return namespace_of(a).ones_like(a, dtype=grad_dtype(a))
    if isinstance(a, np.generic):
        return grad_dtype(a).type(1)
    return np.ones(np.shape(a), dtype=grad_dtype(a))


def _floated(a: Any) -> Any:
    return np.asarray(a, dtype=np.float64) if np.result_type(a).kind in "biu" else a


def _log_or_zero(a: Any) -> Any:
    """log(a) where a > 0, 0 where a == 0 (nan where a < 0, as NumPy's real log)."""
    if type(a) in _PY_REAL:
        # A Python scalar stays one: a NumPy float64 here would widen float32 gradients.
        return math.log(a) if a > 0 else (0.0 if a == 0 else math.nan)
    if a.__class__ not in _NUMPY and is_array(a):
        xp = namespace_of(a)
        af = _xp_floated(xp, a)
        return xp.log(xp.where(af == 0, 1, af))
    arr = _floated(np.asarray(a))
    with np.errstate(invalid="ignore"):
        r = np.log(np.where(arr == 0, 1, arr))
    return r if np.ndim(r) else r[()]


def _power_base_grad(a: Any, b: Any) -> Any:
    """d(a**b)/da = b * a**(b-1), exactly 0 where b == 0."""
    ta, tb = a.__class__, b.__class__
    if (ta is float or ta is int) and (tb is float or tb is int):
        if b == 0:
            return 0.0
        r = _py_power(a, b - 1)
        if r.__class__ is float or r.__class__ is int:
            return b * r
    if (ta is np.ndarray and a.ndim and a.dtype.kind == "f"
            and (tb is int or (tb is float and b.is_integer())) and b >= 1):
        # A power of at least 0 cannot divide by zero or go invalid: no errstate needed.
        # b as a float: NumPy multiplies by a Python float faster than by an int, and
        # b is exactly a float (an integer of at most 2**53).
        fb = float(b) if abs(b) <= 2**53 else b
        if b == 2:
            return fb * a
        r = _int_power(a, int(b) - 1) if b - 1 in INT_POWERS else a ** (b - 1)
        r *= fb
        return r
    if (ta not in _NUMPY and is_array(a)) or (tb not in _NUMPY and is_array(b)):
        return _xp_power_base_grad(a, b)
    af = _floated(np.asarray(a))
    with np.errstate(divide="ignore", invalid="ignore"):
        if tb is float or tb is int:  # a scalar exponent: one pass, no mask
            r = np.zeros_like(af) if b == 0 else b * np.power(af, b - 1)
        else:
            r = np.where(np.equal(b, 0), 0, b * np.power(af, np.subtract(b, 1)))
    return r if np.ndim(r) else r[()]


def _expand_dims(a: Any, axis: Any) -> Any:
    if a.__class__ in _NUMPY or not is_array(a):
        return np.expand_dims(a, axis)
    xp = namespace_of(a)
    n = len(axis) if isinstance(axis, tuple) else 1
    shape = tuple(a.shape)
    axes = checked_axes("expand_dims", axis, shape, none=False, rank=len(shape) + n,
                        what=f"the result of expanding an input of shape {shape}")
    # One axis at a time, in increasing order: the standard's expand_dims takes one int.
    for ax in sorted(axes):
        a = xp.expand_dims(a, axis=ax)
    return a


def _squeeze(a: Any, axis: Any) -> Any:
    if a.__class__ in _NUMPY or not is_array(a):
        return np.squeeze(a, axis)
    shape = tuple(a.shape)
    if axis is None:  # the standard's squeeze wants the axes named
        axes = tuple(i for i, s in enumerate(shape) if s == 1)
    else:
        axes = checked_axes("squeeze", axis, shape, none=False)
    return namespace_of(a).squeeze(a, axis=axes)


def _swapaxes(a: Any, axis1: Any, axis2: Any) -> Any:
    if a.__class__ in _NUMPY or not is_array(a):
        return np.swapaxes(a, axis1, axis2)
    shape = tuple(a.shape)
    (i,) = checked_axes("swapaxes", axis1, shape, tuples=False, none=False, name="axis1")
    (j,) = checked_axes("swapaxes", axis2, shape, tuples=False, none=False, name="axis2")
    perm = list(range(len(shape)))
    perm[i], perm[j] = j, i
    return namespace_of(a).permute_dims(a, tuple(perm))  # the standard has no swapaxes


def _unbroadcast(g: Any, like: Any) -> Any:
    if like.__class__ in _NUMPY or not is_array(like):
        return sum_to(g, np.shape(like))
    shape = tuple(like.shape)
    if g.__class__ in _PY_NUMBERS and shape:
        # sum_to would broadcast a Python number up with NumPy: here the run's library
        # makes the array instead.
        g = namespace_of(like).asarray(g)
    return sum_to(g, shape)


# --- forward rules on another library's arrays (the NumPy code above is the fast path) -
def _shape_of(x: Any) -> tuple[int, ...]:
    s = getattr(x, "shape", None)
    return tuple(s) if s is not None else tuple(np.shape(x))  # np.shape: Python data only


def _xp_floated(xp: Any, a: Any) -> Any:
    """``a`` in floating point (float64 for integers and bools), in its own library."""
    cls = a.__class__
    if cls is float or cls is complex:
        return a
    if cls is int or cls is bool:
        return float(a)
    if xp.isdtype(a.dtype, ("real floating", "complex floating")):
        return a
    return xp.astype(a, xp.float64)


def _xp_power(a: Any, b: Any) -> Any:
    # ``a ** b`` is computed in floating point whatever the operands, as on NumPy (which
    # refuses integers to negative integer powers); strict libraries refuse mixed kinds.
    xp = namespace_of(a, b)
    return _xp_floated(xp, a) ** _xp_floated(xp, b)


def _xp_power_base_grad(a: Any, b: Any) -> Any:
    xp = namespace_of(a, b)
    af = _xp_floated(xp, a)
    if b.__class__ is float or b.__class__ is int:  # so ``a`` is the array
        if b == 2:
            return 2.0 * af  # the square's rule, one pass (as NumPy's fast path)
        return xp.zeros_like(af) if b == 0 else b * af ** (b - 1)
    bf = _xp_floated(xp, b)
    return xp.where(bf == 0, 0, bf * af ** (bf - 1))


def _xp_broadcast_like(a: Any, like: Any) -> Any:
    xp = namespace_of(a, like)
    shape = np.broadcast_shapes(_shape_of(a), _shape_of(like))  # of shapes, not arrays
    return broadcast_as(xp, a, like, shape)


# --- backward rules: vjp(xp, g, out, *inputs, **attrs) --------------------------------
def _g(xp: Any, g: Any, out: Any, *args: Any) -> Any:
    return g


def _neg_g(xp: Any, g: Any, out: Any, *args: Any) -> Any:
    return -g


def _matmul_da(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    if b.__class__ is np.ndarray and b.ndim == 2 and a.__class__ is np.ndarray and a.ndim >= 2:
        return g @ b.T  # numbers, the common case: what the general form below computes
    an, bn = xp.ndim(a), xp.ndim(b)
    if an == 1 and bn == 1:
        return g * b
    if bn == 1:  # (..., n, k) @ (k,) -> (..., n)
        return xp.expand_dims(g, -1) * b
    if an == 1:  # (k,) @ (..., k, m) -> (..., m); batch axes are summed by the engine
        return xp.squeeze(xp.matmul(b, xp.expand_dims(g, -1)), -1)
    return xp.matmul(g, xp.swapaxes(b, -1, -2))


def _matmul_db(xp: Any, g: Any, out: Any, a: Any, b: Any) -> Any:
    if a.__class__ is np.ndarray and a.ndim == 2 and b.__class__ is np.ndarray and b.ndim >= 2:
        return a.T @ g  # numbers, the common case: what the general form below computes
    an, bn = xp.ndim(a), xp.ndim(b)
    if an == 1 and bn == 1:
        return g * a
    if an == 1:  # (k,) @ (..., k, m) -> (..., m)
        return xp.expand_dims(a, -1) * xp.expand_dims(g, -2)
    if bn == 1 and an == 2:  # (n, k) @ (k,): a matrix-vector product, as written by hand
        return xp.matmul(xp.swapaxes(a, -1, -2), g)
    if bn == 1:  # (..., n, k) @ (k,) -> (..., n)
        return xp.squeeze(xp.matmul(xp.swapaxes(a, -1, -2), xp.expand_dims(g, -1)), -1)
    return xp.matmul(xp.swapaxes(a, -1, -2), g)


def _squeeze_axes(xp: Any, a: Any, axis: Any) -> Any:
    if axis is None:
        return tuple(i for i, s in enumerate(xp.shape(a)) if s == 1)
    return axis


# --- sample inputs for autodag.testing.check_op -------------------------------------
