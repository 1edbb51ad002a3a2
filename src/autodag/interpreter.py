"""The interpreter: forward and backward passes as loops over the sorted nodes.

Cheap to set up (nothing to generate), so every new request starts here; the compiler
takes over once a request repeats. Values and gradients live in the passes' locals,
never on nodes, so two threads can run one graph at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._arrays import quiet_numpy
from .errors import AutodagError, GradientError, OpExecutionError, ShapeMismatchError
from .nodes import Constant, Node, Operator
from .registry import get_registry
from .runtime import check_joint, numpy_floats, seed, shaped_like
from .traversal import depends_on

__all__ = ["Interpreted", "PlanBase", "backward_error", "forward_error", "missing_feed"]

Values = dict[Node, Any]
#: Looks at each value a forward rule made: ``(node, its input values, the value)``.
ValueCheck = Callable[[Operator, list[Any], Any], None]
#: Looks at each gradient contribution: ``(node, input index, contribution, incoming
#: gradient, input values)``.
GradCheck = Callable[[Operator, int, Any, Any, list[Any]], None]


def _describe_value(a: Any) -> str:
    """dtype and shape of a value, read from its attributes, never by converting it."""
    try:
        if isinstance(a, (bool, int, float, complex)):
            return f"{np.dtype(type(a)).name} shape ()"
        dt = getattr(getattr(a, "dtype", None), "name", None) or type(a).__name__
        return f"{dt} shape {tuple(getattr(a, 'shape', ()))}"
    except Exception:  # formatting an error must never raise one of its own
        return f"{type(a).__name__} (undescribable)"


def _numeric(a: Any) -> bool:
    if isinstance(a, (bool, int, float, complex)):
        return True
    kind = getattr(getattr(a, "dtype", None), "kind", None)
    return isinstance(kind, str) and kind in "biufc"


def forward_error(node: Operator, args: Sequence[Any], exc: Exception) -> OpExecutionError:
    """The error for a forward rule that raised: op, node, plugin, site, input shapes."""
    ins = ", ".join(f"{i.name!r} {_describe_value(a)}"
                    for i, a in zip(node.inputs, args, strict=False))
    attrs = f" with {dict(node.attrs)}" if node.attrs else ""
    msg = f"op {node.op.name!r} failed at {node.describe()}{attrs}; inputs: {ins}: {exc}"
    for i, a in zip(node.inputs, args, strict=False):
        if not _numeric(a) and isinstance(i, Operator):
            # The op that made the bad value is at fault, not the one that choked on it.
            msg += (f". Input {i.name!r} is a {type(a).__name__}, not a number or array, "
                    f"returned by op {i.op.name!r} from plugin {i.plugin.describe()}")
            break
    if isinstance(exc, OpExecutionError):
        # A plugin's own, more precise class (ShapeMismatchError for a bad axis) stays.
        try:
            return type(exc)(msg)
        except Exception:  # a subclass with another constructor: fall back to the base
            pass
    cls = ShapeMismatchError if isinstance(exc, ValueError) else OpExecutionError
    return cls(msg)


def backward_error(node: Operator, g: Any, args: Sequence[Any], exc: Exception) -> GradientError:
    """The error for a backward rule that raised: op, plugin, node, site and shapes."""
    ins = ", ".join(f"{i.name!r} {_describe_value(a)}" for i, a in zip(node.inputs, args))
    return GradientError(
        f"backward rule of op {node.op.name!r} from plugin {node.plugin.describe()} failed "
        f"at {node.describe()}; incoming gradient {_describe_value(g)}, inputs: {ins}: "
        f"{type(exc).__name__}: {exc}"
    )


def missing_feed(node: Node) -> AutodagError:
    """The error for a Placeholder that got no value."""
    from .errors import MissingFeedError

    return MissingFeedError(
        f"Placeholder {node.name!r} (created at {node.where()}) needs a value: "
        f"pass feed_dict={{placeholder: value}}"
    )


def _rules_of(node: Operator, xp: Any, g: Any, out: Any, args: Sequence[Any],
              want: Sequence[bool]) -> Sequence[Any] | None:
    """What the op's backward rules give for each input (None where nothing)."""
    op, attrs = node.op, node.attrs
    vjps = op.vjps
    try:
        if vjps is not None:
            return [rule(xp, g, out, *args, **attrs) if rule is not None and want[k] else None
                    for k, rule in enumerate(vjps)]
        if op.joint_backward is not None:
            return check_joint(op.joint_backward(xp, g, out, *args, **attrs), node)
    except (AutodagError, ArithmeticError):
        raise  # already named; Python float arithmetic is retried in NumPy
    except Exception as exc:
        raise backward_error(node, g, args, exc) from exc
    return None


class PlanBase:
    """What every plan knows: the sorted nodes, outputs, wrt nodes and leaves.

    ``leaves`` are the non-constant leaf nodes whose values each call passes in, in that
    order; ``run(xp, leaf_values)`` returns the output values and the raw gradients of
    ``outputs[0]`` for ``wrt`` (None where none reached).
    """

    def __init__(
        self, order: Sequence[Node], outputs: Sequence[Node], wrt: Sequence[Node] | None
    ) -> None:
        self.order: tuple[Node, ...] = tuple(order)
        self.outputs = tuple(outputs)
        self.wrt = None if wrt is None else tuple(wrt)
        #: Filled in by ``grad``: where each wrt node's value comes from.
        self.wrt_sources: list[tuple[int, Any]] | None = None
        self.leaves = tuple(n for n in self.order if not isinstance(n, (Operator, Constant)))
        #: Whether ``run`` needs the numeric ``xp`` (a plan of written-out rules does not).
        self.uses_xp = True
        #: What runs on other array backends keep of this plan (``autodag.foreign``).
        self.foreign: dict[str, Any] = {}
        #: The Constants holding another library's arrays (found on first use).
        self.foreign_constants: tuple[tuple[str, Any], ...] | None = None

    def run(self, xp: Any, leaf_values: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Output values and raw gradients for these leaf values (in ``leaves`` order)."""
        raise NotImplementedError


#: A forward step: (slot, forward rule, input slots, attributes or None, node).
_Fwd = tuple[int, Any, tuple[int, ...], Any, Operator]
#: A backward step: (slot, input slots, which inputs want a gradient, node).
_Bwd = tuple[int, tuple[int, ...], tuple[bool, ...], Operator]


class Interpreted(PlanBase):
    """The passes for ``outputs`` as loops over the sorted nodes: nothing to generate.

    Values and gradients live in lists indexed by slot (position in ``order``), made
    per call. ``wrt=None`` plans compute values only; ``every=True`` differentiates
    into every node (``backward_pass``).
    """

    def __init__(self, order: Sequence[Node], outputs: Sequence[Node],
                 wrt: Sequence[Node] | None, every: bool = False) -> None:
        super().__init__(order, outputs, wrt)
        slot = {n: i for i, n in enumerate(self.order)}
        self._slot = slot
        self._leaf_slots = tuple(slot[n] for n in self.leaves)
        self._constants = tuple((i, n.value) for i, n in enumerate(self.order)
                                if isinstance(n, Constant))
        fwd: list[_Fwd] = []
        for i, n in enumerate(self.order):
            if isinstance(n, Operator):
                fwd.append((i, n.op.forward, tuple(slot[x] for x in n.inputs),
                            dict(n.attrs) if n.attrs else None, n))
        self._fwd = tuple(fwd)
        needs = None if every or self.wrt is None else depends_on(self.order, self.wrt)
        bwd: list[_Bwd] = []
        for i, ins, n in ((f[0], f[2], f[4]) for f in reversed(fwd)):
            want = tuple(True for _ in ins) if needs is None else tuple(x in needs
                                                                       for x in n.inputs)
            if True in want and n.op.differentiable:
                bwd.append((i, ins, want, n))
        self._bwd = tuple(bwd)
        #: Calls so far and the seconds they took, to decide when compiling pays off.
        self.calls = 0
        self.spent = 0.0
        #: Per-step checks (``debugnans.Checked`` sets them); None: the fast path.
        self.check_value: ValueCheck | None = None
        self.check_grad: GradCheck | None = None

    def forward(self, leaf_values: Sequence[Any]) -> list[Any]:
        """Every slot's value for these leaf values (in ``leaves`` order)."""
        vals: list[Any] = [None] * len(self.order)
        for s, v in zip(self._leaf_slots, leaf_values, strict=True):
            vals[s] = v
        for s, v in self._constants:
            vals[s] = v
        check = self.check_value
        for i, f, ins, attrs, node in self._fwd:
            args = [vals[j] for j in ins]
            try:
                out = f(*args) if attrs is None else f(*args, **attrs)
            except Exception as exc:
                raise forward_error(node, args, exc) from exc
            if check is not None:
                check(node, args, out)
            vals[i] = out
        return vals

    def backward(self, vals: list[Any], target: int, xp: Any = None) -> list[Any]:
        """Every slot's gradient of the value at ``target`` (None where none reached);
        ``xp`` is the rules' namespace (NumPy's by default)."""
        if xp is None:
            xp = get_registry().numeric
        grads: list[Any] = [None] * len(vals)
        grads[target] = seed(vals[target])
        check = self.check_grad
        # Rules evaluate derivative formulas at points where they are infinite or
        # undefined (0 ** -0.5, log 0): the result is what NumPy says, without warnings.
        with quiet_numpy():
            for i, ins, want, node in self._bwd:
                g = grads[i]
                if g is None:
                    continue
                args = [vals[j] for j in ins]
                for k, gk in enumerate(_rules_of(node, xp, g, vals[i], args, want) or ()):
                    if gk is None or not want[k]:
                        continue
                    gk = shaped_like(gk, args[k], node, k)
                    if check is not None:
                        check(node, k, gk, g, args)
                    j = ins[k]
                    prev = grads[j]
                    # Never in place: the same array may have been handed to two inputs.
                    grads[j] = gk if prev is None else prev + gk
        return grads

    def run(self, xp: Any, leaf_values: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Output values and raw gradients for these leaf values (in ``leaves`` order)."""
        t0 = time.perf_counter()
        vals = self.forward(leaf_values)
        grads: tuple[Any, ...] = ()
        if self.wrt is not None:
            target = self._slot[self.outputs[0]]
            try:
                gs = self.backward(vals, target, xp)
            except ArithmeticError:
                # A formula Python refuses on floats (x / 0.0 after an underflow): redo
                # it in NumPy floats, which answer inf or nan, as the compiled plan does.
                vals = self.forward(numpy_floats(leaf_values))
                gs = self.backward(vals, target, xp)
            slot = self._slot
            grads = tuple(gs[slot[w]] if w in slot else None for w in self.wrt)
        outs = tuple(vals[self._slot[o]] for o in self.outputs)
        self.calls += 1
        self.spent += time.perf_counter() - t0
        return outs, grads

