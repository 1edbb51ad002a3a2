"""Fused programs: a compiled program's values and gradients for calls on NumPy arrays,
with chains of elementwise ops run as compiled kernels (the ``fusion`` extra).

For each signature of its calls' leaves (shapes and dtypes), a program builds a fused
plan once (``fusion_build``): a graph that cannot be built so (a rule that is not
symbolic, an unknown shape) or has no chain to fuse runs as before. Fused results equal
the unfused ones up to rounding (a kernel writes x**3 as x*x*x and may keep a float32
intermediate in float64: a few units in the last place).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .compiler import limits
from .errors import ArgumentError
from .hooktables import Provided
from .interpreter import PlanBase
from .nodes import Node

if TYPE_CHECKING:
    from .compiler.fuse import Kernel
    from .fusion_build import Fused

__all__ = ["ENV", "Fuser", "wanted"]

#: ``AUTODAG_FUSION=0`` turns fusion off for programs that do not ask for it.
ENV: Final = "AUTODAG_FUSION"
_OFF: Final = ("0", "off", "false", "no")


def wanted(fuse: bool | None) -> bool:
    """Whether a program fuses: ``fuse=None`` when numba is installed and
    ``AUTODAG_FUSION`` does not say no, ``True`` always (numba is then required)."""
    if fuse is False:
        return False
    if fuse is not None and fuse is not True:
        raise ArgumentError(f"compile(fuse=...) takes True, False or None, got {fuse!r}")
    if fuse is None and os.environ.get(ENV, "").strip().lower() in _OFF:
        return False
    import importlib.util  # not imported by every program that never asks

    if importlib.util.find_spec("numba") is not None:
        return True
    if fuse is True:
        raise ArgumentError("compile(fuse=True) needs numba: pip install "
                            "'autodag[fusion]' (or pass fuse=None to fuse only when "
                            "it is installed)")
    return False


_Signature = tuple[Any, ...]


class Fuser:
    """The fused plans of one program, built on first call per leaf signature.

    With ``forced`` every such call runs fused. Otherwise a signature is built once its
    unfused calls have taken ``FUSE_BUILD_COST`` seconds, and its next calls run fused
    and unfused in turn, timed, the faster kept: fusion costs a program at most about
    twice what the better choice would, whatever its graph, sizes or machine.
    """

    def __init__(self, outputs: Sequence[Node], wrt: Sequence[Node], leaves: Sequence[Node],
                 rules: Mapping[str, Provided], forced: bool = False) -> None:
        self.forced = forced
        self._outputs = tuple(outputs)
        self._wrt = tuple(wrt)
        self._leaves = tuple(leaves)
        self._rules = rules
        self._cache: dict[_Signature, Fused | None] = {}
        #: Seconds spent in unfused calls of each signature not built yet.
        self._spent: dict[_Signature, float] = {}
        #: Whether the graph may gain from fusing at all (``fusion_build.worth``),
        #: asked on the first build; False turns the program's fusion off.
        self._worth: bool | None = None
        self._lock = threading.Lock()

    def run(self, leaf_values: Sequence[Any], plain: PlanBase, xp: Any,
            ) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
        """Output values and raw gradients (fused, or of ``plain`` while timing both), or
        None when these values run unfused."""
        if self._worth is False:
            return None
        big = False
        sig: list[Any] = []
        for v in leaf_values:
            c = v.__class__
            if c is np.ndarray:
                if v.size >= limits.FUSE_MIN_SIZE:
                    big = True
                sig.append((v.shape, v.dtype))
            elif c is float or c is int:
                sig.append(c)
            else:
                return None
        if not big:
            return None
        key = tuple(sig)
        fused = self._cache.get(key, self)
        if fused is self and len(self._cache) >= limits.FUSE_MAX_SIGNATURES:
            return None  # a program of ever new shapes keeps what it has fused
        if fused is self and not self.forced:
            # Until unfused calls of this signature have taken about what building the
            # fused plan costs, they run unfused: a program called a few times on small
            # arrays never pays for compiling kernels.
            spent = self._spent.get(key, 0.0)
            if len(self._spent) > 64 and key not in self._spent:
                return None  # shapes that never repeat enough: nothing to remember
            if spent < limits.FUSE_BUILD_COST:
                t0 = time.perf_counter()
                got = plain.run(xp, leaf_values)
                self._spent[key] = spent + time.perf_counter() - t0
                return got
        if fused is self:
            with self._lock:
                fused = self._cache.get(key, self)
                if fused is self:
                    fused = self._build(leaf_values)
                    self._cache[key] = fused
                    self._spent.pop(key, None)
        if fused is None or fused is self:
            return None
        assert not isinstance(fused, Fuser)
        trial = fused.trial
        if self.forced or trial.choice:
            return self._fused(key, fused, leaf_values)
        if trial.choice is False:
            return None
        use = len(trial.fused) <= len(trial.plain)
        t0 = time.perf_counter()
        result = (self._fused(key, fused, leaf_values) if use
                  else plain.run(xp, leaf_values))
        if result is None:
            return None
        if trial.record(use, time.perf_counter() - t0) is False:
            self._cache[key] = None  # unfused it is: the fused plan's memory goes
        return result

    def _fused(self, key: _Signature, fused: Fused, leaf_values: Sequence[Any],
               ) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
        """The fused plan's results; None, and never again for this signature, when it
        fails: the unfused program then runs, and raises its own error if it fails too
        (a compiled program never fails where the unfused one works)."""
        try:
            return fused.run(leaf_values)
        except Exception:
            self._cache[key] = None
            return None

    def kernels(self) -> list[tuple[Kernel, ...]]:
        """The kernels of each signature fused so far."""
        return [f.kernels for f in list(self._cache.values()) if f is not None]

    def describe(self) -> str:
        """One line: when calls fuse, and each kernel built so far (a line each)."""
        when = "always" if self.forced else "when faster (timed on the first calls)"
        lines = [f"numba kernels, for calls with a NumPy array of {limits.FUSE_MIN_SIZE}+ "
                 f"elements, {when}"]
        for sig, f in list(self._cache.items()):
            shapes = ", ".join(str(s[0]) if isinstance(s, tuple) else s.__name__ for s in sig)
            if f is None:
                lines.append(f"#   ({shapes}): runs unfused")
                continue
            for k in f.kernels:
                lines.append(f"#   ({shapes}) {k.root.name} = {k.expr}  [{k.ops} ops]")
        return "\n".join(lines)

    def _build(self, values: Sequence[Any]) -> Fused | None:
        from .fusion_build import build, worth

        try:
            if self._worth is None:
                self._worth = worth(self._outputs, self._wrt)
            if not self._worth:
                return None
            return build(self._outputs, self._wrt, self._leaves, values, self._rules)
        except Exception:  # fusion is an optimization: any failure runs unfused
            return None
