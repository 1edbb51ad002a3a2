"""Fused elementwise kernels: chains of a graph's elementwise ops as compiled ufuncs.

``kernels`` picks the nodes whose op has a kernel form (``autodag_kernel_forms``) and
whose value and inputs are float32, float64 or bool NumPy arrays of known shape. Such a
node is written inside the expression of the node that reads it, unless it must be an
array of its own: an output, a node read by something that cannot take it inside its
expression (another op, or one of another shape), or one read by several that would
each compute it again at too high a cost. Each node that must be an array and has a
fused input is a ``Kernel``: one scalar expression that numba compiles into a ufunc of
the node's dtype (one vectorized pass, NumPy's broadcasting). ``fused_outputs``
rebuilds the graph with each kernel's node replaced by an operator running it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ..graph import Graph
from ..kernelform import KernelForm
from ..nodes import Constant, Node, Operator
from ..opdef import OpDef
from ..registry import RegisteredOp
from ..shapes import StaticShapes
from . import limits

__all__ = ["Kernel", "fused_outputs", "kernels", "rebuilt"]

_DTYPES: Final = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.bool_))
#: Compiled ufuncs by (expression, signature): programs and signatures share them.
_COMPILED: dict[tuple[str, str], Any] = {}
_LOCK: Final = threading.Lock()


def _token(k: int) -> str:
    return f"\x00{k}\x00"


@dataclass(frozen=True)
class _Local:
    """A fusable node's own expression, with tokens for its non-constant inputs."""

    text: str
    constants: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Kernel:
    """One fused expression and the node whose value it computes."""

    root: Operator
    expr: str
    #: The nodes whose values are the expression's variables, named ``names``.
    inputs: tuple[Node, ...]
    names: tuple[str, ...]
    #: The inputs' static shapes and dtypes.
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype[Any], ...]
    #: Constant arrays the expression reads: (name, value).
    constants: tuple[tuple[str, Any], ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    ops: int


class _Namer:
    """Names of the variables and constants of the expressions, unique in the graph."""

    def __init__(self) -> None:
        self.variables: dict[Node, str] = {}
        self.count = 0

    def variable(self, node: Node) -> str:
        name = self.variables.get(node)
        if name is None:
            name = self.variables[node] = f"v{len(self.variables)}"
        return name

    def constant(self) -> str:
        self.count += 1
        return f"c{self.count}"


def _plain_array(info: Any) -> bool:
    """Whether a static (shape, dtype, scalar, backend) is a NumPy array a kernel takes."""
    return info is not None and info[3] is None and not info[2] and info[1] in _DTYPES


def _operand_dtype(node: Operator, shapes: StaticShapes) -> np.dtype[Any]:
    """The dtype NumPy gives a Python number meeting ``node``'s array inputs."""
    dts = [shapes.dtype(i) for i in node.inputs if not isinstance(i, Constant)]
    dts += [np.asarray(i.value).dtype for i in node.inputs
            if isinstance(i, Constant) and i.value.__class__ not in (int, float)]
    found = np.result_type(*[d for d in dts if d is not None]) if dts else None
    return found if found is not None and found.kind == "f" else np.dtype(np.float64)


def _local(node: Operator, shapes: StaticShapes, form: KernelForm,
           namer: _Namer) -> _Local | None:
    """``node``'s own expression, or None when it cannot be fused."""
    info = shapes.info(node)
    if not _plain_array(info):
        return None
    assert info is not None
    operand = _operand_dtype(node, shapes)
    args: list[str] = []
    consts: list[tuple[str, Any]] = []
    for k, i in enumerate(node.inputs):
        if isinstance(i, Constant):
            v = i.value
            if v.__class__ in (int, float):
                # Typed as NumPy types a Python number: float32 stays float32.
                args.append(f"{operand.name}({float(v)!r})")
                continue
            if v.__class__ is not np.ndarray or v.dtype not in _DTYPES:
                return None
            name = namer.constant()
            consts.append((name, v))
            args.append(name)
            continue
        if not _plain_array(shapes.info(i)):
            return None
        args.append(_token(k))
    try:
        text = form.render(args, node.attrs)
    except Exception:  # a form that cannot write this node: the node runs unfused
        return None
    return None if text is None else _Local(text, tuple(consts))


def _reads(own: _Local, reader: Operator, node: Node) -> bool:
    """Whether ``reader``'s expression uses the value of its input ``node``."""
    return any(i is node and _token(k) in own.text for k, i in enumerate(reader.inputs))


def kernels(order: Sequence[Node], outputs: Sequence[Node], shapes: StaticShapes,
            forms: Mapping[str, KernelForm]) -> list[Kernel]:
    """The kernels to fuse ``order`` (sorted nodes for ``outputs``) into."""
    namer = _Namer()
    local: dict[Node, _Local] = {}
    readers: dict[Node, list[Operator]] = {}
    for n in order:
        if isinstance(n, Operator):
            for i in n.inputs:
                readers.setdefault(i, []).append(n)
            form = forms.get(n.op.name)
            if form is not None:
                got = _local(n, shapes, form, namer)
                if got is not None:
                    local[n] = got

    def takes(reader: Operator, node: Node) -> bool:
        """Whether ``reader`` can compute ``node`` inside its own expression."""
        return (reader in local and node in local
                and shapes.shape(reader) == shapes.shape(node))

    ends = set(outputs)
    array: set[Node] = set()  # fusable nodes that must be arrays of their own
    size: dict[Node, int] = {}

    def inline(n: Operator, i: Node) -> bool:
        """Whether ``n``'s expression computes its input ``i`` rather than reading it."""
        return i in local and i not in array and takes(n, i)

    def inlined(n: Operator) -> list[Node]:
        """The inputs ``n`` computes inside its expression, once per use."""
        text = local[n].text
        return [i for k, i in enumerate(n.inputs) for _ in range(text.count(_token(k)))
                if inline(n, i)]

    for n in order:
        if n not in local:
            continue
        assert isinstance(n, Operator)
        size[n] = 1 + sum(size[i] for i in inlined(n))
        if size[n] > limits.FUSE_MAX_OPS:
            array.update(inlined(n))
            size[n] = 1
        # Readers whose expression never reads n's value (broadcast_like's ``like``).
        rs = [r for r in readers.get(n, []) if r not in local or _reads(local[r], r, n)]
        if (n in ends or not rs or not all(takes(r, n) for r in rs)
                or (len(rs) > 1 and size[n] > limits.FUSE_RECOMPUTE_OPS)):
            array.add(n)

    found: list[Kernel] = []
    for n in order:
        if n in array and size[n] > 1:
            assert isinstance(n, Operator)
            k = _kernel(n, local, inline, namer, shapes)
            if k is not None:
                found.append(k)
    return found


def _kernel(root: Operator, local: Mapping[Node, _Local],
            inline: Callable[[Operator, Node], bool], namer: _Namer,
            shapes: StaticShapes) -> Kernel | None:
    """The kernel computing ``root``, or None when it reads too many arrays."""
    inputs: dict[Node, str] = {}
    consts: dict[str, Any] = {}
    memo: dict[Node, tuple[str, int]] = {}

    def text(n: Operator) -> tuple[str, int]:
        if n in memo:
            return memo[n]
        own = local[n]
        t, ops = own.text, 1
        consts.update(own.constants)
        for k, i in enumerate(n.inputs):
            tok = _token(k)
            if tok not in t:
                continue
            if inline(n, i):
                assert isinstance(i, Operator)
                sub, more = text(i)
                ops += t.count(tok) * more
            else:
                sub = inputs.setdefault(i, namer.variable(i))
            t = t.replace(tok, sub)
        memo[n] = (t, ops)
        return memo[n]

    expr, ops = text(root)
    if len(inputs) + len(consts) > limits.FUSE_MAX_ARGS:
        return None
    ins = tuple(inputs)
    got = [shapes.info(i) for i in ins]
    info = shapes.info(root)
    if info is None or any(g is None for g in got):
        return None
    return Kernel(root, expr, ins, tuple(inputs.values()),
                  tuple(g[0] for g in got if g is not None),
                  tuple(g[1] for g in got if g is not None), tuple(consts.items()),
                  info[0], info[1], ops)


def _ufunc(kernel: Kernel) -> Any:
    """The kernel's expression compiled by numba into a ufunc of its dtypes (once per
    expression and signature in a process)."""
    names = (*kernel.names, *(name for name, _ in kernel.constants))
    types = (*kernel.dtypes, *(np.asarray(v).dtype for _, v in kernel.constants))
    sig = f"{kernel.dtype.name}({', '.join(t.name for t in types)})"
    key = (kernel.expr, sig)
    with _LOCK:
        found = _COMPILED.get(key)
        if found is None:
            import math

            import numba

            source = f"def kernel({', '.join(names)}):\n    return {kernel.expr}\n"
            ns: dict[str, Any] = {"math": math, "float32": np.float32,
                                  "float64": np.float64}
            exec(compile(source, "<autodag-kernel>", "exec"), ns)
            vectorize: Any = numba.vectorize
            found = vectorize([sig], nopython=True)(ns["kernel"])
            _COMPILED[key] = found
    return found


def _runner(kernel: Kernel) -> Callable[..., Any]:
    """The kernel's forward rule: its ufunc on the inputs and constants."""
    # numba's DUFunc wraps a NumPy ufunc in a Python-level call (half a microsecond);
    # the plan's inputs always have the kernel's dtypes, so the ufunc itself serves.
    compiled = _ufunc(kernel)
    ufunc = getattr(compiled, "ufunc", compiled)
    consts = tuple(v for _, v in kernel.constants)
    shape = kernel.shape

    def forward(*args: Any) -> Any:
        out = ufunc(*args, *consts)
        if out.__class__ is not np.ndarray or out.shape != shape:
            out = np.array(np.broadcast_to(out, shape))  # broadcast operands only
        return out

    return forward


def _checked(kernel: Kernel) -> Callable[..., Any] | None:
    """The kernel's forward rule when numba compiles it and it gives the root's dtype
    on small inputs of its inputs' dtypes, else None."""
    try:
        forward = _runner(kernel)
        args = [np.ones((1,) * len(s), dtype=dt)
                for s, dt in zip(kernel.shapes, kernel.dtypes, strict=True)]
        out = forward(*args)
    except Exception:  # numba refuses the expression: the nodes run unfused
        return None
    return forward if np.asarray(out).dtype == kernel.dtype else None


def fused_outputs(order: Sequence[Node], outputs: Sequence[Node], found: Sequence[Kernel],
                  graph: Graph) -> tuple[tuple[Node, ...], list[Kernel]]:
    """``outputs`` with each kernel's node replaced by an operator of ``graph`` running
    it, and the kernels used (those numba compiles)."""
    by_root: dict[Node, tuple[Kernel, Callable[..., Any]]] = {}
    for k in found:
        forward = _checked(k)
        if forward is not None:
            by_root[k.root] = (k, forward)
    new: dict[Node, Node] = {}
    for n in order:
        if not isinstance(n, Operator):
            new[n] = n
            continue
        if n in by_root:
            k, forward = by_root[n]
            op = OpDef(name="fused_kernel", arity=len(k.inputs), forward=forward,
                       backward=None, prefix=f"fused_{n.op.prefix or n.op.name}",
                       doc=f"fused: {k.expr}")
            ins = tuple(new[i] for i in k.inputs)
            made = Operator(RegisteredOp(op, n.plugin), ins, {}, name=n.name, graph=graph)
            made.site = n.site
            new[n] = made
        else:
            ins = tuple(new[i] for i in n.inputs)
            new[n] = n if ins == n.inputs else rebuilt(n, ins, graph)
    return tuple(new[o] for o in outputs), [k for k, _ in by_root.values()]


def rebuilt(node: Operator, inputs: tuple[Node, ...], graph: Graph) -> Operator:
    """``node``'s op, attributes, name and creation site over other inputs, in ``graph``."""
    made = Operator(RegisteredOp(node.op, node.plugin), inputs, node.attrs, name=node.name,
                    graph=graph)
    made.site = node.site
    return made
