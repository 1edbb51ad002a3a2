"""The array backends the backend tests run on, described as data.

Each :class:`Backend` says how to turn a NumPy test value into that library's array
(``to_backend``), how to bring a result back to NumPy for comparing (``to_numpy``, for
tests only: autodag itself never converts), and whether a result is that library's own
array (``owns``). ``PARAMS`` is the pytest parameter list (``@pytest.mark.parametrize(
"backend", PARAMS)``); CuPy's cases are marked ``gpu`` and skipped, with the reason,
unless CuPy and a CUDA device are present (``pytest -m gpu`` runs only them); torch's
(CPU) and JAX's are skipped unless they are installed (the dev extra installs them).
JAX runs with 64-bit floats enabled, as the tests compare float64 results.

Python numbers stay Python numbers on every backend (they mix with any of them); NumPy
scalars (``np.float64``) are arrays and are converted like arrays.

On Dask, :class:`ComputeCounter` counts the graphs computed while it is active, on the
synchronous scheduler (so that a distributed client set up elsewhere cannot hide them):
``with ComputeCounter() as c: ...; assert c.count == 0``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import array_api_strict
import numpy as np
import pytest

# Dask's functions are untyped: used through ``Any``.
dask: Any = importlib.import_module("dask")
da: Any = importlib.import_module("dask.array")
_Callback: Any = importlib.import_module("dask.callbacks").Callback

#: Python's own number types: kept as they are on every backend.
PY_NUMBERS: Final = (bool, int, float, complex)


def is_py_number(value: Any) -> bool:
    """A Python number (not a NumPy scalar, whose types subclass ``float`` and ``int``)."""
    return type(value) in PY_NUMBERS


@dataclass(frozen=True)
class Backend:
    """One array library as the tests use it."""

    name: str
    #: A NumPy array or scalar (or Python number) as this library's value.
    convert: Callable[[Any], Any]
    #: A result of this library back as a NumPy array (for comparing, in tests only).
    back: Callable[[Any], Any]
    #: Whether a value is an array of this library.
    owns: Callable[[Any], bool]
    #: Whether results are lazy (Dask): nothing may be computed until the test asks.
    lazy: bool = False

    def to_backend(self, value: Any) -> Any:
        """``value`` as this backend's array; Python numbers unchanged."""
        if is_py_number(value):
            return value
        return self.convert(np.asarray(value))

    def to_numpy(self, value: Any) -> np.ndarray[Any, Any]:
        """A value of this backend (or a Python number) as a NumPy array."""
        if is_py_number(value):
            return np.asarray(value)
        return np.asarray(self.back(value))

    def materialize(self, value: Any) -> Any:
        """``value`` (a result, or lists and tuples of them) with every lazy array
        computed, all in one go: the same structure, ready for ``to_numpy``."""
        if not self.lazy:
            return value
        return dask.compute(value, scheduler="synchronous")[0]

    def __repr__(self) -> str:
        return f"<backend {self.name}>"


# --- NumPy ----------------------------------------------------------------------------
def _numpy_owns(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic)) or is_py_number(value)


NUMPY: Final = Backend("numpy", lambda a: a, lambda a: a, _numpy_owns)


# --- array-api-strict: the stand-in for CuPy without a GPU ------------------------------
_STRICT_ARRAY: Final = type(array_api_strict.asarray(0.0))


def _strict_convert(a: np.ndarray[Any, Any]) -> Any:
    return array_api_strict.asarray(a)


def _strict_owns(value: Any) -> bool:
    return isinstance(value, _STRICT_ARRAY)


STRICT: Final = Backend("strict", _strict_convert, np.asarray, _strict_owns)


# --- Dask -----------------------------------------------------------------------------
def dask_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """At least two chunks along axis 0 when it has two elements or more; other axes
    whole."""
    if not shape:
        return ()
    first = max(1, math.ceil(shape[0] / 2))
    return (first, *(max(1, n) for n in shape[1:]))


def _dask_convert(a: np.ndarray[Any, Any]) -> Any:
    return da.from_array(a, chunks=dask_chunks(a.shape))


def _dask_back(value: Any) -> Any:
    # A lazy array, or one ``Backend.materialize`` computed already.
    return value.compute(scheduler="synchronous") if isinstance(value, da.Array) else value


def _dask_owns(value: Any) -> bool:
    return isinstance(value, da.Array)


DASK: Final = Backend("dask", _dask_convert, _dask_back, _dask_owns, lazy=True)


# --- CuPy: only with a GPU --------------------------------------------------------------
def gpu_missing() -> str | None:
    """Why the CuPy tests cannot run here, or None when CuPy and a GPU are present."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (the gpu tests need CuPy and a CUDA GPU)"
    try:
        cupy = importlib.import_module("cupy")
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # no driver, no device, a broken install
        return f"CuPy cannot reach a CUDA GPU ({type(exc).__name__}: {exc})"
    if count < 1:
        return "CuPy is installed but there is no CUDA GPU"
    return None


def _cupy() -> Any:
    return importlib.import_module("cupy")


def _cupy_convert(a: np.ndarray[Any, Any]) -> Any:
    return _cupy().asarray(a)


def _cupy_back(value: Any) -> Any:
    return _cupy().asnumpy(value)


def _cupy_owns(value: Any) -> bool:
    return isinstance(value, _cupy().ndarray)


CUPY: Final = Backend("cupy", _cupy_convert, _cupy_back, _cupy_owns)


# --- torch (CPU) and JAX: through array-api-compat, when installed ---------------------
def _module(name: str) -> Any:
    return importlib.import_module(name)


def _torch_convert(a: np.ndarray[Any, Any]) -> Any:
    return _module("torch").asarray(a)


def _torch_back(value: Any) -> Any:
    return value.numpy() if isinstance(value, _module("torch").Tensor) else value


def _torch_owns(value: Any) -> bool:
    return isinstance(value, _module("torch").Tensor)


TORCH: Final = Backend("torch", _torch_convert, _torch_back, _torch_owns)


def _jax_convert(a: np.ndarray[Any, Any]) -> Any:
    # The tests compare float64 with float64: JAX computes in float32 unless told.
    _module("jax").config.update("jax_enable_x64", True)
    return _module("jax.numpy").asarray(a)


def _jax_owns(value: Any) -> bool:
    return isinstance(value, _module("jax").Array)


JAX: Final = Backend("jax", _jax_convert, np.asarray, _jax_owns)

#: Every backend, by name.
BACKENDS: Final = {b.name: b for b in (NUMPY, STRICT, DASK, CUPY, TORCH, JAX)}

_GPU_MISSING: Final = gpu_missing()
_GPU_MARKS: Final = [
    pytest.mark.gpu,
    pytest.mark.skipif(_GPU_MISSING is not None, reason=_GPU_MISSING or ""),
]


def _missing(module: str) -> list[Any]:
    why = f"{module} is not installed"
    return [pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=why)]


_MARKS: Final = {"cupy": _GPU_MARKS, "torch": _missing("torch"), "jax": _missing("jax")}


def params(*names: str, slow: tuple[str, ...] = ()) -> list[Any]:
    """Pytest parameters of the named backends (all of them without names), with CuPy
    marked ``gpu`` and skipped unless a GPU is present, torch and JAX skipped unless
    installed, and those named in ``slow`` marked ``slow``."""
    chosen = [BACKENDS[n] for n in names] if names else list(BACKENDS.values())
    return [pytest.param(b, id=b.name, marks=[*_MARKS.get(b.name, ()),
                                              *([pytest.mark.slow] if b.name in slow else [])])
            for b in chosen]


#: All backends: NumPy, array-api-strict, Dask, CuPy where a GPU is, torch and JAX; the
#: op suites' torch and JAX cases (about a thousand) run in ``make slow``.
PARAMS: Final = params(slow=("torch", "jax"))
#: The backends other than NumPy.
FOREIGN_PARAMS: Final = params("strict", "dask", "cupy", "torch", "jax")


class ComputeCounter(_Callback):  # type: ignore[misc]  # dask's Callback is untyped
    """Counts the Dask graphs computed while active, on the synchronous scheduler."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._config: Any = None

    def _start(self, dsk: Any) -> None:
        self.count += 1

    def __enter__(self) -> ComputeCounter:
        # The local scheduler runs callbacks; a distributed client would not.
        self._config = dask.config.set(scheduler="synchronous")
        self._config.__enter__()
        super().__enter__()
        return self

    def __exit__(self, typ: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        super().__exit__(typ, value, tb)
        self._config.__exit__(typ, value, tb)


class NoCounter:
    """What :func:`counting` gives for an eager backend: nothing to count."""

    count = 0

    def __enter__(self) -> NoCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def counting(backend: Backend) -> ComputeCounter | NoCounter:
    """A compute counter for a lazy backend, a stand-in for the others."""
    return ComputeCounter() if backend.lazy else NoCounter()
