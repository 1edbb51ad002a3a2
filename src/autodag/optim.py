"""Optimizers: SGD (with momentum) and Adam, updating Variables in place.

The conventions are PyTorch's, adapted to a define-then-run graph. Gradients reach an
optimizer one of two ways:

* ``opt.step(grads)`` with the list ``autodag.grad(loss, opt.params, feed)`` returns
  (one array per parameter, in the optimizer's order); or
* ``opt.step()`` after ``forward_pass``/``backward_pass``, reading each Variable's
  ``.gradient``. ``opt.zero_grad()`` clears those, so a ``step()`` without a fresh
  backward pass is an error instead of a silent repeat of the last update.

>>> import autodag as ad
>>> from autodag.optim import SGD
>>> with ad.Graph():
...     w = ad.Variable(3.0, name="w")
...     loss = (w - 1.0) ** 2
>>> opt = SGD([w], lr=0.25)
>>> for _ in range(30):
...     opt.step(ad.grad(loss, opt.params))
>>> round(float(w.value), 6)
1.0

Array values of a floating dtype are updated in place (views of them see the change);
scalars and integer arrays are replaced by float64 values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .backend import is_numpy, namespace_of
from .errors import ArgumentError
from .nodes import Variable

__all__ = ["SGD", "Adam", "Optimizer"]

Array = np.ndarray[Any, Any]


class Optimizer:
    """Base of the optimizers: holds the parameters and hands each step its gradients."""

    def __init__(self, params: Iterable[Variable], lr: float) -> None:
        self.params: list[Variable] = list(params)
        if not self.params:
            raise ArgumentError(f"{type(self).__name__}: got no parameters to optimise")
        seen: set[Variable] = set()
        for p in self.params:
            if not isinstance(p, Variable):
                raise ArgumentError(
                    f"{type(self).__name__}: parameters must be Variables, got "
                    f"{type(p).__name__} {getattr(p, 'name', p)!r}"
                )
            if p in seen:
                raise ArgumentError(f"{type(self).__name__}: Variable {p.name!r} is given twice")
            seen.add(p)
        _check_positive(self, "lr", lr)
        self.lr = float(lr)
        #: Number of steps taken.
        self.steps = 0

    def zero_grad(self) -> None:
        """Clear the ``.gradient`` of every parameter (PyTorch's ``zero_grad``)."""
        for p in self.params:
            p.gradient = None

    def step(self, grads: Sequence[Any] | None = None) -> None:
        """Update every parameter once, from ``grads`` or from each one's ``.gradient``."""
        if grads is None:
            gs = [self._stored(p) for p in self.params]
        else:
            gs = list(grads)
            if len(gs) != len(self.params):
                raise ArgumentError(
                    f"{type(self).__name__}.step got {len(gs)} gradients for "
                    f"{len(self.params)} parameters"
                )
        checked = [self._check(p, g) for p, g in zip(self.params, gs)]
        self.steps += 1
        for k, (p, g) in enumerate(zip(self.params, checked)):
            self._assign(p, self._update(k, _value(p), g))

    def _stored(self, p: Variable) -> Any:
        if p.gradient is None:
            raise ArgumentError(
                f"{type(self).__name__}.step: Variable {p.name!r} has no gradient; run "
                "backward_pass on a graph using it, or pass step(autodag.grad(loss, params))"
            )
        return p.gradient

    def _check(self, p: Variable, g: Any) -> Array:
        value = p.value
        if not is_numpy(value):
            # Another backend's parameter: its gradient stays in that library and dtype.
            if is_numpy(g) and np.ndim(g):
                raise ArgumentError(
                    f"{type(self).__name__}.step: Variable {p.name!r} holds a "
                    f"{type(value).__module__} array but its gradient is a NumPy array; "
                    "gradients are never converted between libraries"
                )
            xp = namespace_of(value)
            arr: Array = xp.asarray(g) if is_numpy(g) else g
            if arr.dtype != value.dtype:
                arr = xp.astype(arr, value.dtype)
        elif not is_numpy(g):
            raise ArgumentError(
                f"{type(self).__name__}.step: the gradient for Variable {p.name!r} is a "
                f"{type(g).__module__}.{type(g).__name__}, not NumPy like the parameter: "
                "compute it first (dask.compute(*grads)) or keep the parameter in its library"
            )
        else:
            arr = np.asarray(g, dtype=_float_dtype(value))
        if tuple(np.shape(arr)) != tuple(np.shape(value)):
            raise ArgumentError(
                f"{type(self).__name__}.step: gradient of shape {tuple(np.shape(arr))} for "
                f"Variable {p.name!r} of shape {tuple(np.shape(value))}"
            )
        return arr

    def _update(self, k: int, value: Array, g: Array) -> Array:
        """The new value of parameter ``k``; subclasses define the rule."""
        raise NotImplementedError

    @staticmethod
    def _assign(p: Variable, new: Array) -> None:
        old = p.value
        if not is_numpy(old):
            p.value = new  # another backend's arrays may not be writeable in place
        elif isinstance(old, np.ndarray) and old.dtype.kind == "f" and old.ndim > 0:
            old[...] = new
        elif isinstance(old, np.ndarray):
            p.value = new.astype(np.float64)
        elif isinstance(old, np.generic) and old.dtype.kind == "f":
            p.value = old.dtype.type(new)
        else:
            p.value = float(new)


def _float_dtype(value: Any) -> np.dtype[Any]:
    """A parameter's own floating dtype (float32 state for float32), else float64."""
    dt = np.result_type(value)
    return dt if dt.kind == "f" and not isinstance(value, float) else np.dtype(np.float64)


def _value(p: Variable) -> Array:
    v = p.value
    return v if not is_numpy(v) else np.asarray(v, dtype=_float_dtype(v))


def _sqrt(x: Array) -> Array:
    r: Array = np.sqrt(x) if is_numpy(x) else namespace_of(x).sqrt(x)
    return r


def _check_positive(opt: object, what: str, x: float, allow_zero: bool = False) -> None:
    ok = x >= 0 if allow_zero else x > 0
    if not (isinstance(x, (int, float)) and np.isfinite(x) and ok):
        bound = "non-negative" if allow_zero else "positive"
        raise ArgumentError(f"{type(opt).__name__}: {what} must be a {bound} number, got {x!r}")


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum and weight decay.

    Velocity ``v = momentum * v + g`` (``g`` plus ``weight_decay * value``), then
    ``value -= lr * v``; with ``nesterov`` the step is ``lr * (g + momentum * v)``.
    """

    def __init__(
        self,
        params: Iterable[Variable],
        lr: float = 0.01,
        momentum: float = 0.0,
        *,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        _check_positive(self, "momentum", momentum, allow_zero=True)
        _check_positive(self, "weight_decay", weight_decay, allow_zero=True)
        if nesterov and momentum == 0:
            raise ArgumentError("SGD: nesterov momentum needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.weight_decay = float(weight_decay)
        self.velocity: list[Array | None] = [None] * len(self.params)

    def _update(self, k: int, value: Array, g: Array) -> Array:
        if self.weight_decay:
            g = g + self.weight_decay * value
        if self.momentum:
            v = self.velocity[k]
            v = (g.copy() if is_numpy(g) else g) if v is None else self.momentum * v + g
            self.velocity[k] = v
            g = g + self.momentum * v if self.nesterov else v
        return value - self.lr * g


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction and optional weight decay."""

    def __init__(
        self,
        params: Iterable[Variable],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        b1, b2 = betas
        for what, b in (("betas[0]", b1), ("betas[1]", b2)):
            if not 0 <= b < 1:
                raise ArgumentError(f"Adam: {what} must be in [0, 1), got {b!r}")
        _check_positive(self, "eps", eps)
        _check_positive(self, "weight_decay", weight_decay, allow_zero=True)
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.m: list[Array | None] = [None] * len(self.params)
        self.v: list[Array | None] = [None] * len(self.params)

    def _update(self, k: int, value: Array, g: Array) -> Array:
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * value
        m_prev, v_prev = self.m[k], self.v[k]
        m = (1 - b1) * g if m_prev is None else b1 * m_prev + (1 - b1) * g
        v = (1 - b2) * g * g if v_prev is None else b2 * v_prev + (1 - b2) * g * g
        self.m[k], self.v[k] = m, v
        m_hat = m / (1 - b1**self.steps)
        v_hat = v / (1 - b2**self.steps)
        return value - self.lr * m_hat / (_sqrt(v_hat) + self.eps)
