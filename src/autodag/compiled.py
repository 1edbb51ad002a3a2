"""``autodag.compile``: a graph's forward and backward passes as one reusable program."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import debugnans, fusion
from .compiler.plan import Plan
from .errors import ArgumentError, FeedError, MissingFeedError
from .foreign import foreign_namespace, run_foreign
from .nodeargs import as_nodes
from .nodes import Constant, Node, Operator, Placeholder, as_value
from .registry import get_registry
from .rewriting import enabled_rewrites, rewrite_graph
from .runtime import FROM_CONSTANT, FROM_LEAF, finish_gradients, wrt_sources
from .traversal import topological_sort

__all__ = ["Program", "compile"]

#: (shape or None for any, dtype or None for any floating dtype) of an array that
#: ``Placeholder.check_feed`` would return unchanged.
_Fast = tuple[tuple[int, ...] | None, np.dtype[Any] | None]


def _fast_check(node: Node) -> _Fast | None:
    """What an array fed to ``node`` needs for the checks to pass it unchanged."""
    if not isinstance(node, Placeholder):
        return None  # a Variable's value: as_value passes any numeric array
    ds = node.declared_shape
    if ds is not None and any(d is None for d in ds):
        return None
    shape = None if ds is None else tuple(int(d) for d in ds if d is not None)
    if node._exact:
        return (shape, node.dtype) if node.dtype.kind in "biufc" else None
    # Any floating array passes; the default dtype asks for a floating value.
    return (shape, None) if node.dtype.kind == "f" else None


def _checked_inputs(inputs: Node | Sequence[Node] | None) -> tuple[Node, ...]:
    """compile()'s inputs: distinct Placeholders or Variables."""
    nodes = tuple(as_nodes(inputs, "inputs"))
    for node in nodes:
        if isinstance(node, (Operator, Constant)):
            raise ArgumentError(
                f"input {node.name!r} is {type(node).__name__.lower()} node; inputs must "
                "be Placeholders or Variables"
            )
    if len(set(nodes)) != len(nodes):
        raise ArgumentError("compile() inputs must be distinct nodes")
    return nodes


#: How a call finds one leaf's value: input j, or (-1) the Variable's value at call
#: time; whether a Python float needs no check; what an array needs to pass unchanged.
_Pick = tuple[int, Node, bool, _Fast | None]


def _picks(leaves: Sequence[Node], inputs: Sequence[Node]) -> list[_Pick]:
    """Each leaf's ``_Pick``; a MissingFeedError for a Placeholder not among inputs."""
    position = {n: j for j, n in enumerate(inputs)}
    picks: list[_Pick] = []
    for node in leaves:
        if node in position:
            plain = not isinstance(node, Placeholder) or (
                node.dtype.kind == "f" and node.declared_shape in (None, ()))
            picks.append((position[node], node, plain, _fast_check(node)))
        elif isinstance(node, Placeholder):
            raise MissingFeedError(
                f"Placeholder {node.name!r} (created at {node.where()}) is not among "
                f"compile()'s inputs: pass inputs=[..., {node.name}]"
            )
        else:
            picks.append((-1, node, True, None))
    return picks


class Program:
    """A compiled graph: call it with the input values, get ``(values, grads)``.

    ``values`` is the output's value (a list of values when ``outputs`` was a list);
    ``grads`` is a list with the gradient of the first output (of its sum, if it is not
    a scalar) for each node of ``wrt``: a float for a Python-scalar node, else an array
    of the node's shape and floating dtype, zeros where the output does not depend on
    the node, never two aliased arrays. Variables not among the inputs are read when
    the program is called. Safe to call from several threads at once.
    """

    def __init__(
        self,
        outputs: Node | Sequence[Node],
        wrt: Node | Sequence[Node] | None = None,
        inputs: Node | Sequence[Node] | None = None,
        *,
        disable_rewrites: str | Sequence[str] | None = None,
        enable_rewrites: str | Sequence[str] | None = None,
        fuse: bool | None = None,
    ) -> None:
        outs = tuple(as_nodes(outputs, "outputs"))
        if not outs:
            raise ArgumentError("compile() needs at least one output node")
        self._single = isinstance(outputs, Node)
        self._wrt_given = wrt is not None
        self.outputs = outs
        self.wrt = tuple(as_nodes(wrt, "wrt"))
        self.inputs = _checked_inputs(inputs)
        self._rewrite_args = (disable_rewrites, enable_rewrites)
        self._fuse = fuse
        fusing = fusion.wanted(fuse)
        rules = enabled_rewrites(disable_rewrites, enable_rewrites)
        order = topological_sort(list(outs + self.wrt))
        planned, fired = rewrite_graph(outs, self.wrt, rules, order)
        #: How often each rewrite fired (``prog.source`` ends with the same).
        self.rewrites: dict[str, int] = fired
        if fired:
            order = topological_sort(list(planned + self.wrt))
        inside = set(order)
        extra = tuple(w for w in dict.fromkeys(self.wrt)
                      if isinstance(w, Operator) and w not in outs)
        self._plan = Plan(order, planned + extra, self.wrt if wrt is not None else None)
        self._pick = _picks(self._plan.leaves, self.inputs)
        self._n_out = len(outs)
        # Where each wrt node's value (for its gradient's shape and dtype) comes from.
        self._wrt_value = wrt_sources(self._plan.outputs, self._plan.leaves, inside, self.wrt)
        #: Whether Python floats for the inputs go straight to the plan's scalar function
        #: and its float gradients straight back: the inputs are the leaves, in order,
        #: none with a declared dtype or shape, and every wrt node's gradient is a float
        #: when they are floats.
        self._direct = (
            self._plan.has_scalar
            and [p[0] for p in self._pick] == list(range(len(self.inputs)))
            and all(p[2] for p in self._pick)
            and all(kind == FROM_LEAF or (kind == FROM_CONSTANT and where.__class__ is float)
                    for kind, where in self._wrt_value)
        )
        #: Calls on large NumPy arrays run fused kernels (``autodag.fusion``).
        self._fuser = fusion.Fuser(planned, self.wrt, self._plan.leaves, rules,
                                   forced=fuse is True) if (
            fusing and all(kind == FROM_LEAF for kind, _ in self._wrt_value)) else None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy as the compile() call: a loaded program is planned again (for the
        registry and backends of the process loading it), never shipped as code."""
        outputs = self.outputs[0] if self._single else list(self.outputs)
        wrt = list(self.wrt) if self._wrt_given else None
        off, on = self._rewrite_args
        return (_program, (outputs, wrt, list(self.inputs), off, on, self._fuse))

    @property
    def source(self) -> str:
        """The generated Python source of the plan (for inspection), ending with
        comments naming the fused kernels built so far and the rewrites that fired."""
        done = ", ".join(f"{k} x{n}" for k, n in sorted(self.rewrites.items())) or "none"
        fused = "off" if self._fuser is None else self._fuser.describe()
        return f"{self._plan.source.rstrip()}\n# fusion: {fused}\n# rewrites: {done}\n"

    def _check(self, node: Node, value: Any) -> Any:
        if isinstance(node, Placeholder):
            return node.check_feed(value)
        return as_value(value, f"input for Variable {node.name!r}", FeedError)

    def __call__(self, *values: Any) -> tuple[Any, list[Any]]:
        """Run the program on values for ``inputs`` (positional, in order)."""
        if len(values) != len(self.inputs):
            raise FeedError(
                f"compiled program takes {len(self.inputs)} input value(s) "
                f"({', '.join(repr(n.name) for n in self.inputs)}), got {len(values)}"
            )
        if debugnans.ACTIVE and debugnans.mode():
            leaves = self._leaves(values)
            outs, raw = debugnans.run_checked(self._plan, leaves)
            return self._pack(outs, raw, leaves)
        if self._direct:
            for v in values:
                if v.__class__ is not float:
                    break
            else:
                outs, raw = self._plan.run(None, values)
                for g in raw:
                    if g.__class__ is not float:
                        return self._pack(outs, raw, values)
                return (outs[0] if self._single else list(outs[: self._n_out])), list(raw)
        leaves = self._leaves(values)
        plan = self._plan
        ns = foreign_namespace(plan, leaves)
        if ns is not None:
            # The generated code has NumPy fast paths: another library's arrays run the
            # same plan interpreted, on their own backend.
            outs, raw = run_foreign(plan, ns, leaves)
        else:
            xp = get_registry().numeric if plan.uses_xp else None
            fuser = self._fuser
            got = None if fuser is None else fuser.run(leaves, plan, xp)
            outs, raw = got if got is not None else plan.run(xp, leaves)
        return self._pack(outs, raw, leaves)

    def _leaves(self, values: Sequence[Any]) -> list[Any]:
        """Each leaf's value: the inputs checked (unless they pass unchanged), Variables'
        current values."""
        leaves: list[Any] = []
        for j, node, plain, fast in self._pick:
            if j < 0:
                leaves.append(node.value)
                continue
            v = values[j]
            # A Python float needs no checking unless a declared dtype or shape says so;
            # nor does an array of the declared shape and dtype.
            if (plain and v.__class__ is float) or (
                fast is not None and v.__class__ is np.ndarray
                and (fast[0] is None or v.shape == fast[0])
                and (v.dtype == fast[1] if fast[1] is not None else v.dtype.kind == "f")
            ):
                leaves.append(v)
            else:
                leaves.append(self._check(node, v))
        return leaves

    def _pack(self, outs: Sequence[Any], raw: Sequence[Any],
              leaves: Sequence[Any]) -> tuple[Any, list[Any]]:
        """The call's answer: the output values and each wrt node's finished gradient."""
        grads = finish_gradients(self._wrt_value, raw, outs, leaves, scalars=True)
        if self._single:
            return outs[0], grads
        return list(outs[: self._n_out]), grads


def compile(
    outputs: Node | Sequence[Node],
    wrt: Node | Sequence[Node] | None = None,
    inputs: Node | Sequence[Node] | None = None,
    *,
    disable_rewrites: str | Sequence[str] | None = None,
    enable_rewrites: str | Sequence[str] | None = None,
    fuse: bool | None = None,
) -> Program:
    """Plan the passes for ``outputs`` once; the program runs them for new input values.

    Before planning, the plugins' graph rewrites run (``autodag plugins`` lists them):
    ``disable_rewrites`` turns some off by name (``"all"``: every one; also
    ``AUTODAG_DISABLE_REWRITES``), ``enable_rewrites`` turns on opt-in ones that may
    change rounding. ``prog.rewrites`` and the end of ``prog.source`` say which fired.

    With the ``fusion`` extra (numba) installed, calls on large NumPy arrays run
    chains of elementwise ops, forward and backward, as fused compiled kernels, equal to
    the unfused results up to rounding (``autodag.fusion``): ``fuse=False`` (or
    ``AUTODAG_FUSION=0``) turns that off, ``fuse=True`` requires it.

    >>> import autodag as ad
    >>> with ad.Graph():
    ...     x, y = ad.Placeholder(name="x"), ad.Placeholder(name="y")
    ...     z = x * y + x
    >>> prog = ad.compile(z, wrt=[x, y], inputs=[x, y])
    >>> prog(3.0, 4.0)
    (15.0, [5.0, 3.0])
    """
    return Program(outputs, wrt, inputs, disable_rewrites=disable_rewrites,
                   enable_rewrites=enable_rewrites, fuse=fuse)


def _program(outputs: Any, wrt: Any, inputs: Any, disable: Any, enable: Any,
             fuse: Any = None) -> Program:
    """A Program from its pickled compile() arguments."""
    return Program(outputs, wrt, inputs, disable_rewrites=disable, enable_rewrites=enable,
                   fuse=fuse)

