"""Execution plans: a graph's passes worked out once, as straight-line Python.

A plan turns the nodes a set of outputs depends on into the source of one function:
one line per forward op and one short block per backward rule, with every value in a
numbered local (``v3``), every gradient in another (``g3``). Topological order, which
values the backward rules read, where gradients must be summed down to an input's
shape and when each value can be dropped are all decided here, once; a call only runs
the arithmetic. An op that declares an ``inline`` expression (``"{0} + {1}"``) or
``inline_vjps`` is written as those expressions rather than calls of its rules, so a
graph of Python floats runs at the speed of Python arithmetic. The engine knows no op by
name: what it writes out comes from the ops' own declarations.

A graph whose ops all declare templates (and whose active backward rules all have one)
also gets a terse scalar function (one line per op and per gradient contribution, no
shape checks, nothing freed) that runs every call on Python numbers; the general
function is then generated only when a call brings arrays or leaves Python numbers.
Compiling the scalar function is several times faster, which is what large scalar
graphs pay for; and a large scalar graph that repeats one block of ops (a graph built
by a Python loop, found by ``rolling``) gets that block written once, as a loop, rather
than line by line: CPython's compiler costs about 10 us per generated line.

Only integer slot numbers and names made here go into the source; op callables,
attributes, constants and nodes reach it through the namespace it is executed in.
"""

from __future__ import annotations

import ast
import dis
import inspect
import itertools
import re
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ._arrays import grad_dtype, quiet_enter, quiet_exit
from .errors import AutodagError, GradientError, OpExecutionError
from .execute import PlanBase, forward_error
from .execute import reduce_grad as _red
from .nodes import Constant, Node, Operator
from .opdef import OpDef
from .rolling import MIN_REPS, Loop, Ref, codes, find_loop, limit, uniform

__all__ = ["Plan"]

_PY_REAL: Final = (int, float)
_plan_ids = itertools.count()

_FIELD: Final = re.compile(r"\{(g|out|\d+)\}")
_FILLED: Final = re.compile(r"\b_t_(g|out|\d+)\b")
_Q: Final = re.compile(r"\b_q\b")
_FORMAT_FIELD: Final = re.compile(r"\{(g|out|\d+)\}")
#: The values a loop's block reads: ``b3`` of the block, ``p3`` carried into it.
_LOOP_VALUE: Final = re.compile(r"\b[bp]\d+\b")
#: Nodes from which a scalar function writes a repeated block as a loop.
ROLL_MIN_NODES = 512


@dataclass(frozen=True)
class _Tpl:
    """An op's template made ready to write out: fields as ``_t_g``, ``_t_out``, ``_t_0``...,
    and each ``xp.<name>`` bound to a name of the plan's namespace."""

    code: str
    #: The fields it reads: ``g``, ``out``, ``0``, ``1``...
    fields: frozenset[str]
    #: Operators only, no ``**``: Python numbers in, a Python number out (or an
    #: ArithmeticError), and never a NumPy warning. A call (a forward rule, an ``xp``
    #: function) may answer in NumPy, and ``**`` may answer a complex number.
    pure: bool
    #: ``code`` as a format string: ``{g}``, ``{out}``, ``{0}``...
    fmt: str

    def fill(self, args: Sequence[str], g: str = "", out: str = "") -> str:
        """The expression over these local names."""
        return self.fmt.format(*args, g=g, out=out)


def _twinned(code: str, pure: bool, vals: Sequence[str], twins: Sequence[str | None],
             g: str, out: str) -> str:
    """``code`` filled in, with an int constant as its float twin when the expression's
    one other operand is a float array at run time: NumPy computes a float array with a
    Python float about twice as fast as with a Python int, and the result is the same
    (the constant is exactly a float, and a Python scalar takes the array's dtype)."""
    fields = set(_FORMAT_FIELD.findall(code)) if pure else set()
    consts = [f for f in fields if f.isdigit() and twins[int(f)] is not None]
    if len(fields) == 2 and len(consts) == 1:
        (other,) = fields - set(consts)
        k = int(consts[0])
        o = g if other == "g" else out if other == "out" else vals[int(other)]
        vals = list(vals)
        vals[k] = f"({twins[k]} if {o}.__class__ is _nd and {o}.dtype.kind == 'f' else {vals[k]})"
    return code.format(*vals, g=g, out=out)


def _add_to(emit: Callable[[str], None], name: dict[str, str], key: str, expr: str,
            alias: bool) -> bool:
    """Add ``expr`` to the gradient ``key`` (``name`` maps each gradient to the local
    holding it so far); a first contribution that is a bare name is only named when
    ``alias``, until a second one needs a sum of its own. Whether a line was written."""
    prev = name.get(key)
    if prev is None and alias:
        name[key] = expr
        return False
    if prev is None:
        emit(f"{key} = {expr}")
    elif prev == key:
        emit(f"{key} += {expr}")
    else:
        emit(f"{key} = {prev} + {expr}")
    name[key] = key
    return True


def _fmt(code: str) -> str:
    """``code`` as a format string taking the fields (it has no braces of its own: a
    template holds no dict, set or string)."""
    return _FILLED.sub(r"{\1}", code)


@dataclass(frozen=True)
class _Written:
    """An op's backward rules as a plan writes them for the inputs that want gradients."""

    #: What two or more of the rules compute in common, as a format string, or None.
    q: str | None
    #: Per input: the rule's format string (reading ``_q`` when ``q`` is given), or None.
    codes: list[str | None]
    #: Per input: whether the rule's template is pure (``_Tpl.pure``).
    pure: list[bool]
    #: Whether every wanted rule is written out; and all of them pure.
    complete: bool
    all_pure: bool


@dataclass(frozen=True)
class _LoopCode:
    """A loop's backward body and what it needs around it."""

    body: list[str]
    #: Block positions whose gradients pass from each block to the previous one.
    carried: list[int]
    #: Gradients of nodes before the loop that every block adds to.
    fixed: list[str]
    #: The values each block keeps for its backward pass.
    saved: list[str]


class _XpBinder(ast.NodeTransformer):
    """Rewrite ``xp.<name>`` to a namespace name holding what the numeric ``xp`` gives,
    so a plan calls it without ``xp`` (the scalar function has none) or its wrapper."""

    def __init__(self, xp: Any, ops: Any, ns: dict[str, Any]) -> None:
        self.xp, self.ops, self.ns = xp, ops, ns
        self.ok = True

    def visit_Call(self, node: ast.Call) -> ast.AST:
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            reg = self.ops.get(f.attr)
            op: OpDef | None = None if reg is None else reg.opdef
            if (op is not None and op.arity == len(node.args) and not node.keywords
                    and not op.attributes):
                # What ``xp.<op>(inputs...)`` runs, without the namespace's wrapper.
                name = f"_xf_{f.attr}"
                self.ns[name] = op.forward
                node.func = ast.copy_location(ast.Name(name, ast.Load()), f)
                node.args = [self.visit(a) for a in node.args]
                return node
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        assert isinstance(node.value, ast.Name)  # check_template allows only xp.<name>
        try:
            value = getattr(self.xp, node.attr)
        except AttributeError:
            self.ok = False  # the rule itself would fail: let the plan call it
            return node
        name = f"_xp_{node.attr}"
        self.ns[name] = value
        return ast.copy_location(ast.Name(name, ast.Load()), node)


def _parse(template: str) -> ast.expr:
    code = _FIELD.sub(lambda m: f"_t_{m.group(1)}", template)
    return ast.parse(code, mode="eval").body


def _ready(template: str, xp: Any, ops: Any, ns: dict[str, Any]) -> _Tpl | None:
    """A template made ready for a plan, or None when an ``xp`` name does not resolve."""
    tree = _parse(template)
    pure = not any(isinstance(n, (ast.Call, ast.Attribute, ast.Pow)) for n in ast.walk(tree))
    binder = _XpBinder(xp, ops, ns)
    tree = binder.visit(tree)
    if not binder.ok:
        return None
    code = ast.unparse(tree)
    return _Tpl(code, frozenset(_FILLED.findall(code)), pure, _fmt(code))


def _shared(codes: Sequence[str]) -> tuple[str, list[str]] | None:
    """The largest subexpression that two or more of these expressions compute, and the
    expressions reading it as ``_q`` instead: an op's rules computed once for both."""
    trees = [ast.parse(c, mode="eval").body for c in codes]
    seen: dict[str, int] = {}
    size: dict[str, int] = {}
    for t in trees:
        for key in {ast.dump(n) for n in ast.walk(t)
                    if isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call))}:
            seen[key] = seen.get(key, 0) + 1
    for t in trees:
        for n in ast.walk(t):
            size.setdefault(ast.dump(n), sum(1 for _ in ast.walk(n)))
    common = [k for k, c in seen.items() if c >= 2]
    if not common:
        return None
    best = max(common, key=lambda k: size[k])

    class Sub(ast.NodeTransformer):
        found: ast.AST | None = None

        def visit(self, node: ast.AST) -> ast.AST:
            if isinstance(node, ast.expr) and ast.dump(node) == best:
                Sub.found = node
                return ast.copy_location(ast.Name("_q", ast.Load()), node)
            done: ast.AST = super().visit(node)
            return done

    rewritten = [ast.unparse(Sub().visit(t)) for t in trees]
    assert Sub.found is not None
    return ast.unparse(Sub.found), rewritten


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
_TOKEN: Final = ("v{i}.shape if v{i}.__class__ is _nd else "
                 "v{i} if v{i}.__class__ is float else _shape_token(v{i})")


def numpy_floats(values: Sequence[Any]) -> list[Any]:
    """``values`` with Python floats as NumPy floats, which answer inf or nan, not raise."""
    return [np.float64(v) if v.__class__ is float else v for v in values]


def _float64s(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Python floats as NumPy float64 scalars (other values as they are)."""
    return tuple(np.float64(v) if v.__class__ is float else v for v in values)


def _shape_token(v: Any) -> Any:
    """What the backward pass needs of a value it no longer keeps: its shape."""
    if v.__class__ is np.ndarray:
        return v.shape
    return np.shape(v)


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


_ONE: Final = np.float64(1.0)


def _seed(value: Any) -> Any:
    if value.__class__ is float:
        return 1.0  # stay a Python scalar: the fast path for scalar graphs
    if value.__class__ is np.float64:
        return _ONE
    if isinstance(value, np.generic):  # a reduction's result: a NumPy scalar seed
        dt = value.dtype
        return dt.type(1) if dt.kind in "fc" else np.float64(1.0)
    return np.ones(np.shape(value), dtype=grad_dtype(value))




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


class Plan(PlanBase):
    """The passes for ``outputs`` (and the gradient of ``outputs[0]`` for ``wrt``) as
    generated code."""

    def __init__(
        self, order: Sequence[Node], outputs: Sequence[Node], wrt: Sequence[Node] | None
    ) -> None:
        super().__init__(order, outputs, wrt)
        slot = {n: i for i, n in enumerate(self.order)}
        self.slot = slot
        self._ns: dict[str, Any] = {
            "_red": _red, "_joint": _joint, "_nd": np.ndarray, "_iadd": _iadd, "_seed": _seed,
            "_qenter": quiet_enter, "_qexit": quiet_exit, "_shape_token": _shape_token,
            "_PYR": _PY_REAL,
        }
        self._line_node: dict[int, int] = {}
        self._ins: list[list[int] | None] | None = None
        self._tpls: dict[OpDef, tuple[_Tpl | None, tuple[_Tpl | None, ...]]] = {}
        self._codes: dict[tuple[OpDef, tuple[bool, ...]], _Written] = {}
        self._lock = threading.Lock()
        self._fn: Callable[..., Any] | None = None
        self._general_source: str | None = None
        self._filename = f"<autodag-plan-{next(_plan_ids)}>"
        #: Line -> op slot of the forward lines of the scalar function, for errors.
        self._scalar_lines: dict[int, int] = {}
        #: Line -> block position of the forward lines of its loop, if it has one.
        self._loop_lines: dict[int, int] = {}
        self._loop: Loop | None = None
        self._scalar_filename = self._filename[:-1] + "-scalar>"
        self._scalar: Callable[..., Any] | None = None
        self._scalar_source = self._generate(scalar=True)
        if self._scalar_source is not None:
            # Templated ops on Python numbers: the terse scalar function runs every
            # call that stays in Python numbers; the general one is made if ever needed.
            exec(compile(self._scalar_source, self._scalar_filename, "exec"), self._ns)
            self._scalar = self._ns["_scalar"]
            self.uses_xp = False
        else:
            self._general()
            #: Whether any rule the plan calls takes ``xp`` (a written-out template does not).
            self.uses_xp = "(xp, " in self.source

    @property
    def has_scalar(self) -> bool:
        """Whether calls on Python numbers run a terse scalar function."""
        return self._scalar is not None

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

    # --- templates --------------------------------------------------------------------
    def _op_templates(self, op: OpDef) -> tuple[_Tpl | None, tuple[_Tpl | None, ...]]:
        """The op's forward template and per-input rule templates, made ready; ``xp``
        names resolve through the registry the plan is made under, as the rules' would."""
        got = self._tpls.get(op)
        if got is not None:
            return got
        from .registry import get_registry

        reg = get_registry()
        xp, ops, ns = reg.numeric, reg.ops, self._ns
        fwd = None
        if op.inline is not None and not op.attributes:
            fwd = _ready(op.inline, xp, ops, ns)
        vjps: tuple[_Tpl | None, ...] = ()
        if op.inline_vjps is not None:
            vjps = tuple(None if t is None else _ready(t, xp, ops, ns) for t in op.inline_vjps)
        got = self._tpls[op] = (fwd, vjps)
        return got

    def _vjp_template(self, op: OpDef, k: int) -> _Tpl | None:
        """The template written for input ``k``'s rule, if the op declares one."""
        vjps = self._op_templates(op)[1]
        return vjps[k] if k < len(vjps) else None

    def _vjp_codes(self, op: OpDef, want: Sequence[bool]) -> _Written:
        """The op's wanted rule templates as format strings, with what two or more
        compute in common hoisted into ``_q``."""
        key = (op, tuple(want))
        got = self._codes.get(key)
        if got is not None:
            return got
        vjps = self._op_templates(op)[1]
        rules = op.vjps or ()
        wanted = [k for k, r in enumerate(rules) if r is not None and k < len(want) and want[k]]
        tpls = [vjps[k] if k < len(vjps) else None for k in range(len(rules))]
        codes: list[str | None] = [
            None if t is None or k not in wanted else t.code for k, t in enumerate(tpls)]
        present = [c for c in codes if c is not None]
        sh = _shared(present) if len(present) > 1 else None
        q = None
        if sh is not None:
            it = iter(sh[1])
            codes = [None if c is None else next(it) for c in codes]
            q = _fmt(sh[0])
        complete = all(tpls[k] is not None for k in wanted)
        got = _Written(
            q, [None if c is None else _fmt(c) for c in codes],
            [t is not None and t.pure for t in tpls],
            complete, all(t is not None and t.pure for t in (tpls[k] for k in wanted)),
        )
        self._codes[key] = got
        return got

    def _declares_templates(self, node: Operator) -> bool:
        """Whether the op declares templates: it means to run on Python numbers.

        Such an op's forward rule, when called, may answer a NumPy scalar for Python
        numbers (``1 / 0.0``), but never a Python number for a NumPy scalar: the scalar
        function relies on that to check only its outputs.
        """
        return node.op.inline is not None or node.op.inline_vjps is not None

    def _twins(self, node: Operator) -> list[str | None]:
        """Per input of ``node``: the name of a float twin of an int constant, or None."""
        twins: list[str | None] = []
        for x in node.inputs:
            v = x.value if isinstance(x, Constant) else None
            if v.__class__ is int and abs(v) < 2**53:  # exactly a float
                s = self.slot[x]
                self._ns[f"cf{s}"] = float(v)
                twins.append(f"cf{s}")
            else:
                twins.append(None)
        return twins

    def _forward_expr(self, i: int, node: Operator, args: Sequence[str],
                      twins: Sequence[str | None] | None = None) -> tuple[str, bool]:
        """The expression computing op ``i``, and whether it keeps Python numbers Python.

        The rule for leaving Python numbers: an expression of operators (no ``**``) on
        Python numbers gives a Python number or raises; a forward rule or ``xp`` function
        that is called may answer with a NumPy scalar (``1 / 0.0`` as NumPy's inf), so its
        result is checked by whoever needs Python numbers.
        """
        fwd = self._op_templates(node.op)[0] if not node.attrs else None
        if fwd is not None:
            if twins is not None:
                return _twinned(fwd.fmt, fwd.pure, args, twins, "", ""), fwd.pure
            return fwd.fill(args), fwd.pure
        ns = self._ns
        ns[f"f{i}"] = node.op.forward
        call = ", ".join(args)
        if node.attrs:
            ns[f"A{i}"] = dict(node.attrs)
            call = f"{call}, **A{i}" if call else f"**A{i}"
        return f"f{i}({call})", False

    # --- analysis ---------------------------------------------------------------------
    def _input_slots(self) -> list[list[int] | None]:
        """Per node, the slots of its inputs (None for a leaf or constant)."""
        if self._ins is None:
            slot = self.slot
            self._ins = [[slot[x] for x in node.inputs] if isinstance(node, Operator)
                         else None for node in self.order]
        return self._ins

    def _backward_nodes(self) -> tuple[set[int], dict[int, list[bool]]]:
        """Slots of the ops the backward pass visits, and which inputs each one feeds."""
        assert self.wrt is not None
        slot, order = self.slot, self.order
        inputs = self._input_slots()
        needed = [False] * len(order)
        for node in self.wrt:
            if node in slot:
                needed[slot[node]] = True
        for i, ins in enumerate(inputs):
            if ins is not None and not needed[i]:
                for x in ins:
                    if needed[x]:
                        needed[i] = True
                        break
        # Only ops the differentiated output depends on receive a gradient.
        reach = [False] * len(order)
        reach[slot[self.outputs[0]]] = True
        for i in range(len(order) - 1, -1, -1):
            ins = inputs[i]
            if reach[i] and ins is not None:
                for x in ins:
                    reach[x] = True
        differentiable: dict[OpDef, bool] = {}
        active: set[int] = set()
        want: dict[int, list[bool]] = {}
        for i, ins in enumerate(inputs):
            if ins is None or not reach[i]:
                continue
            op = order[i].op  # type: ignore[attr-defined]
            d = differentiable.get(op)
            if d is None:
                d = differentiable[op] = op.differentiable
            if not d:
                continue
            w = [needed[x] for x in ins]
            if True in w:
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
        # Ops that declare templates, on Python numbers: a graph that can stay in Python.
        templated = all(
            type(node.value) in _PY_REAL if isinstance(node, Constant)
            else not isinstance(node, Operator) or self._declares_templates(node)
            for node in order
        )
        python_ops = grad_mode and templated
        if scalar:
            if not templated:
                return None
            if not grad_mode:
                return self._scalar_code(active, want)
            # Every rule the backward pass runs must be written out.
            active, want = self._backward_nodes()
            for i in active:
                node = order[i]
                assert isinstance(node, Operator)
                if node.op.vjps is None or not self._vjp_codes(node.op, want[i]).complete:
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
                        tpl = self._vjp_template(node.op, k)
                        if tpl is not None:
                            for j in range(len(ins)):
                                reads_in[j] |= str(j) in tpl.fields
                            reads_out |= "out" in tpl.fields
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
        scalar_ok = python_ops
        for i in active if python_ops else ():
            node = order[i]
            assert isinstance(node, Operator)
            if rules[i][0] != "vjp" or not self._vjp_codes(node.op, want[i]).all_pure:
                scalar_ok = False
                break
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
            expr, stays = self._forward_expr(i, node, [f"v{slot[x]}" for x in node.inputs],
                                             self._twins(node))
            fw_node[len(fw)] = i
            emit(f"v{i} = {expr}")
            if scalar_ok and not stays:
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
                src += ["    if not _fast:", "        _es = _qenter()", "    try:"]
                src += ["        " + ln for ln in bw]
                src += ["    finally:", "        if not _fast:", "            _qexit(_es)"]
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
            parts += ["    _fast = F['_fast']", "    if not _fast:", "        _es = _qenter()",
                      "    try:"]
            parts += [f"        _c{c}(xp, L, F)" for c in range(len(fw_chunks), len(chunks))]
            parts += ["    finally:", "        if not _fast:", "            _qexit(_es)"]
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
        edges: list[tuple[int, int, int]] = []  # the same, in that order: (from, k, to)
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
                edges.append((i, k, slot[x]))
        # A gradient is certain (never None at run time) when some contribution to it
        # comes from a certain gradient through a rule that cannot return None.
        certain = {target}
        sure_rule: dict[tuple[int, int], bool] = {}
        for i, k, s in edges:
            node = order[i]
            assert isinstance(node, Operator)
            sure = (rules[i][0] == "vjp" and self._vjp_template(node.op, k) is not None
                    and i in certain)
            sure_rule[(i, k)] = sure
            if sure:
                certain.add(s)
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
            vals = [f"v{s}" for s in ins]
            q, codes = None, []
            if kind == "vjp":
                w = self._vjp_codes(node.op, want[i])
                q, codes = w.q, w.codes
            twins = self._twins(node)
            if q is not None:
                # A shared part of the rules: pure when they all are.
                expr = _twinned(q, kind == "vjp" and w.all_pure, vals, twins, f"g{i}", f"v{i}")
                emit(f"{pad}_q = {expr}")
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
                    code = codes[k] if k < len(codes) else None
                    if code is not None:
                        expr = _twinned(code, w.pure[k], vals, twins, f"g{i}", f"v{i}")
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
                emit(f"{p2}if not ({same}) "
                     f"and (t{k}.__class__ is not float or {like}.__class__ is not float):")
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
            if q is not None:
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
            result, refused = self._run_scalar(xp, leaf_values)
            if result is None and not refused and any(
                    v.__class__ is np.float64 for v in leaf_values):
                # NumPy floats in, NumPy floats out; in between, Python's arithmetic gives
                # the same numbers (and where it refuses, NumPy's answer is taken).
                floats = [float(v) if v.__class__ is np.float64 else v for v in leaf_values]
                result, refused = self._run_scalar(xp, floats)
                if result is not None:
                    return _float64s(result[0]), _float64s(result[1])
            if result is not None:
                return result
            if refused:
                leaf_values = numpy_floats(leaf_values)
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

    def _run_scalar(
        self, xp: Any, leaf_values: Sequence[Any]
    ) -> tuple[tuple[tuple[Any, ...], tuple[Any, ...]] | None, bool]:
        """The scalar function's answer (None when values leave Python numbers), and
        whether Python refused a formula (x / 0.0 after an underflow) NumPy answers."""
        assert self._scalar is not None
        try:
            return self._scalar(leaf_values), False
        except Exception as exc:
            err: Exception | None = self._locate(exc)
            if err is not None:
                raise err from exc
            if not isinstance(exc, ArithmeticError):
                err = self._named(xp, leaf_values, exc)
                if err is not None:
                    raise err from exc
                raise
            return None, True

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
                local = frame.f_locals
                j = self._loop_lines.get(tb.tb_lineno) if name == self._scalar_filename \
                    else None
                if j is not None and self._loop is not None:
                    loop = self._loop
                    i = loop.start + local["_k"] * loop.period + j
                    refs = loop.refs[j]
                    assert refs is not None
                    args = [self._ref_arg(loop, r, local) for r in refs]
                else:
                    lines = self._line_node if name == self._filename else self._scalar_lines
                    found = lines.get(tb.tb_lineno)
                    if found is None:
                        return None
                    i = found
                    args = [x.value if isinstance(x, Constant) else local.get(f"v{self.slot[x]}")
                            for x in self.order[i].inputs]  # type: ignore[attr-defined]
                node = self.order[i]
                assert isinstance(node, Operator)
                return forward_error(node, args, exc)
            tb = tb.tb_next
        return None

    def _ref_arg(self, loop: Loop, ref: Ref, local: dict[str, Any]) -> Any:
        """The value an input of a loop's block had, from the frame that failed."""
        kind, x = ref
        if kind == "carry":
            return local.get(f"p{x}")
        node = self.order[loop.start + x if kind == "local" else x]
        if isinstance(node, Constant):
            return node.value
        return local.get(f"b{x}" if kind == "local" else f"v{x}")

    def _scalar_code(self, active: set[int], want: dict[int, list[bool]]) -> str:
        """``_scalar(L)``: both passes (or, without ``wrt``, the values only) for Python
        numbers, one line per op and per gradient contribution, or a loop over a block
        the graph repeats; returns None as soon as a value leaves Python numbers.

        Every rule is written out from its template and every value a scalar, so no
        gradient is ever None, needs summing to a shape or warns; nothing is freed
        (scalars are small). Values that left Python (``1 / 0.0`` gives a NumPy inf) go
        to the general function, which runs under ``np.errstate``.
        """
        loop = self._scalar_loop(active, want)
        if loop is not None:
            src = self._write_scalar(active, want, loop)
            if src is not None:
                return src
            if loop.reps > MIN_REPS:
                # The last block's gradients arrive unlike the others' (from code after
                # the loop): write that block out and try once more.
                shorter = Loop(loop.start, loop.period, loop.reps - 1, loop.refs)
                src = self._write_scalar(active, want, shorter)
                if src is not None:
                    return src
        src = self._write_scalar(active, want, None)
        assert src is not None
        return src

    def _scalar_loop(self, active: set[int], want: dict[int, list[bool]]) -> Loop | None:
        """The longest block the graph repeats and the backward pass treats alike in
        every repetition, when it is worth a loop."""
        order, slot = self.order, self.slot
        if len(order) < ROLL_MIN_NODES:
            return None
        loop = find_loop(order, slot, codes(order, self._input_slots()), ROLL_MIN_NODES)
        if loop is None:
            return None
        # What the backward pass does with each node: nothing, or which inputs it feeds.
        kinds: dict[tuple[bool, ...], int] = {}
        signature = np.zeros(len(order), np.int64)
        for i, w in want.items():
            signature[i] = kinds.setdefault(tuple(w), len(kinds) + 1)
        loop = uniform(loop, signature)
        if loop is None:
            return None
        return limit(loop, order, slot, [slot[o] for o in self.outputs],
                     [slot[w] for w in self.wrt or () if w in slot])

    def _emit_rules(self, emit: Callable[[str], None], node: Operator, want: Sequence[bool],
                    gi: str, vals: Sequence[str], out: str, keys: Sequence[str],
                    name: dict[str, str], touched: set[str]) -> None:
        """The lines adding ``node``'s gradient contributions to its inputs' gradients
        ``keys``; ``name`` maps each gradient to the local that holds it so far."""
        vjps = node.op.vjps
        assert vjps is not None
        w = self._vjp_codes(node.op, want)
        q, codes = w.q, w.codes
        for k, key in enumerate(keys):
            if not want[k] or vjps[k] is None:
                continue
            code = codes[k]
            assert code is not None
            first = _Q.search(code) if q is not None else None
            if first is not None:
                # Computed where first read (operands run left to right), not on a
                # line of its own.
                code = f"{code[:first.start()]}(_q := {q}){code[first.end():]}"
                q = None
            touched.add(key)
            # A pass-through rule ({g}) makes no copy: it names its op's gradient.
            if not _add_to(emit, name, key, code.format(*vals, g=gi, out=out),
                           alias=code == "{g}"):
                continue
            if not w.pure[k]:  # a call may answer in NumPy
                emit(f"if {key}.__class__ is not float: return None")

    def _write_scalar(self, active: set[int], want: dict[int, list[bool]],
                       loop: Loop | None) -> str | None:
        """The scalar function's source, with ``loop`` written as loops (None when the
        gradients reaching the last block do not match the loop's)."""
        order, slot, ns = self.order, self.slot, self._ns
        n = len(order)
        s, e = (loop.start, loop.end) if loop is not None else (n, n)
        src = ["def _scalar(L):"]

        def emit(line: str) -> None:
            src.append("    " + line)

        lines: dict[int, int] = {}
        loop_lines: dict[int, int] = {}
        if self.leaves:
            names = [f"v{slot[x]}" for x in self.leaves]
            emit(f"{', '.join(names)}, = L")
            emit("if " + " or ".join(f"{n}.__class__ not in _PYR" for n in names)
                 + ": return None")
        # Constants are read from the namespace where they are used: no lines for them.
        val = [f"v{i}" for i in range(n)]
        for i, node in enumerate(order):
            if isinstance(node, Constant):
                ns[f"c{i}"] = node.value
                val[i] = f"c{i}"

        def forward(i: int) -> None:
            node = order[i]
            if isinstance(node, Operator):
                expr, _ = self._forward_expr(i, node, [val[slot[x]] for x in node.inputs])
                lines[len(src) + 1] = i
                emit(f"v{i} = {expr}")

        for i in range(s):
            forward(i)
        code: _LoopCode | None = None
        if loop is not None:
            code = self._loop_backward(loop, active, want, val)
            if code is None:
                return None
            self._loop_forward(loop, src, val, code, loop_lines)
        for i in range(e, n):
            forward(i)
        # A NumPy scalar (from 1 / 0.0, say) stays one through every op that uses it:
        # operators keep it, and an op declaring templates promises its forward does too
        # (``_declares_templates``). Every op is used by some output, so checking the
        # outputs checks every value, at no cost per op.
        emit("if " + " or ".join(f"{val[slot[o]]}.__class__ not in _PYR"
                                for o in self.outputs) + ": return None")
        outs = ", ".join(val[slot[o]] for o in self.outputs)
        if self.wrt is None:  # values only
            emit(f"return ({outs},), ()")
            self._scalar_lines, self._loop_lines, self._loop = lines, loop_lines, loop
            return "\n".join(src) + "\n"
        target = slot[self.outputs[0]]
        emit(f"g{target} = 1.0")
        name = {f"g{target}": f"g{target}"}
        touched: set[str] = set()

        def backward(i: int) -> None:
            gi = name.get(f"g{i}")
            if gi is None:
                return
            node = order[i]
            assert isinstance(node, Operator)
            self._emit_rules(emit, node, want[i], gi, [val[slot[x]] for x in node.inputs],
                             f"v{i}", [f"g{slot[x]}" for x in node.inputs], name, touched)

        for i in sorted((i for i in active if i >= e), reverse=True):
            backward(i)
        if loop is not None:
            assert code is not None
            if not self._loop_gradients(loop, emit, name, code):
                return None
        for i in sorted((i for i in active if i < s), reverse=True):
            backward(i)
        grads = ", ".join(name.get(f"g{slot[w]}", "None") if w in slot else "None"
                          for w in self.wrt)
        emit(f"return ({outs},), ({grads}{',' if grads else ''})")
        self._scalar_lines, self._loop_lines, self._loop = lines, loop_lines, loop
        return "\n".join(src) + "\n"

    # --- loops over a repeated block --------------------------------------------------
    def _ref_val(self, loop: Loop, ref: Ref, val: Sequence[str]) -> str:
        kind, x = ref
        if kind == "local":
            return f"c{loop.start + x}" if isinstance(self.order[loop.start + x], Constant) \
                else f"b{x}"
        return f"p{x}" if kind == "carry" else val[x]

    def _loop_backward(self, loop: Loop, active: set[int], want: dict[int, list[bool]],
                       val: Sequence[str]) -> _LoopCode | None:
        """The backward pass of one block, as the body of a loop over the blocks.

        Locals: ``b3`` the value at position 3 of the block, ``p3`` the one carried in
        from the previous block; ``d3`` the gradient of ``b3`` and ``n3`` the gradient
        the block passes back for ``p3``. Gradients of nodes before the loop (``g5``)
        gather every block's share.
        """
        order, s = self.order, loop.start
        keys = {"local": "d", "carry": "n", "fixed": "g"}
        carried = loop.carried
        fixed = {f"g{x}" for refs in loop.refs if refs for kind, x in refs
                 if kind == "fixed"}
        # The gradients a block passes back decide which arrive at the next one: settle
        # on the positions that get one whenever they give one.
        for _ in range(len(carried) + 1):
            body: list[str] = []
            name = {f"d{r}": f"d{r}" for r in carried}
            name.update((k, k) for k in fixed)
            touched: set[str] = set()
            for j in reversed(range(loop.period)):
                i, refs = s + j, loop.refs[j]
                gi = name.get(f"d{j}")
                if refs is None or i not in active or gi is None:
                    continue
                node = order[i]
                assert isinstance(node, Operator)
                self._emit_rules(body.append, node, want[i], gi,
                                 [self._ref_val(loop, r, val) for r in refs], f"b{j}",
                                 [f"{keys[kind]}{x}" for kind, x in refs], name, touched)
            passed = [r for r in carried if f"n{r}" in name]
            if passed == carried:
                break
            carried = passed
        else:
            return None
        if carried:
            body.append(f"{', '.join(f'd{r}' for r in carried)}, = "
                        f"{', '.join(name[f'n{r}'] for r in carried)},")
        saved = sorted(set(_LOOP_VALUE.findall("\n".join(body))))
        return _LoopCode(body, carried, sorted(touched & fixed), saved)

    def _loop_forward(self, loop: Loop, src: list[str], val: list[str], code: _LoopCode,
                      lines: dict[int, int]) -> None:
        """The forward loop over the blocks, keeping what each block's backward reads;
        afterwards the last block's values are what follows the loop reads. ``lines``
        gets the block position each of the loop's op lines computes."""
        order, s, p, e = self.order, loop.start, loop.period, loop.end
        carried = loop.carried
        out = src.append
        if carried:
            out(f"    {', '.join(f'p{r}' for r in carried)}, = "
                f"{', '.join(val[s - p + r] for r in carried)},")
        if code.saved:
            out("    _S = []")
            out("    _a = _S.append")
        out(f"    for _k in range({loop.reps}):")
        for j, refs in enumerate(loop.refs):
            node = order[s + j]
            if refs is None:
                continue
            assert isinstance(node, Operator)
            expr, _ = self._forward_expr(s + j, node, [self._ref_val(loop, r, val) for r in refs])
            lines[len(src) + 1] = j
            out(f"        b{j} = {expr}")
        if code.saved:
            out(f"        _a(({', '.join(code.saved)},))")
        if carried:
            out(f"        {', '.join(f'p{r}' for r in carried)}, = "
                f"{', '.join(f'b{r}' for r in carried)},")
        outputs = {self.slot[o] for o in self.outputs}
        for j, refs in enumerate(loop.refs):
            i = e - p + j
            if refs is not None:
                val[i] = f"b{j}"
                if i in outputs:  # the backward loop reuses the name
                    out(f"    v{i} = b{j}")
                    val[i] = f"v{i}"

    def _loop_gradients(self, loop: Loop, emit: Callable[[str], None], name: dict[str, str],
                        code: _LoopCode) -> bool:
        """The backward loop, from the gradients of the last block's values to those of
        the nodes before the loop; False when those reaching the last block are not the
        ones each block passes back (the caller then writes the last block out)."""
        s, p, last = loop.start, loop.period, loop.end - loop.period
        fed = [j for j in range(p) if f"g{last + j}" in name]
        if fed != code.carried:
            return False
        if fed:
            emit(f"{', '.join(f'd{r}' for r in fed)}, = "
                 f"{', '.join(name[f'g{last + r}'] for r in fed)},")
        for key in code.fixed:
            prev = name.get(key)
            if prev is None:
                emit(f"{key} = 0.0")
            elif prev != key:
                emit(f"{key} = {prev}")
            name[key] = key
        if code.saved:
            emit(f"for {', '.join(code.saved)}, in reversed(_S):")
        else:
            emit(f"for _ in range({loop.reps}):")
        for line in code.body or ["pass"]:
            emit("    " + line)
        for r in code.carried:
            _add_to(emit, name, f"g{s - p + r}", f"d{r}", alias=True)
        return True


def plan_size(plan: Plan) -> int:
    """Lines of generated source (for diagnostics)."""
    return plan.source.count("\n")

