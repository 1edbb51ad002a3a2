"""Small array helpers shared by the engine and the built-in plugin (NumPy first,
another backend's arrays through their own namespace)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from .backend import is_numpy, namespace_of

__all__ = ["grad_dtype", "owned", "sum_to"]


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes along which a value of ``shape`` was broadcast.

    Raises ValueError when ``g`` cannot have come from broadcasting ``shape``.
    """
    gs = np.shape(g)
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    if lead < 0 or any(s != 1 and s != gs[lead + i] for i, s in enumerate(shape)):
        # A rule may return a smaller gradient that broadcasts up (a scalar zero, say).
        if np.broadcast_shapes(gs, shape) == shape:
            if not is_numpy(g):
                return namespace_of(g).broadcast_to(g, shape)
            return np.broadcast_to(g, shape)
        raise ValueError(f"gradient of shape {gs} does not reduce to shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and gs[lead + i] != 1
    )
    if g.__class__ is np.ndarray:
        r = g.sum(axis=axes)  # the method: np.sum's dispatch costs more than a small sum
        return r if r.shape == shape else r.reshape(shape)
    if not is_numpy(g):
        xp = namespace_of(g)  # another backend's array: summed by its own library
        r = xp.sum(g, axis=axes)
        return r if tuple(r.shape) == shape else xp.reshape(r, shape)
    r = np.sum(g, axis=axes)
    return np.reshape(r, shape)


def grad_dtype(value: Any) -> Any:
    """The dtype of a gradient for ``value``: its own if floating, else float64 (of the
    value's own library, for an array of another backend)."""
    if isinstance(value, float):
        return np.dtype(np.float64)
    if not is_numpy(value):
        xp = namespace_of(value)
        dt = value.dtype
        return dt if xp.isdtype(dt, ("real floating", "complex floating")) else xp.float64
    dt = np.result_type(value)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def owned(g: Any) -> Any:
    """``g``, or a copy of it when it is a read-only or broadcast (zero-stride) view.

    Gradients handed to the caller are theirs to write to; a rule may return
    ``np.broadcast_to`` of a smaller array, which NumPy marks read-only.
    """
    if g.__class__ is np.ndarray and (
        not g.flags.writeable or (g.ndim and 0 in g.strides and g.size > 1)
    ):
        return np.array(g)
    return g


def _quiet_extobj() -> tuple[Any, Any] | None:
    """NumPy's error-state context variable and its 'ignore' value, where NumPy has one."""
    try:
        from numpy._core import _ufunc_config as config

        var = config._extobj_contextvar  # type: ignore[attr-defined]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return var, var.get()
    except (ImportError, AttributeError):
        return None


_QUIET: Final = _quiet_extobj()


class quiet_numpy:
    """``np.errstate(divide/invalid/over="ignore")`` for backward passes, made cheap.

    Rules evaluate derivative formulas at points where they are infinite or undefined
    (0 ** -0.5, log 0); the result is what NumPy says, without warnings about it. Entering
    ``np.errstate`` costs ~2 us, more than a small graph's arithmetic, so where NumPy
    keeps its error state in a context variable (NumPy 2) this sets that variable
    directly to the state ``np.errstate`` would set from NumPy's defaults (a later
    ``np.seterr(under=...)`` does not reach it); elsewhere it is ``np.errstate``.
    """

    __slots__ = ("_inner", "_token")

    def __init__(self) -> None:
        self._token: Any = None
        self._inner: Any = None

    def __enter__(self) -> None:
        if _QUIET is None:
            self._inner = np.errstate(divide="ignore", invalid="ignore", over="ignore")
            self._inner.__enter__()
        else:
            self._token = _QUIET[0].set(_QUIET[1])

    def __exit__(self, *exc: object) -> None:
        if self._inner is not None:
            self._inner.__exit__(*exc)
        else:
            _QUIET[0].reset(self._token)  # type: ignore[index]


# The same for generated code, as two calls: with NumPy's context variable, C calls.
if _QUIET is not None:
    quiet_enter: Callable[[], Any] = functools.partial(_QUIET[0].set, _QUIET[1])
    quiet_exit: Callable[[Any], Any] = _QUIET[0].reset
else:

    def quiet_enter() -> Any:
        """Enter ``quiet_numpy``; hand the result to ``quiet_exit``."""
        q = quiet_numpy()
        q.__enter__()
        return q

    def quiet_exit(q: Any) -> Any:
        """Leave what ``quiet_enter`` entered."""
        return q.__exit__(None, None, None)
