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

from collections.abc import Iterable, Mapping, Sequence
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

    #: Names of the constructor's settings, restored by ``load_state_dict``.
    _settings: tuple[str, ...] = ("lr",)
    #: Names of the per-parameter state lists (one entry per parameter, None before the
    #: first step).
    _slots: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """Settings, step count and per-parameter state (PyTorch's ``state_dict``), with
        the parameters' names so that it reattaches to the right ones after a load."""
        return {
            "optimizer": type(self).__name__,
            "settings": {k: getattr(self, k) for k in self._settings},
            "steps": self.steps,
            "params": [p.name for p in self.params],
            "state": [{s: _copy(getattr(self, s)[k]) for s in self._slots}
                      for k in range(len(self.params))],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (possibly from another process, with its
        parameters matched by name), so that training continues exactly."""
        who = type(self).__name__
        if not isinstance(state, Mapping) or state.get("optimizer") != who:
            kind = state.get("optimizer") if isinstance(state, Mapping) else type(state).__name__
            raise ArgumentError(f"{who}.load_state_dict: got the state of {kind!r}, not {who}")
        settings, steps = state.get("settings"), state.get("steps")
        if not isinstance(settings, Mapping) or set(settings) != set(self._settings):
            raise ArgumentError(f"{who}.load_state_dict: settings must name {self._settings}")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ArgumentError(f"{who}.load_state_dict: steps must be a count, got {steps!r}")
        probe = type(self)(self.params, **settings)  # the constructor's checks of settings
        per_param = self._match(state.get("params"), state.get("state"))
        for p, entry in zip(self.params, per_param):
            # A missing entry would silently restart the parameter's momentum or moments.
            if not isinstance(entry, Mapping) or set(entry) != set(self._slots):
                raise ArgumentError(f"{who}.load_state_dict: the state of Variable {p.name!r} "
                                    f"must be a dict of {self._slots}, got {entry!r:.80}")
        restored = {s: [_restore(p, entry[s],
                                 f"{who}.load_state_dict: {s!r} of Variable {p.name!r}")
                        for p, entry in zip(self.params, per_param)]
                    for s in self._slots}
        for k in self._settings:
            setattr(self, k, getattr(probe, k))
        for s, values in restored.items():
            setattr(self, s, values)
        self.steps = steps

    def _match(self, names: Any, entries: Any) -> list[Any]:
        """Each parameter's saved entry: by name when names are unique, else by position."""
        who = f"{type(self).__name__}.load_state_dict"
        if not (isinstance(names, list) and isinstance(entries, list)
                and len(names) == len(entries)):
            raise ArgumentError(f"{who}: 'params' and 'state' must be lists of equal length")
        mine = [p.name for p in self.params]
        if names == mine:
            return list(entries)
        if len(set(names)) == len(names) == len(mine) == len(set(mine)) and \
                set(names) == set(mine):
            by_name = dict(zip(names, entries))
            return [by_name[n] for n in mine]
        missing = [n for n in mine if n not in names]
        extra = [n for n in names if n not in mine]
        raise ArgumentError(
            f"{who}: the state is for parameters {names}, this optimizer has {mine}"
            f" (missing {missing}, unexpected {extra})"
        )

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


def _copy(value: Any) -> Any:
    """A state entry, copied so that later steps never change a saved state."""
    return value.copy() if isinstance(value, np.ndarray) else value


def _restore(p: Variable, value: Any, what: str) -> Any:
    """A saved state entry for ``p``: None, or an array of its shape (copied, in its dtype
    and library)."""
    if value is None:
        return None
    if is_numpy(value) and is_numpy(p.value):
        arr: Array = np.array(value, dtype=_float_dtype(p.value), copy=True)
    elif not is_numpy(value) and not is_numpy(p.value):
        arr = value
    else:
        raise ArgumentError(f"{what}: a {type(value).__module__} array for a parameter held "
                            f"in {type(p.value).__module__}; state is never converted")
    if tuple(np.shape(arr)) != tuple(np.shape(p.value)):
        raise ArgumentError(f"{what} has shape {tuple(np.shape(arr))}, the parameter "
                            f"{tuple(np.shape(p.value))}")
    return arr


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
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocity: list[Array | None] = [None] * len(self.params)

    _settings = ("lr", "momentum", "nesterov", "weight_decay")
    _slots = ("velocity",)

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

    _settings = ("lr", "betas", "eps", "weight_decay")
    _slots = ("m", "v")

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
