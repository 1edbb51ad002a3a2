"""A numpy.linalg computation on any array backend, for the forwards of numpy.linalg's ops.

NumPy values take NumPy's function, with NaN for the matrices where it raises
LinAlgError (as JAX answers; the engine infers shapes by running forwards on all-ones
matrices, which are singular). Dask arrays take it too, matrix by matrix inside Dask's
tasks (``dask.array.apply_gufunc``: each chunk holds whole matrices, the batch axes keep
their chunks, nothing is computed before Dask is asked), since Dask's own linalg lacks
det, slogdet, eigh, pinv and matrix_power and takes single 2-D matrices only. Any other
library's arrays (array-api-strict, torch, JAX, CuPy) take that library's
``linalg.<name>``, the array-API standard's linalg extension.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import array_api_compat
import numpy as np

from autodag.backend import namespace_of

from ._einsum import any_foreign

__all__ = ["linalg_apply", "linalg_call", "nan_where_fails"]


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


def _core_out(signature: str) -> int:
    """The number of core axes of a gufunc signature's one output: 2 for ``(i,j)->(i,j)``."""
    out = signature.split("->")[1]
    return len(re.findall(r"\w+", out))


def _float(dtype: Any) -> Any:
    dt = np.dtype(dtype)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def _blockwise(fn: Callable[..., Any], signature: str, args: tuple[Any, ...],
               sizes: Mapping[str, int] | None) -> Any:
    import dask.array as da

    core = _core_out(signature)
    dtype = _float(np.result_type(*(getattr(a, "dtype", a) for a in args)))
    gufunc: Any = da.apply_gufunc  # untyped in dask
    # meta given: Dask need not call fn on empty arrays to learn the result's type.
    return gufunc(lambda *blocks: nan_where_fails(fn, *blocks, core=core), signature, *args,
                  output_sizes=dict(sizes or {}), allow_rechunk=True,
                  meta=np.empty((0,) * core, dtype=dtype))


def linalg_apply(fn: Callable[..., Any], signature: str, *args: Any,
                 xp_fn: Callable[..., Any], sizes: Mapping[str, int] | None = None) -> Any:
    """``fn(*args)`` (NumPy functions, on stacks of matrices) on NumPy values and, block
    by block, on Dask arrays; ``xp_fn(xp, *args)`` on another library's arrays.
    ``signature`` is the gufunc signature of one matrix (``"(i,j)->()"`` for det),
    ``sizes`` the lengths of output axes no input has."""
    if not any_foreign(args):
        return nan_where_fails(fn, *args, core=_core_out(signature))
    if any(array_api_compat.is_dask_array(a) for a in args):
        return _blockwise(fn, signature, args, sizes)
    xp = namespace_of(*args)
    a, rest = args[0], args[1:]
    try:
        return xp_fn(xp, a, *rest)
    except (np.linalg.LinAlgError, RuntimeError):
        # torch's LinAlgError is a RuntimeError. The identity never fails: its result
        # gives the shape and dtype, NaN every value.
        eye = a * 0 + xp.eye(a.shape[-2], a.shape[-1], dtype=a.dtype)
        return xp_fn(xp, eye, *rest) * float("nan")


_SIGNATURES: Mapping[str, str] = {
    "inv": "(i,j)->(i,j)", "det": "(i,j)->()", "cholesky": "(i,j)->(i,j)",
    "eigvalsh": "(i,j)->(i)", "matrix_power": "(i,j)->(i,j)",
}


def linalg_call(name: str, a: Any, *rest: Any) -> Any:
    """``numpy.linalg.<name>(a, *rest)`` (one matrix input, static ``rest``) on any
    backend: ``inv``, ``det``, ``cholesky``, ``eigvalsh`` or ``matrix_power``."""
    np_fn = getattr(np.linalg, name)
    return linalg_apply(lambda x: np_fn(x, *rest), _SIGNATURES[name], a,
                        xp_fn=lambda xp, x: getattr(xp.linalg, name)(x, *rest))
