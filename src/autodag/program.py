"""Execution plans: a graph's passes worked out once, as straight-line Python.

A plan turns the nodes a set of outputs depends on into the source of one function:
one line per forward op and one short block per backward rule, with every value in a
numbered local (``v3``), every gradient in another (``g3``). Topological order, which
values the backward rules read, where gradients must be summed down to an input's
shape and when each value can be dropped are all decided here, once; a call only runs
the arithmetic. Built-in arithmetic is written as the Python expression itself, so a
graph of Python floats runs at the speed of Python arithmetic.

A graph made only of built-in arithmetic also gets a terse scalar function (one line
per op and per gradient contribution, no shape checks, nothing freed) that runs every
call on Python numbers; the general function is then generated only when a call brings
arrays or leaves Python numbers. Compiling the scalar function is several times faster,
which is what large scalar graphs pay for.

Only integer slot numbers and names made here go into the source; op callables,
attributes, constants and nodes reach it through the namespace it is executed in.
"""

from __future__ import annotations

import dis
import inspect
import itertools
import re
import threading
import types
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from . import builtin
from ._arrays import grad_dtype, sum_to
from .errors import AutodagError, GradientError, OpExecutionError
from .execute import forward_error
from .nodes import Constant, Node, Operator

__all__ = ["Plan"]

_PY_REAL: Final = (int, float)
_plan_ids = itertools.count()


def _vjp_templates() -> dict[Callable[..., Any], tuple[str, ...]]:
    """Backward rules of the built-in plugin that a plan writes out as expressions.

    Each template names what it reads: ``{g}``, ``{0}``, ``{1}``; the rules are found by
    identity, so an op overriding a built-in keeps its own rule.
    """
    ops = {op.name: op for op in builtin.autodag_register_ops()}
    table: dict[Callable[..., Any], tuple[str, ...]] = {}

    def put(name: str, *templates: str) -> None:
        rules = ops[name].vjps
        assert rules is not None
        for rule, template in zip(rules, templates, strict=True):
            if rule is not None:
                table[rule] = (template,)

    put("add", "{g}", "{g}")
    put("subtract", "{g}", "-{g}")
    put("negate", "-{g}")
    put("multiply", "{g} * {1}", "{g} * {0}")
    # d(a/b)/db = -g*a/b**2 = -g/b * out: three operations instead of four.
    put("divide", "{g} / {1}", "-{g} / {1} * {out}")
    return table


_VJP_TEMPLATES: Final = _vjp_templates()
_DIVIDE_RULES: Final = {op.name: op for op in builtin.autodag_register_ops()}["divide"].vjps
#: The divide rules when both inputs want a gradient: g / b once for both.
_DIVIDE_PAIR: Final = ("(_q := {g} / {1})", "-_q * {out}")
#: The same for the general function, after a line ``_q = g / b`` (it may be cut into
#: chunks, which pass on only names bound by plain assignments).
_DIVIDE_PAIR_GENERAL: Final = ("_q", "-_q * {out}")
#: The power rules call ``xp.power_base_grad`` / ``xp.log_or_zero``; written out only
#: while those names resolve to the built-in ops (a plugin may override them).
_POWER = {op.name: op for op in builtin.autodag_register_ops()}["power"]
assert _POWER.vjps is not None
_POWER_TEMPLATES: Final[dict[Callable[..., Any], tuple[str, ...]]] = {
    _POWER.vjps[0]: ("{g} * _pbg({0}, {1})",),  # type: ignore[dict-item]
    _POWER.vjps[1]: ("{g} * {out} * _loz({0})",),  # type: ignore[dict-item]
}


def _templates() -> dict[Callable[..., Any], tuple[str, ...]]:
    """The rule templates valid for the current registry."""
    from .registry import get_registry

    ops = get_registry().ops
    pbg, loz = ops.get("power_base_grad"), ops.get("log_or_zero")
    if (pbg is not None and pbg.opdef.forward is builtin._power_base_grad
            and loz is not None and loz.opdef.forward is builtin._log_or_zero):
        return {**_VJP_TEMPLATES, **_POWER_TEMPLATES}
    return _VJP_TEMPLATES
#: Ops whose forward may fall back from Python scalars to NumPy scalars (1 / 0.0).
_MAY_LEAVE_PYTHON: Final = frozenset({builtin._divide, builtin._power})


def _is_divide_pair(rules: Any, want: list[bool], tpl: dict[Any, Any]) -> bool:
    """Whether these are the built-in divide rules, written out, for both inputs."""
    return (isinstance(rules, tuple) and len(rules) == 2 and _DIVIDE_RULES is not None
            and rules[0] is _DIVIDE_RULES[0] and rules[1] is _DIVIDE_RULES[1]
            and rules[0] in tpl and want[0] and want[1])


def _param_use(fn: Callable[..., Any], n_inputs: int) -> tuple[bool, list[bool]]:
    """Whether a rule ``fn(xp, g, out, *inputs)`` reads ``out`` and each input.

    Read from the bytecode: a parameter never loaded cannot be read, so the plan may
    drop that value before the backward pass. Anything unusual counts as reading all.
    """
    every = (True, [True] * n_inputs)
    if not isinstance(fn, types.FunctionType):
        return every
    code = fn.__code__
    if {"locals", "vars", "sys", "inspect"} & set(code.co_names):
        return every
    nargs = code.co_argcount
    names = code.co_varnames[:nargs]
    loaded: set[str] = set(code.co_cellvars)
    for ins in dis.get_instructions(code):
        if ins.opname.startswith(("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "DELETE_FAST")):
            val = ins.argval
            if isinstance(val, tuple):
                loaded.update(v for v in val if isinstance(v, str))
            elif isinstance(val, str):
                loaded.add(val)
    star: str | None = None
    if code.co_flags & inspect.CO_VARARGS:
        star = code.co_varnames[nargs + code.co_kwonlyargcount]
    star_used = star is not None and star in loaded

    def used(pos: int) -> bool:
        if pos < nargs:
            return names[pos] in loaded
        return star_used if star is not None else True

    return used(2), [used(3 + k) for k in range(n_inputs)]


#: A float is its own (free) shape token; ``_red`` reads it as shape ().
_TOKEN: Final = "v{i} if v{i}.__class__ is float else _shape_token(v{i})"


def numpy_floats(values: Sequence[Any]) -> list[Any]:
    """``values`` with Python floats as NumPy floats, which answer inf or nan, not raise."""
    return [np.float64(v) if v.__class__ is float else v for v in values]


def _shape_token(v: Any) -> Any:
    """What the backward pass needs of a value it no longer keeps: its shape."""
    if v.__class__ is np.ndarray:
        return v.shape
    return np.shape(v)


def _red(g: Any, like: Any, node: Operator, k: int) -> Any:
    """``g`` summed to the shape of ``like`` (a value or a shape token), for input ``k``."""
    lc = like.__class__
    shape = like if lc is tuple else like.shape if lc is np.ndarray else np.shape(like)
    gs = g.shape if g.__class__ is np.ndarray else np.shape(g)
    if gs == shape:
        return g
    try:
        return sum_to(g, shape)
    except ValueError:
        raise GradientError(
            f"backward of op {node.op.name!r} from plugin {node.plugin.describe()} returned "
            f"a gradient of shape {gs} for input {k} ({node.inputs[k].name!r}) of "
            f"shape {shape}, at {node.describe()}"
        ) from None


#: Elements from which summing gradients in place beats making a new array.
_IN_PLACE_MIN: Final = 1024


def _iadd(g: Any, t: Any) -> Any:
    """``g + t``, written into ``g`` when it is an array the plan owns and may hold it."""
    # In place only where it saves more than NumPy's slower keyword-argument call costs.
    if g.__class__ is np.ndarray and g.size >= _IN_PLACE_MIN:
        try:
            return np.add(g, t, out=g, casting="safe")
        except (TypeError, ValueError):  # a wider dtype or shape: make a new array
            pass
    return g + t


def _joint(results: Any, node: Operator) -> Sequence[Any]:
    """Check the tuple a joint backward rule returned."""
    n_in = len(node.inputs)
    if not isinstance(results, (tuple, list)) or len(results) != n_in:
        n = len(results) if isinstance(results, (tuple, list)) else "a non-sequence"
        raise GradientError(
            f"backward of op {node.op.name!r} from plugin {node.plugin.describe()} "
            f"returned {n} gradients for {n_in} inputs, at {node.describe()}"
        )
    return results


def _seed(value: Any) -> Any:
    if value.__class__ is float:
        return 1.0  # stay a Python scalar: the fast path for scalar graphs
    if isinstance(value, np.generic):  # a reduction's result: a NumPy scalar seed
        return grad_dtype(value).type(1)
    return np.ones(np.shape(value), dtype=grad_dtype(value))


def _errstate() -> Any:
    # Rules evaluate derivative formulas at points where they are infinite or undefined
    # (0 ** -0.5, log 0); the result is what NumPy says, without warnings about it.
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


#: Statements per generated function before a plan is cut into chunks.
CHUNK = 2000
_NAME: Final = re.compile(r"\b(?:[vgsot]\d+|t|_q|_fast|_R)\b")
_ASSIGN: Final = re.compile(r"^([\w, ]+?) = (.*)$")


def _split(lines: list[str]) -> list[list[str]]:
    """Cut statements into chunks, only where a new top-level statement starts."""
    chunks: list[list[str]] = []
    cur: list[str] = []
    for ln in lines:
        top = not ln.startswith(" ") and not ln.startswith(("elif", "else"))
        if top and len(cur) >= CHUNK:
            chunks.append(cur)
            cur = []
        cur.append(ln)
    if cur:
        chunks.append(cur)
    return chunks


def _upward_exposed(lines: list[str]) -> set[str]:
    """Names a chunk may read before it binds them: they come in from earlier chunks."""
    bound: set[str] = set()
    exposed: set[str] = set()
    for ln in lines:
        m = _ASSIGN.match(ln) if not ln.startswith(" ") else None
        if m is not None:
            exposed.update(n for n in _NAME.findall(m.group(2)) if n not in bound)
            bound.update(_NAME.findall(m.group(1)))
        else:
            # Conditional code: a name it binds may stay unbound, so it binds nothing.
            m2 = _ASSIGN.match(ln.strip())
            text = m2.group(2) if m2 is not None else ln
            exposed.update(n for n in _NAME.findall(text) if n not in bound)
            if m2 is not None:
                target = _NAME.findall(m2.group(1))
                exposed.update(n for n in target if n not in bound and ln.startswith(" "))
    return exposed


def _written(lines: list[str]) -> set[str]:
    out: set[str] = set()
    for ln in lines:
        m = _ASSIGN.match(ln.strip())
        if m is not None:
            out.update(_NAME.findall(m.group(1)))
    return out


class Plan:
    """The passes for ``outputs`` (and the gradient of ``outputs[0]`` for ``wrt``).

    ``order`` is the topological order; ``leaves`` are the non-constant leaf nodes whose
    values each call passes in, in that order. ``run(xp, leaf_values)`` returns the
    output values and the raw gradients (None where no gradient reached a node).
    """

    def __init__(
        self, order: Sequence[Node], outputs: Sequence[Node], wrt: Sequence[Node] | None
    ) -> None:
        self.order: tuple[Node, ...] = tuple(order)
        self.outputs = tuple(outputs)
        self.wrt = None if wrt is None else tuple(wrt)
        #: Filled in by ``grad``: where each wrt node's value comes from.
        self.wrt_sources: list[tuple[int, Any]] | None = None
        slot = {n: i for i, n in enumerate(self.order)}
        self.slot = slot
        self.leaves = tuple(
            n for n in self.order if not isinstance(n, (Operator, Constant))
        )
        self._ns: dict[str, Any] = {
            "_red": _red, "_joint": _joint, "_nd": np.ndarray, "_iadd": _iadd, "_seed": _seed,
            "_errstate": _errstate, "_shape_token": _shape_token, "_PYR": _PY_REAL,
            "_pbg": builtin._power_base_grad, "_loz": builtin._log_or_zero,
        }
        self._line_node: dict[int, int] = {}
        self._tpl = _templates()
        self._lock = threading.Lock()
        self._fn: Callable[..., Any] | None = None
        self._general_source: str | None = None
        self._filename = f"<autodag-plan-{next(_plan_ids)}>"
        #: Line -> op slot of the forward lines of the scalar function, for errors.
        self._scalar_lines: dict[int, int] = {}
        self._scalar_filename = self._filename[:-1] + "-scalar>"
        self._scalar: Callable[..., Any] | None = None
        self._scalar_source = self._generate(scalar=True)
        if self._scalar_source is not None:
            # Built-in arithmetic on Python numbers: the terse scalar function runs every
            # call that stays in Python numbers; the general one is made if ever needed.
            exec(compile(self._scalar_source, self._scalar_filename, "exec"), self._ns)
            self._scalar = self._ns["_scalar"]
            self.uses_xp = False
        else:
            self._general()
            #: Whether any rule the plan calls takes ``xp`` (built-in arithmetic does not).
            self.uses_xp = "(xp, " in self.source

    @property
    def source(self) -> str:
        """The generated Python source (the scalar function first, when there is one)."""
        general = self._general_source
        if general is None:
            self._general()
            general = self._general_source
        assert general is not None
        return general if self._scalar_source is None else self._scalar_source + general

    def _general(self) -> Callable[..., Any]:
        """The function for any values, generated and compiled on first use."""
        fn = self._fn
        if fn is not None:
            return fn
        with self._lock:
            if self._fn is None:
                src = self._generate(scalar=False)
                assert src is not None
                ns = dict(self._ns)
                exec(compile(src, self._filename, "exec"), ns)
                self._general_source = src
                self._fn = ns["_plan"]
            return self._fn

    # --- analysis ---------------------------------------------------------------------
    def _backward_nodes(self) -> tuple[set[int], dict[int, list[bool]]]:
        """Slots of the ops the backward pass visits, and which inputs each one feeds."""
        assert self.wrt is not None
        slot = self.slot
        needs = {slot[w] for w in self.wrt if w in slot}
        for i, node in enumerate(self.order):
            if isinstance(node, Operator) and any(slot[x] in needs for x in node.inputs):
                needs.add(i)
        # Only ops the differentiated output depends on receive a gradient.
        target = slot[self.outputs[0]]
        reach = {target}
        for i in range(len(self.order) - 1, -1, -1):
            node = self.order[i]
            if i in reach and isinstance(node, Operator):
                reach.update(slot[x] for x in node.inputs)
        active: set[int] = set()
        want: dict[int, list[bool]] = {}
        for i, node in enumerate(self.order):
            if not isinstance(node, Operator) or i not in reach or not node.op.differentiable:
                continue
            w = [slot[x] in needs for x in node.inputs]
            if any(w):
                active.add(i)
                want[i] = w
        return active, want

    # --- code generation --------------------------------------------------------------
    def _generate(self, scalar: bool) -> str | None:
        order, slot, ns = self.order, self.slot, self._ns
        grad_mode = self.wrt is not None
        active: set[int] = set()
        want: dict[int, list[bool]] = {}
        # Per active op: (kind, per-input rule or joint rule, templates, reads_out, reads_in)
        rules: dict[int, tuple[str, Any, list[bool], list[bool]]] = {}
        keep_bw: set[int] = set()  # values some backward rule reads
        shape_of: set[int] = set()  # values whose shape the backward pass needs
        # Only built-in arithmetic on Python numbers: a graph that can stay in Python.
        python_ops = grad_mode and all(
            type(node.value) in _PY_REAL if isinstance(node, Constant)
            else not isinstance(node, Operator) or (
                node.op.forward in builtin.INLINE_FORWARD
                or node.op.forward in _MAY_LEAVE_PYTHON)
            for node in order
        )
        if scalar:
            if not python_ops:
                return None
            # The scalar function may also write out the power rules: it checks them.
            active, want = self._backward_nodes()
            for i in active:
                vjps = order[i].op.vjps  # type: ignore[attr-defined]
                if vjps is None or any(r is not None and r not in self._tpl for r in vjps):
                    return None
            return self._scalar_code(active, want)
        if grad_mode:
            active, want = self._backward_nodes()
            for i in active:
                node = order[i]
                assert isinstance(node, Operator)
                ins = [slot[x] for x in node.inputs]
                reads_out = False
                reads_in = [False] * len(ins)
                vjps = node.op.vjps
                if vjps is not None:
                    for k, rule in enumerate(vjps):
                        if rule is None or not want[i][k]:
                            continue
                        tpl = self._tpl.get(rule)
                        if tpl is not None:
                            for j in range(len(ins)):
                                reads_in[j] |= f"{{{j}}}" in tpl[0]
                            reads_out |= "{out}" in tpl[0]
                        else:
                            o, r = _param_use(rule, len(ins))
                            reads_out |= o
                            reads_in = [a or b for a, b in zip(reads_in, r, strict=True)]
                    rules[i] = ("vjp", vjps, [reads_out], reads_in)
                else:
                    o, r = _param_use(node.op.joint_backward, len(ins))  # type: ignore[arg-type]
                    reads_out, reads_in = o, r
                    rules[i] = ("joint", node.op.joint_backward, [reads_out], reads_in)
                if reads_out:
                    keep_bw.add(i)
                for j, s in enumerate(ins):
                    if reads_in[j]:
                        keep_bw.add(s)
                    if want[i][j]:
                        shape_of.add(s)
        out_slots = {slot[o] for o in self.outputs}
        wrt_slots = {slot[w] for w in self.wrt or () if w in slot}
        shape_of -= keep_bw
        pinned = out_slots | wrt_slots
        # Last forward use of each value, to drop the ones nothing else needs.
        last_fw: dict[int, int] = {}
        for i, node in enumerate(order):
            if isinstance(node, Operator):
                for x in node.inputs:
                    last_fw[slot[x]] = i

        # Python floats in, Python arithmetic throughout: no NumPy warnings to silence,
        # so the backward pass may skip np.errstate (which costs more than a small graph).
        scalar_ok = python_ops and all(
            rules[i][0] == "vjp" and all(
                r is None or r in _VJP_TEMPLATES for r in rules[i][1])
            for i in active
        )
        fw: list[str] = []  # top-level statements, unindented
        emit = fw.append
        fw_node: dict[int, int] = {}  # statement index -> op slot, for forward errors
        if self.leaves:
            names = ", ".join(f"v{slot[x]}" for x in self.leaves)
            emit(f"{names}, = L")
        for i, node in enumerate(order):
            if isinstance(node, Constant):
                ns[f"c{i}"] = node.value
                emit(f"v{i} = c{i}")
        if scalar_ok:
            emit("_fast = " + (" and ".join(
                f"v{slot[x]}.__class__ in _PYR" for x in self.leaves) or "True"))
        elif grad_mode:
            emit("_fast = False")
        for i, node in enumerate(order):
            if not isinstance(node, Operator):
                if i in shape_of:
                    emit(f"s{i} = {_TOKEN.format(i=i)}")
                continue
            args = [f"v{slot[x]}" for x in node.inputs]
            fwd = node.op.forward
            ftpl = builtin.INLINE_FORWARD.get(fwd)
            if ftpl is not None and not node.attrs:
                expr = ftpl.format(*args)
            else:
                ns[f"f{i}"] = fwd
                call = ", ".join(args)
                if node.attrs:
                    ns[f"A{i}"] = dict(node.attrs)
                    call = f"{call}, **A{i}" if call else f"**A{i}"
                expr = f"f{i}({call})"
            fw_node[len(fw)] = i
            emit(f"v{i} = {expr}")
            if scalar_ok and fwd in _MAY_LEAVE_PYTHON:
                emit(f"if v{i}.__class__ not in _PYR: _fast = False")
            if i in shape_of:
                emit(f"s{i} = {_TOKEN.format(i=i)}")
            for x in dict.fromkeys(node.inputs):
                s = slot[x]
                if last_fw.get(s) == i and s not in keep_bw and s not in pinned:
                    emit(f"v{s} = None")
        outs = ", ".join(f"v{slot[o]}" for o in self.outputs)
        if not grad_mode:
            emit(f"_R = ({outs},), ()")
            return self._assemble(fw, [], fw_node)
        bw = self._backward_source(active, want, rules, keep_bw, pinned, out_slots)
        return self._assemble(fw, bw, fw_node)

    def _assemble(self, fw: list[str], bw: list[str], fw_node: dict[int, int]) -> str:
        """One function for a small plan; a chain of chunk functions for a large one.

        CPython compiles one huge function in superlinear time, so a large plan is cut
        into functions of about ``CHUNK`` statements that pass live locals in a dict.
        """
        grad_mode = bool(bw)
        if len(fw) + len(bw) <= CHUNK:
            src = ["def _plan(xp, L):"]
            for k, ln in enumerate(fw):
                if k in fw_node:
                    self._line_node[len(src) + 1] = fw_node[k]
                src.append("    " + ln)
            if grad_mode:
                src += ["    if not _fast:", "        _es = _errstate()",
                        "        _es.__enter__()", "    try:"]
                src += ["        " + ln for ln in bw]
                src += ["    finally:", "        if not _fast:",
                        "            _es.__exit__(None, None, None)"]
            src.append("    return _R")
            return "\n".join(src) + "\n"
        fw_chunks = _split(fw)
        bw_chunks = _split(bw)
        chunks = fw_chunks + bw_chunks
        exposed = [_upward_exposed(c) for c in chunks]
        parts: list[str] = []
        base = 0
        for c, body in enumerate(chunks):
            later: set[str] = set().union(*exposed[c + 1:]) if c + 1 < len(chunks) else set()
            loads = sorted(exposed[c])
            written = _written(body)
            stores = sorted((written & later) | ({"_R", "_fast"} & written))
            parts.append(f"def _c{c}(xp, L, F):")
            parts += [f"    {n} = F[{n!r}]" for n in loads]
            for k, ln in enumerate(body):
                if c < len(fw_chunks) and base + k in fw_node:
                    self._line_node[len(parts) + 1] = fw_node[base + k]
                parts.append("    " + ln)
            parts += [f"    F[{n!r}] = {n}" for n in stores]
            if c < len(fw_chunks):
                base += len(body)
        parts += ["def _plan(xp, L):", "    F = {}"]
        parts += [f"    _c{c}(xp, L, F)" for c in range(len(fw_chunks))]
        if grad_mode:
            parts += ["    _fast = F['_fast']", "    if not _fast:",
                      "        _es = _errstate()", "        _es.__enter__()", "    try:"]
            parts += [f"        _c{c}(xp, L, F)" for c in range(len(fw_chunks), len(chunks))]
            parts += ["    finally:", "        if not _fast:",
                      "            _es.__exit__(None, None, None)"]
        parts.append("    return F['_R']")
        return "\n".join(parts) + "\n"

    def _backward_source(
        self,
        active: set[int],
        want: dict[int, list[bool]],
        rules: dict[int, tuple[str, Any, list[bool], list[bool]]],
        keep_bw: set[int],
        pinned: set[int],
        out_slots: set[int],
    ) -> list[str]:
        order, slot, ns = self.order, self.slot, self._ns
        assert self.wrt is not None
        target = slot[self.outputs[0]]
        # Contributions, in the order the reversed pass makes them: (from op, input k, to).
        contribs: dict[int, list[tuple[int, int]]] = {}
        visit: list[int] = []  # active ops some rule sends a gradient, latest first
        for i in sorted(active, reverse=True):
            if i != target and i not in contribs:
                continue
            visit.append(i)
            node = order[i]
            assert isinstance(node, Operator)
            kind, rule, _, _ = rules[i]
            for k, x in enumerate(node.inputs):
                if not want[i][k] or (kind == "vjp" and rule[k] is None):
                    continue
                contribs.setdefault(slot[x], []).append((i, k))
        # A gradient is certain (never None at run time) when some contribution to it
        # comes from a certain gradient through a rule that cannot return None.
        certain = {target}
        sure_rule: dict[tuple[int, int], bool] = {}
        for i in visit:
            node = order[i]
            assert isinstance(node, Operator)
            kind, rule, _, _ = rules[i]
            for k, x in enumerate(node.inputs):
                if not want[i][k] or (kind == "vjp" and rule[k] is None):
                    continue
                sure = kind == "vjp" and rule[k] in self._tpl and i in certain
                sure_rule[(i, k)] = sure
                if sure:
                    certain.add(slot[x])
        # Last backward read of each kept value (the reversed pass reads later ops first).
        last_bw: dict[int, int] = {}
        for i in visit:
            node = order[i]
            assert isinstance(node, Operator)
            _, _, reads_out, reads_in = rules[i]
            if reads_out[0]:
                last_bw[i] = i
            for j, x in enumerate(node.inputs):
                s = slot[x]
                if reads_in[j] or (want[i][j] and s in keep_bw):
                    last_bw[s] = i
        flagged = {s for s, cs in contribs.items()
                   if len(cs) >= 3 and not all(sure_rule[c] for c in cs)}
        out: list[str] = []
        emit = out.append
        emit(f"g{target} = _seed(v{target}) if v{target}.__class__ is not float else 1.0")
        wrt_slots = {slot[w] for w in self.wrt if w in slot}
        for s in sorted(set(contribs) | wrt_slots):
            if s == target:
                continue
            first = contribs.get(s)
            if not first or not sure_rule[first[0]]:
                emit(f"g{s} = None")
            if s in flagged:
                emit(f"o{s} = False")
        done: dict[int, int] = {}  # contributions made so far to each slot
        all_sure: dict[int, bool] = {}  # whether every contribution so far was certain
        for i in visit:
            node = order[i]
            assert isinstance(node, Operator)
            kind, rule, reads_out, reads_in = rules[i]
            ins = [slot[x] for x in node.inputs]
            pad = ""
            if i not in certain:
                emit(f"if g{i} is not None:")
                pad = "    "
            ns[f"N{i}"] = node
            out_arg = f"v{i}" if reads_out[0] else "None"
            in_args = [f"v{s}" if reads_in[j] else "None" for j, s in enumerate(ins)]
            kw = ""
            if node.attrs:
                ns[f"A{i}"] = dict(node.attrs)
                kw = f", **A{i}"
            pair = _is_divide_pair(rule, want[i], self._tpl)
            if pair:
                emit(f"{pad}_q = g{i} / v{ins[1]}")
            if kind == "joint":
                ns[f"b{i}"] = rule
                emit(f"{pad}t = _joint(b{i}(xp, g{i}, {out_arg}, {', '.join(in_args)}{kw}), "
                     f"N{i})")
            for k, s in enumerate(ins):
                if not want[i][k]:
                    continue
                if kind == "joint":
                    expr = f"t[{k}]"
                else:
                    r = rule[k]
                    if r is None:
                        continue
                    tpl = self._tpl.get(r)
                    if tpl is not None:
                        text = _DIVIDE_PAIR_GENERAL[k] if pair else tpl[0]
                        expr = text.format(f"v{ins[0]}", f"v{ins[-1]}", g=f"g{i}",
                                           out=f"v{i}")
                    else:
                        ns[f"r{i}_{k}"] = r
                        expr = f"r{i}_{k}(xp, g{i}, {out_arg}, {', '.join(in_args)}{kw})"
                like = f"v{s}" if s in keep_bw or s in pinned else f"s{s}"
                sure = sure_rule[(i, k)]
                emit(f"{pad}t{k} = {expr}")
                p2 = pad
                if not sure:
                    emit(f"{pad}if t{k} is not None:")
                    p2 = pad + "    "
                # Nothing to sum for two floats or an array already of the right shape.
                same = (f"t{k}.__class__ is _nd is {like}.__class__ and t{k}.shape == {like}.shape"
                        if like[0] == "v" else f"t{k}.__class__ is _nd and t{k}.shape == {like}")
                emit(f"{p2}if (t{k}.__class__ is not float or {like}.__class__ is not float) "
                     f"and not ({same}):")
                emit(f"{p2}    t{k} = _red(t{k}, {like}, N{i}, {k})")
                c = done.get(s, 0)
                done[s] = c + 1
                prev_all_sure = all_sure.get(s, True)
                all_sure[s] = prev_all_sure and sure
                if c == 0 and sure:
                    emit(f"{p2}g{s} = t{k}")
                elif s in flagged:
                    emit(f"{p2}if g{s} is None:")
                    emit(f"{p2}    g{s} = t{k}")
                    emit(f"{p2}elif o{s}:")
                    emit(f"{p2}    g{s} = _iadd(g{s}, t{k})")
                    emit(f"{p2}else:")
                    emit(f"{p2}    g{s} = g{s} + t{k}")
                    emit(f"{p2}    o{s} = True")
                elif c == 0 or not prev_all_sure:
                    emit(f"{p2}g{s} = t{k} if g{s} is None else g{s} + t{k}")
                elif c == 1:
                    emit(f"{p2}g{s} = g{s} + t{k}")
                else:
                    # Owned: made by the '+' of the second contribution, seen by no one.
                    emit(f"{p2}g{s} = g{s} + t{k} if g{s}.__class__ is float "
                         f"else _iadd(g{s}, t{k})")
            if kind == "joint":
                emit(f"{pad}t = None")
            if pair:
                emit(f"{pad}_q = None")
            # Drop what no later rule reads.
            if i not in pinned:
                emit(f"g{i} = None")
            for s in dict.fromkeys([i, *ins]):
                if last_bw.get(s) == i and s not in pinned:
                    emit(f"v{s} = None")
        outs = ", ".join(f"v{s}" for s in (slot[o] for o in self.outputs))
        grads = ", ".join(
            (f"g{slot[w]}" if slot[w] in contribs or slot[w] == target else "None")
            if w in slot else "None"
            for w in self.wrt
        )
        emit(f"_R = ({outs},), ({grads}{',' if grads else ''})")
        return out

    # --- running ----------------------------------------------------------------------
    def run(self, xp: Any, leaf_values: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Output values and raw gradients for these leaf values (in ``leaves`` order)."""
        result: tuple[tuple[Any, ...], tuple[Any, ...]] | None
        if self._scalar is not None:
            try:
                result = self._scalar(leaf_values)
            except Exception as exc:
                err: Exception | None = self._locate(exc)
                if err is not None:
                    raise err from exc
                if not isinstance(exc, ArithmeticError):
                    err = self._named(xp, leaf_values, exc)
                    if err is not None:
                        raise err from exc
                    raise
                # A formula Python refuses (x / 0.0 after an underflow): NumPy's answer.
                leaf_values = numpy_floats(leaf_values)
                result = None
            if result is not None:
                return result
        fn = self._fn or self._general()
        try:
            result = fn(xp, leaf_values)
        except Exception as exc:
            err = self._locate(exc) or self._named(xp, leaf_values, exc)
            if err is None:
                raise
            raise err from exc
        assert result is not None
        return result

    def _named(self, xp: Any, leaf_values: Sequence[Any], exc: Exception) -> Exception | None:
        """A failure the generated code cannot place (in a backward rule), named by
        running the same values through the interpreter, which knows its node."""
        if isinstance(exc, AutodagError):
            return None
        from .execute import Interpreted

        try:
            Interpreted(self.order, self.outputs, self.wrt).run(xp, leaf_values)
        except AutodagError as named:
            return named
        except Exception:
            return None
        return None

    def _locate(self, exc: Exception) -> OpExecutionError | None:
        """The named error for an exception a forward rule raised inside the plan."""
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            name = frame.f_code.co_filename
            if name == self._filename or name == self._scalar_filename:
                lines = self._line_node if name == self._filename else self._scalar_lines
                i = lines.get(tb.tb_lineno)
                if i is None:
                    return None
                node = self.order[i]
                assert isinstance(node, Operator)
                local = frame.f_locals
                args = [x.value if isinstance(x, Constant) else local.get(f"v{self.slot[x]}")
                        for x in node.inputs]
                return forward_error(node, args, exc)
            tb = tb.tb_next
        return None

    def _scalar_code(self, active: set[int], want: dict[int, list[bool]]) -> str:
        """``_scalar(L)``: both passes for Python numbers, one line per op and per
        gradient contribution; returns None as soon as a value leaves Python numbers.

        Every rule is a built-in template and every value a scalar, so no gradient is
        ever None, needs summing to a shape or warns; nothing is freed (scalars are
        small). Values that left Python (``1 / 0.0`` gives a NumPy inf) go to the general
        function, which runs under ``np.errstate``.
        """
        order, slot, ns = self.order, self.slot, self._ns
        assert self.wrt is not None
        src = ["def _scalar(L):"]
        emit = src.append
        if self.leaves:
            names = [f"v{slot[x]}" for x in self.leaves]
            emit(f"    {', '.join(names)}, = L")
            emit("    if " + " or ".join(f"{n}.__class__ not in _PYR" for n in names)
                 + ": return None")
        # Constants are read from the namespace where they are used: no lines for them.
        val = [f"v{i}" for i in range(len(order))]
        for i, node in enumerate(order):
            if isinstance(node, Constant):
                ns[f"c{i}"] = node.value
                val[i] = f"c{i}"
        for i, node in enumerate(order):
            if not isinstance(node, Operator):
                continue
            args = [val[slot[x]] for x in node.inputs]
            fwd = node.op.forward
            ftpl = builtin.INLINE_FORWARD.get(fwd)
            if ftpl is not None and not node.attrs:
                expr = ftpl.format(*args)
            else:
                ns[f"f{i}"] = fwd
                call = ", ".join(args)
                if node.attrs:
                    ns[f"A{i}"] = dict(node.attrs)
                    call = f"{call}, **A{i}" if call else f"**A{i}"
                expr = f"f{i}({call})"
            self._scalar_lines[len(src) + 1] = i
            emit(f"    v{i} = {expr}")
        # A NumPy scalar (from 1 / 0.0, say) stays one through every op that uses it, and
        # every op is used by some output: checking the outputs checks every value.
        emit("    if " + " or ".join(f"{val[slot[o]]}.__class__ not in _PYR"
                                    for o in self.outputs) + ": return None")
        target = slot[self.outputs[0]]
        emit(f"    g{target} = 1.0")
        # The name holding each gradient: a pass-through rule ({g}) makes no copy, it
        # names its op's gradient, until a second contribution needs a sum of its own.
        name = {target: f"g{target}"}
        for i in sorted(active, reverse=True):
            gi = name.get(i)
            if gi is None:
                continue
            node = order[i]
            assert isinstance(node, Operator)
            ins = [slot[x] for x in node.inputs]
            vjps = node.op.vjps
            assert vjps is not None
            pair = _is_divide_pair(vjps, want[i], self._tpl)
            for k, s in enumerate(ins):
                r = vjps[k]
                if not want[i][k] or r is None:
                    continue
                tpl = _DIVIDE_PAIR[k] if pair else self._tpl[r][0]
                expr = tpl.format(val[ins[0]], val[ins[-1]], g=gi, out=f"v{i}")
                prev = name.get(s)
                if prev is None and tpl == "{g}":
                    name[s] = gi
                    continue
                if prev is None:
                    emit(f"    g{s} = {expr}")
                elif prev == f"g{s}":
                    emit(f"    g{s} += {expr}")
                else:
                    emit(f"    g{s} = {prev} + {expr}")
                name[s] = f"g{s}"
                if r in _POWER_TEMPLATES:  # these helpers may answer in NumPy
                    emit(f"    if g{s}.__class__ is not float: return None")
        outs = ", ".join(val[slot[o]] for o in self.outputs)
        grads = ", ".join(name.get(slot[w], "None") if w in slot else "None" for w in self.wrt)
        emit(f"    return ({outs},), ({grads}{',' if grads else ''})")
        return "\n".join(src) + "\n"


def plan_size(plan: Plan) -> int:
    """Lines of generated source (for diagnostics)."""
    return plan.source.count("\n")

