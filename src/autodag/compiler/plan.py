"""The compiler's plan: the IR built once, code emitted and compiled when first needed,
and calls run with the fallback order scalar function -> NumPy floats -> general.

A graph whose ops all declare templates gets a terse scalar function that runs every
call on Python numbers; the general function is generated only when a call brings
arrays. A large plan that would cost much to compile runs in the interpreter until its
calls have taken about as long as compiling would (``limits``), so the first call of a
large array graph costs no more than interpreting it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from .._arrays import quiet_enter, quiet_exit
from ..errors import AutodagError
from ..interpreter import Interpreted, PlanBase
from ..nodes import Node
from ..registry import get_registry
from ..runtime import (
    acc_add,
    acc_owned,
    acc_sum,
    check_joint,
    iadd,
    numpy_floats,
    reduce_grad,
    seed,
    shape_token,
    shaped_like,
)
from . import limits
from .analysis import build_ir, templated
from .emit_scalar import scalar_source
from .ir import PlanIR
from .locate import locate, run_interpreted, unplaced
from .rolling import MAX_LAG, Loop, array_loops, find_loops
from .source import Source

__all__ = ["Plan"]

_PY_REAL: Final = (int, float)
_ids = itertools.count()
#: What generated code reads from its namespace besides the plan's own names.
_RUNTIME: Final = {
    "_red": reduce_grad, "_joint": check_joint, "_nd": np.ndarray, "_iadd": iadd,
    "_seed": seed, "_qenter": quiet_enter, "_qexit": quiet_exit,
    "_shape_token": shape_token, "_PYR": _PY_REAL,
    "_accf": shaped_like, "_acca": acc_add, "_acco": acc_owned, "_accn": acc_sum,
}


def _float64s(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(np.float64(v) if v.__class__ is float else v for v in values)


def _loops(ir: PlanIR, max_lag: int = 1, min_nodes: int | None = None) -> list[Loop]:
    """The blocks a function writes as loops, in a graph of at least ``min_nodes``
    nodes (the scalar function's threshold by default)."""
    n = len(ir.order)
    if n < (limits.ROLL_MIN_NODES if min_nodes is None else min_nodes):
        return []
    # What the backward pass does with each node: nothing, or which inputs it feeds.
    kinds: dict[tuple[bool, ...], int] = {}
    signature = np.zeros(n, np.int64)
    for i, w in ir.want.items():
        signature[i] = kinds.setdefault(w, len(kinds) + 1)
    wrt = [s for s in ir.wrt or () if s is not None]
    least = min(limits.ROLL_MIN_LOOP, limits.ROLL_MIN_NODES)
    return find_loops(ir.order, ir.inputs, ir.outputs, wrt, signature, least,
                      max_lag=max_lag)


class Plan(PlanBase):
    """The passes for ``outputs`` (and the gradient of ``outputs[0]`` for ``wrt``) as
    generated code."""

    def __init__(self, order: Sequence[Node], outputs: Sequence[Node],
                 wrt: Sequence[Node] | None, eager: bool = False) -> None:
        super().__init__(order, outputs, wrt)
        self._registry = get_registry()
        self._lock = threading.RLock()
        self._id = next(_ids)
        self._sources: dict[str, Source] = {}
        self._ir: PlanIR | None = None
        self._scalar: Callable[..., Any] | None = None
        self._general: Callable[..., Any] | None = None
        self._interp: Interpreted | None = None
        self._loops: list[Loop] | None = None
        now = eager or len(self.order) <= limits.LAZY_GENERAL_NODES
        if now or templated(self.order):
            ir = self.ir
            self.uses_xp = ir.uses_xp
            if now:
                self._make_scalar() if ir.scalar else self._make_general()
        if self._general is None and not self.has_scalar:
            # Until the general function pays off, calls are interpreted.
            self._interp = Interpreted(self.order, self.outputs, self.wrt)

    @property
    def ir(self) -> PlanIR:
        """The plan's IR without steps (what the scalar function and the choice of
        loops need), built on first use."""
        if self._ir is None:
            with self._lock:
                if self._ir is None:
                    self._ir = build_ir(self.order, self.outputs, self.wrt, self._registry,
                                        general=False)
        return self._ir

    @property
    def has_scalar(self) -> bool:
        """Whether calls on Python numbers run a terse scalar function."""
        return self._ir is not None and self._ir.scalar

    @property
    def source(self) -> str:
        """The generated Python source (the scalar function first, when there is one)."""
        if self.has_scalar:
            self._make_scalar()
        self._make_general()
        return "".join(s.text for s in self._sources.values())

    def _exec(self, src: Source, tag: str, name: str) -> Callable[..., Any]:
        filename = f"<autodag-plan-{self._id}{tag}>"
        ns = {**_RUNTIME, **src.namespace}
        exec(compile(src.text, filename, "exec"), ns)
        self._sources[filename] = src
        fn: Callable[..., Any] = ns[name]
        return fn

    def _make_scalar(self) -> Callable[..., Any]:
        with self._lock:
            if self._scalar is None:
                src = scalar_source(self.ir, _loops(self.ir))
                self._scalar = self._exec(src, "-scalar", "_scalar")
            return self._scalar

    def _make_general(self) -> Callable[..., Any]:
        # A program for Python numbers may never need these: they load on first use.
        from .chunks import assemble

        with self._lock:
            if self._general is None:
                compact = len(self.order) > limits.COMPACT_NODES
                fw, bw, ns = self._emit_general(compact)
                text, lines = assemble(fw, bw)
                self._general = self._exec(Source(text, ns, lines), "", "_plan")
                self.uses_xp = self.ir.uses_xp
            return self._general

    def _array_loops(self) -> list[Loop]:
        """The blocks the general function writes as loops, found once."""
        if self._loops is None:
            least = min(limits.ROLL_MIN_ARRAY_NODES, limits.ROLL_MIN_NODES)
            self._loops = array_loops(self.ir, _loops(self.ir, MAX_LAG, least))
        return self._loops

    def _compile_estimate(self) -> float:
        """Seconds generating the general function is expected to take."""
        n = len(self.order)
        rolled = sum(lp.period * lp.reps for lp in self._array_loops())
        return n * limits.ANALYSIS_COST + (n - rolled) * limits.COMPILE_COST

    def _emit_general(self, compact: bool) -> tuple[Any, Any, dict[str, Any]]:
        """The general function's blocks, with the blocks the graph repeats as loops."""
        from .emit_general import emit_general

        loops = self._array_loops()
        if loops:
            ir = build_ir(self.order, self.outputs, self.wrt, self._registry, loops=loops)
            got = emit_general(ir, compact, loops)
            if got is not None:
                return got
        ir = build_ir(self.order, self.outputs, self.wrt, self._registry)
        got = emit_general(ir, compact)
        assert got is not None  # straight-line code always writes
        return got

    def run(self, xp: Any, leaf_values: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Output values and raw gradients for these leaf values (in ``leaves`` order)."""
        fn = self._scalar
        if fn is not None or (self._ir is not None and self._ir.scalar):
            if fn is None:
                fn = self._make_scalar()
            try:
                got = fn(leaf_values)
            except Exception as exc:
                got, leaf_values = None, self._scalar_failed(exc, leaf_values)
            else:
                if got is None and any(v.__class__ is np.float64 for v in leaf_values):
                    got, leaf_values = self._numpy_scalars(fn, leaf_values)
            if got is not None:
                out: tuple[tuple[Any, ...], tuple[Any, ...]] = got
                return out
        fn = self._general
        if fn is None:
            interp = self._interp
            if interp is not None and (interp.calls == 0
                                       or interp.spent < self._compile_estimate()):
                return interp.run(xp, leaf_values)
            fn = self._make_general()
        if xp is None and self.uses_xp:
            xp = self._registry.numeric
        try:
            result: tuple[tuple[Any, ...], tuple[Any, ...]] = fn(xp, leaf_values)
        except ArithmeticError:
            return self._refused(fn, xp, leaf_values)
        except Exception as exc:
            raise self._named(exc, leaf_values) from exc
        return result

    def _refused(self, fn: Callable[..., Any], xp: Any, leaf_values: Sequence[Any],
                 ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """A call whose general function met a formula Python refuses on numbers
        (g / 0.0, 1 / 0): on NumPy floats, which answer inf or nan as the interpreter
        does; else (ints, constants) through the interpreter, which answers or names."""
        if any(v.__class__ is float for v in leaf_values):
            floats = numpy_floats(leaf_values)
            try:
                result: tuple[tuple[Any, ...], tuple[Any, ...]] = fn(xp, floats)
            except ArithmeticError:
                pass
            except Exception as again:
                raise self._named(again, floats) from again
            else:
                return result
        return Interpreted(self.order, self.outputs, self.wrt).run(xp, leaf_values)

    def run_general(self, xp: Any, leaf_values: Sequence[Any],
                    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """``run`` through the general function with the rules' namespace ``xp``: how
        another backend's arrays run (its NumPy fast paths test the values' class)."""
        fn = self._general if self._general is not None else self._make_general()
        try:
            result: tuple[tuple[Any, ...], tuple[Any, ...]] = fn(xp, leaf_values)
        except Exception as exc:
            raise self._named(exc, leaf_values) from exc
        return result

    def _numpy_scalars(self, fn: Callable[..., Any], leaf_values: Sequence[Any],
                       ) -> tuple[Any, Sequence[Any]]:
        """NumPy floats in, NumPy floats out; in between, Python's arithmetic gives the
        same numbers (and where it refuses, NumPy's answer is taken)."""
        floats = [float(v) if v.__class__ is np.float64 else v for v in leaf_values]
        try:
            got = fn(floats)
        except Exception as exc:
            return None, self._scalar_failed(exc, leaf_values)
        if got is None:
            return None, leaf_values
        return (_float64s(got[0]), _float64s(got[1])), leaf_values

    def _scalar_failed(self, exc: Exception, leaf_values: Sequence[Any]) -> Sequence[Any]:
        """The leaf values for the general function after the scalar one raised: NumPy
        floats where Python refused a formula (x / 0.0) that NumPy answers (the general
        function then answers, or names the failure); any other failure is raised, named."""
        if isinstance(exc, ArithmeticError):
            return numpy_floats(leaf_values)
        named = locate(exc, self._sources, self.order)
        if named is not None:
            raise named from exc
        raise self._named(exc, leaf_values) from exc

    def _named(self, exc: Exception, leaf_values: Sequence[Any]) -> Exception:
        """``exc`` as an autodag error naming its node, op, plugin and where it was made."""
        if isinstance(exc, AutodagError):
            return exc
        named = locate(exc, self._sources, self.order)
        if named is not None:
            return named
        named = run_interpreted(self.order, self.outputs, self.wrt, leaf_values)
        return named if named is not None else unplaced(exc, "a compiled plan")
