"""Random graphs built by Python loops, for ``tests/test_loop_fuzz.py``.

``make_case(i)`` draws a ``Recipe`` from ``np.random.default_rng(i)``: one or more stages,
each a recurrence over 1 to 4 carried values (read up to 3 iterations back, updated all
at once or one after the other, some reading every element an earlier stage stored),
then an output made of the last stage's values. ``Recipe.code()`` writes the recipe as
one Python function of the leaves and of ``tanh``, ``sin``, ``exp`` and ``sum``; given
autodag nodes and ``ad.ops`` it builds the graph, given floats and ``math`` (or arrays
and NumPy) it computes the reference. Both run the same code, so they compute the same
function, and a failure message can show exactly that code.

Every update is a bounded function (``tanh``, ``sin``, ``exp(tanh(.))``,
``z / (1 + z*z)``, a Python-float multiple or a halved residual) of an expression whose
Lipschitz constant in the carried values is scaled down to at most 0.9 first (bounds
and Lipschitz constants are tracked as the expression is drawn), so carried values stay
in [-1, 1] and derivatives neither overflow nor lose their conditioning over thousands
of steps. A "clock" (``c = c + 0.25``, read through ``sin``) or a damped rotation keeps
some sequences from settling. The one unbounded update, the raw residual
``h = tanh(h * k) + h`` (or ``h + z / (1 + z*z)``), grows by at most 1 per step and ends
its graph. Loops of 4500 repetitions or more use the cheapest steps,
``h = p / (k + h*h)``.

"Arithmetic" recipes use only + - * / ** on Python floats, whose compiled code is the
cheapest to make; only they get loops of more than 60 repetitions. Every case is kept
to a few hundred ops (a few thousand above 1000 repetitions, about 13,500 near 5000) so
that the 500 cases run in about a minute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

LoopFn = Callable[..., Any]


# --- expressions ----------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    """Carried value ``i`` of the stage, ``lag`` iterations before the latest one."""

    i: int
    lag: int = 0

    def __str__(self) -> str:
        return f"h{self.i}" if self.lag == 0 else f"h{self.i}_{self.lag}"


@dataclass(frozen=True)
class Prev:
    """Final carried value ``i`` of the previous stage."""

    i: int

    def __str__(self) -> str:
        return f"p_h{self.i}"


@dataclass(frozen=True)
class Leaf:
    """A Variable or Placeholder, by name."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Tmp:
    """A value an update computed first (used more than once: one node, shared)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    """A Python float or int written into the expression."""

    c: float | int

    def __str__(self) -> str:
        return repr(self.c)


@dataclass(frozen=True)
class Seq:
    """Element k (or n-1-k) of the values stage ``src`` stored, one per iteration."""

    src: int
    reverse: bool = False

    def __str__(self) -> str:
        return f"hs{self.src}[-1 - k]" if self.reverse else f"hs{self.src}[k]"


@dataclass(frozen=True)
class Bin:
    """``a <op> b`` with op one of + - * / **."""

    op: str
    a: Expr
    b: Expr

    def __str__(self) -> str:
        return f"({self.a} {self.op} {self.b})"


@dataclass(frozen=True)
class Un:
    """``fn(a)`` for fn one of tanh, sin, exp, or ``-a`` for neg."""

    fn: str
    a: Expr

    def __str__(self) -> str:
        return f"(-{self.a})" if self.fn == "neg" else f"{self.fn}({self.a})"


Expr = Ref | Prev | Leaf | Tmp | Const | Seq | Bin | Un


def walk(e: Expr) -> list[Expr]:
    """``e`` and all its subexpressions."""
    out: list[Expr] = [e]
    if isinstance(e, Bin):
        out += walk(e.a) + walk(e.b)
    elif isinstance(e, Un):
        out += walk(e.a)
    return out


def count_ops(e: Expr) -> int:
    """Operator nodes ``e`` makes (a Python constant makes none of its own)."""
    return sum(isinstance(x, (Bin, Un)) for x in walk(e))


@dataclass(frozen=True)
class Update:
    """A carried value's new value: ``lets`` (name, expression) computed first, then
    ``expr``."""

    expr: Expr
    lets: tuple[tuple[str, Expr], ...] = ()

    def exprs(self) -> list[Expr]:
        return [e for _, e in self.lets] + [self.expr]


# --- recipes --------------------------------------------------------------------------
@dataclass(frozen=True)
class LeafSpec:
    """A leaf: its name, whether it is a Placeholder (else a Variable), its values at the
    two points the test runs (a Python float for shape ()), and whether a Placeholder
    declares its shape."""

    name: str
    placeholder: bool
    value: Any
    value_b: Any
    declare_shape: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.value))


@dataclass(frozen=True)
class Stage:
    """``reps`` iterations of the carried values' ``updates`` from their ``init`` values.

    ``lags``: how many iterations further back than the latest an update may read (the
    values before the first iteration are the initial ones). ``sequential``: updates run
    one after the other, update i seeing the new values of the carried values before it
    (else all at once, ``a, b = f(a, b), g(a, b)``). ``record``: store carried value 0
    after every iteration, as ``hs<stage>``, for a later stage's ``Seq``. ``driver``:
    how many carried values at the end are a clock or rotation (read by the others,
    never by the output directly).
    """

    reps: int
    init: tuple[Expr, ...]
    updates: tuple[Update, ...]
    lags: int = 0
    sequential: bool = False
    record: bool = False
    driver: int = 0


def stage_ops(stage: Stage) -> int:
    """Operator nodes one iteration of ``stage`` makes."""
    return sum(count_ops(e) for u in stage.updates for e in u.exprs())


@dataclass(frozen=True)
class Recipe:
    """A whole random graph: leaves, stages and the output, with what to check."""

    case: int
    family: str
    kind: str  # "scalar", "array" or "mixed" (scalar Variables among arrays)
    arith: bool  # only + - * / ** in the loops
    leaves: tuple[LeafSpec, ...]
    stages: tuple[Stage, ...]
    output: Expr
    sum_output: bool
    wrt: tuple[str, ...]
    inputs: tuple[str, ...]  # the Placeholders, in the order compile() gets them
    #: Compiler thresholds (``autodag.compiler.limits``) set for this case: with
    #: ROLL_MIN_NODES=1 scalar graphs of any size get loops, with a small CHUNK the
    #: generated code is cut into many functions, with COMPACT_NODES=1 array code of
    #: any size is written compact.
    limits: tuple[tuple[str, int], ...]
    directions: Mapping[str, Any] = field(default_factory=dict)  # for directional FD

    @property
    def max_reps(self) -> int:
        return max(s.reps for s in self.stages)

    @property
    def ops(self) -> int:
        """Operator nodes the loops make (some may be dead)."""
        return sum(s.reps * stage_ops(s) for s in self.stages)

    def leaf(self, name: str) -> LeafSpec:
        return next(lf for lf in self.leaves if lf.name == name)

    def values(self, point: str = "a") -> dict[str, Any]:
        """Every leaf's value at point "a" or "b"."""
        return {lf.name: lf.value if point == "a" else lf.value_b for lf in self.leaves}

    def summary(self) -> str:
        reps = ", ".join(str(s.reps) for s in self.stages)
        return (f"case {self.case} (tests.loopgraphs.make_case({self.case})): family "
                f"{self.family}, kind {self.kind}{', arithmetic' if self.arith else ''}, "
                f"reps ({reps}), about {self.ops} ops"
                + "".join(f", {k}={v}" for k, v in self.limits))

    def code(self) -> str:
        """The recipe as ``def loop_graph(leaves, tanh, sin, exp, sum)``."""
        out = ["def loop_graph(leaves, tanh, sin, exp, sum):"]
        out += [f"    {lf.name} = leaves[{lf.name!r}]" for lf in self.leaves]
        for s, st in enumerate(self.stages):
            n = len(st.updates)
            hs = ", ".join(f"h{i}" for i in range(n))
            out.append(f"    # stage {s}")
            if s > 0:
                m = len(self.stages[s - 1].updates)
                out.append(f"    {', '.join(f'p_h{i}' for i in range(m))}, = "
                           f"{', '.join(f'h{i}' for i in range(m))},")
            out.append(f"    {hs}, = {', '.join(str(e) for e in st.init)},")
            for i in range(n):
                if st.lags:  # h<i>_<d>: h<i> d iterations before the latest
                    out.append("    " + " = ".join(f"h{i}_{d}" for d in range(1, st.lags + 1))
                               + f" = h{i}")
            if st.record:
                out.append(f"    hs{s} = []")
            out.append(f"    for k in range({st.reps}):")
            shifts = []
            for i, u in enumerate(st.updates):
                out += [f"        {name} = {e}" for name, e in u.lets]
                out.append(f"        n{i} = {u.expr}")
                names = [*(f"h{i}_{d}" for d in range(st.lags, 0, -1)), f"h{i}"]
                shift = f"        {', '.join(names)} = {', '.join([*names[1:], f'n{i}'])}"
                if st.sequential:
                    out.append(shift)
                else:
                    shifts.append(shift)
            out += shifts
            if st.record:
                out.append(f"        hs{s}.append(h0)")
        m = len(self.stages[-1].updates)
        out.append(f"    {', '.join(f'p_h{i}' for i in range(m))}, = "
                   f"{', '.join(f'h{i}' for i in range(m))},")
        out.append(f"    return sum({self.output})" if self.sum_output
                   else f"    return {self.output}")
        return "\n".join(out) + "\n"

    @cached_property
    def fn(self) -> LoopFn:
        """``code()`` as a function."""
        namespace: dict[str, Any] = {}
        exec(compile(self.code(), f"<loop graph of case {self.case}>", "exec"), namespace)
        fn: LoopFn = namespace["loop_graph"]
        return fn

    def source(self) -> str:
        """How to build the graph, for failure messages."""
        lines = [f"# {self.summary()}", "import numpy as np", "import autodag as ad", "",
                 self.code(), "with ad.Graph():"]
        for lf in self.leaves:
            v = repr(lf.value) if isinstance(lf.value, float) else (
                f"np.array({np.asarray(lf.value).tolist()!r})")
            if lf.placeholder:
                shape = f", shape={lf.shape}" if lf.declare_shape else ""
                lines.append(f"    {lf.name} = ad.Placeholder(name={lf.name!r}{shape})"
                             f"  # fed {v}")
            else:
                lines.append(f"    {lf.name} = ad.Variable({v}, name={lf.name!r})")
        names = ", ".join(f"{lf.name!r}: {lf.name}" for lf in self.leaves)
        lines.append(f"    out = loop_graph({{{names}}}, ad.ops.tanh, ad.ops.sin, "
                     "ad.ops.exp, ad.ops.sum)")
        lines.append(f"wrt = [{', '.join(self.wrt)}]; inputs = [{', '.join(self.inputs)}]")
        return "\n".join(lines)


# --- evaluation -----------------------------------------------------------------------
class Dep:
    """The leaves a value depends on: what ``Recipe.fn`` computes when given these."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def _join(self, other: Any) -> Dep:
        return Dep(self.names | other.names) if isinstance(other, Dep) else self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _join
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _join

    def __neg__(self) -> Dep:
        return self


def _same(d: Any) -> Any:
    return d


def dependencies(recipe: Recipe, names: Sequence[str]) -> frozenset[str]:
    """The leaves among ``names`` that the recipe's output depends on."""
    out = recipe.fn({n: Dep(frozenset([n])) for n in names}, _same, _same, _same, _same)
    assert isinstance(out, Dep)
    return out.names


def reference(recipe: Recipe, point: str = "a") -> LoopFn:
    """f(*wrt_values): the recipe in Python floats (scalar recipes) or NumPy, as a
    function of its distinct wrt leaves (the others at ``point``), for ``numeric_grads``."""
    names = list(dict.fromkeys(recipe.wrt))
    base = recipe.values(point)
    scalar = recipe.kind == "scalar"

    def f(*xs: Any) -> Any:
        vals = dict(base)
        for name, x in zip(names, xs, strict=True):
            vals[name] = float(x) if scalar else np.asarray(x, dtype=np.float64)
        if scalar:
            return recipe.fn(vals, math.tanh, math.sin, math.exp, _same)
        return recipe.fn(vals, np.tanh, np.sin, np.exp, np.sum)

    return f


def python_value(recipe: Recipe, point: str = "a") -> Any:
    """The recipe's output at ``point``, in Python floats (scalar recipes) or NumPy."""
    vals = recipe.values(point)
    if recipe.kind == "scalar":
        return recipe.fn(vals, math.tanh, math.sin, math.exp, _same)
    return recipe.fn(vals, np.tanh, np.sin, np.exp, np.sum)


# --- generation -----------------------------------------------------------------------
_FAMILIES = ("rec", "lag", "zip", "multi", "residual")
_FAMILY_P = (0.3, 0.2, 0.2, 0.15, 0.15)


def _log_uniform(rng: np.random.Generator, lo: int, hi: int) -> int:
    return round(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def draw_reps(rng: np.random.Generator, arith: bool) -> int:
    """Repetitions, log-uniform in pieces. Graphs of + - * / ** on Python floats, whose
    code is cheapest to make: 2.5% 4500-5000, 6% 1000-4500, 15% 100-1000, the rest
    10-100. Others, whose code costs far more per node to make (and whose steps are
    thinner for more than 20): 6% 200-2000, 15% 20-60, the rest 10-20."""
    u = rng.random()
    if arith:
        lo, hi = (4500, 5000) if u < 0.025 else (1000, 4500) if u < 0.085 else (
            100, 1000) if u < 0.235 else (10, 100)
    else:
        # Long loops of any op roll into loops of the general function, cheap to make.
        lo, hi = (200, 2000) if u < 0.06 else (20, 60) if u < 0.21 else (10, 20)
    return _log_uniform(rng, lo, hi)


@dataclass
class _Atom:
    e: Expr
    bound: float  # of |value|
    lip: float  # Lipschitz constant in the carried values (max norm)


class _Gen:
    """Draws expressions, tracking a bound of each value and its Lipschitz constant."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.kind = "scalar"
        self.shape: tuple[int, ...] = ()
        self.arith = False
        self.leaves: list[LeafSpec] = []
        self.params: list[Leaf] = []
        self.thin = False  # cheaper updates only (for the longest loops)

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def leaf(self, prefix: str, shape: tuple[int, ...], lo: float, hi: float) -> Leaf:
        rng = self.rng
        name = f"{prefix}{len(self.leaves)}"
        if shape == ():
            value: Any = float(rng.uniform(lo, hi))
            value_b: Any = float(rng.uniform(lo, hi))
        else:
            value = rng.uniform(lo, hi, size=shape)
            value_b = rng.uniform(lo, hi, size=shape)
        self.leaves.append(LeafSpec(name, self.chance(0.4), value, value_b, self.chance(0.5)))
        return Leaf(name)

    def param_shape(self) -> tuple[int, ...]:
        if self.kind == "scalar":
            return ()
        options: list[tuple[int, ...]] = [self.shape]
        if self.shape == (2, 3):
            options += [(3,), (2, 1)]
        if self.kind == "mixed":
            options += [(), ()]
        return tuple(self.pick(options))

    def const(self) -> float | int:
        if self.chance(0.4):
            return int(self.pick([1, 2, 3, -1, -2]))
        return float(self.pick([0.5, 0.3, 0.7, -0.6, 1.5, 0.25, -0.45]))

    def param(self) -> _Atom:
        """A loop-invariant leaf: an old one, or a new one (at most 3)."""
        if self.params and (len(self.params) >= 3 or self.chance(0.5)):
            p = self.pick(self.params)
        else:
            p = self.leaf("a", self.param_shape(), -0.9, 0.9)
            self.params.append(p)
        return _Atom(p, 1.0, 0.0)

    def inits(self, n: int) -> list[Expr]:
        """Initial values from new leaves (in [-1, 1])."""
        out: list[Expr] = []
        for _ in range(n):
            s = self.shape
            if self.kind == "mixed" and self.chance(0.2):
                s = ()  # a scalar start: the first iteration makes it an array
            x: Expr = self.leaf("x", s, -1.0, 1.0)
            if self.chance(0.15):
                x = Un("tanh", x) if self.chance(0.5) and not self.arith else Bin(
                    "*", x, Const(0.5))
            out.append(x)
        return out

    def atom(self, refs: Sequence[_Atom], extra: Sequence[_Atom]) -> _Atom:
        u = self.rng.random()
        if u < 0.55:
            return refs[int(self.rng.integers(len(refs)))]
        if extra and u < 0.8:
            return extra[int(self.rng.integers(len(extra)))]
        return self.param()

    def chain(self, first: _Atom, n_ops: int, refs: Sequence[_Atom],
              extra: Sequence[_Atom]) -> _Atom:
        """``first`` combined with ``n_ops`` random operations."""
        e, b, lip = first.e, first.bound, first.lip
        ops = ["add", "sub", "mul", "mul", "mulc", "addc", "subc", "divc", "divden", "pow",
               "neg"]
        if not self.arith:
            ops += ["tanh", "sin", "exp", "tanh"]
        for _ in range(n_ops):
            op = self.pick(ops)
            if op in ("add", "sub", "mul"):
                a = self.atom(refs, extra)
                x, y = (e, a.e) if self.chance(0.5) else (a.e, e)
                e = Bin({"add": "+", "sub": "-", "mul": "*"}[op], x, y)
                if op == "mul":
                    b, lip = b * a.bound, lip * a.bound + a.lip * b
                else:
                    b, lip = b + a.bound, lip + a.lip
            elif op == "mulc":
                c = self.const()
                e = Bin("*", e, Const(c)) if self.chance(0.5) else Bin("*", Const(c), e)
                b, lip = b * abs(c), lip * abs(c)
            elif op in ("addc", "subc"):
                c = self.const()
                sym = "+" if op == "addc" else "-"
                e = Bin(sym, e, Const(c)) if self.chance(0.5) else Bin(sym, Const(c), e)
                b = b + abs(c)
            elif op == "divc":
                c = self.pick([4.0, 2, 3.0, -2.5, 1.5])
                e = Bin("/", e, Const(c))
                b, lip = b / abs(c), lip / abs(c)
            elif op == "divden":
                # e / (k + a*a) or c / (k + e*e): a denominator of at least k >= 1.
                k = self.pick([1.0, 2, 1.5])
                if self.chance(0.5):
                    a = self.atom(refs, extra)
                    e = Bin("/", e, Bin("+", Const(k), Bin("*", a.e, a.e)))
                    lip = lip / k + b * 2 * a.bound * a.lip / k**2
                    b = b / k
                else:
                    c = self.pick([1.0, 2, -0.5])
                    e = Bin("/", Const(c), Bin("+", Const(k), Bin("*", e, e)))
                    lip = abs(c) * 2 * b * lip / k**2
                    b = abs(c) / k
            elif op == "pow":
                p = self.pick([2, 3, 2.0])
                e = Bin("**", e, Const(p))
                b, lip = b**p, p * b ** (p - 1) * lip
            elif op in ("tanh", "sin"):
                e = Un(op, e)
                b = min(b, 1.0)
            elif op == "exp":
                if b > 1.5:
                    e, b = Un("tanh", e), 1.0
                e = Un("exp", e)
                b, lip = math.exp(b), math.exp(b) * lip
            else:
                e = Un("neg", e)
        return _Atom(e, b, lip)

    def scaled(self, inner: _Atom, gain: float) -> Expr:
        """``inner`` times a Python float, so that ``gain`` * its Lipschitz constant is
        at most 0.9 (unchanged if it already is)."""
        if inner.lip * gain <= 0.9:
            return inner.e
        k = max(math.floor(0.9 / (inner.lip * gain) * 100) / 100, 0.01)
        return Bin("*", inner.e, Const(k)) if self.chance(0.5) else Bin("*", Const(k), inner.e)

    def squash(self, inner: _Atom, own: Ref, tmp: str, residual: bool) -> Update:
        """A bounded update (|value| <= 1, Lipschitz <= 0.95) of ``inner``; ``own`` is
        the carried value, for a residual update."""
        if self.arith:
            # c * z / (1 + z*z): |.| <= c/2, Lipschitz c; or 0.5 * (own + z / (1 + z*z)).
            forms = ["rat", "rat", "lin"] + ([] if self.thin else ["residual"])
            form = "residual" if residual else self.pick(forms)
            if form == "lin":
                return self.linear(inner)
            c = 1.0 if form == "residual" else float(self.pick([1.0, 1.5, 2.0]))
            z = Tmp(tmp)
            rat = Bin("/", z, Bin("+", Const(self.pick([1.0, 1])), Bin("*", z, z)))
            lets = ((tmp, self.scaled(inner, c)),)
            if form == "residual":
                return Update(Bin("*", Bin("+", own, rat), Const(0.5)), lets)
            return Update(rat if c == 1.0 else Bin("*", Const(c), rat), lets)
        forms = ["residual"] if residual else ["tanh", "tanh", "sin", "exp", "residual", "lin"]
        form = self.pick(forms)
        if form == "lin":
            return self.linear(inner)
        c = float(self.pick([1.0, 0.9, 0.5])) if form in ("tanh", "sin") else 1.0
        gain = 0.35 * math.e if form == "exp" else c  # residual: 0.5 * (1 + 0.9)
        e = self.scaled(inner, gain)
        if form == "exp":
            return Update(Bin("*", Const(0.35), Un("exp", Un("tanh", e))))
        if form == "residual":  # 0.5 * (tanh(z) + h)
            if self.chance(0.5):
                return Update(Bin("*", Const(0.5), Bin("+", Un("tanh", e), own)))
            return Update(Bin("*", Bin("+", own, Un("tanh", e)), Const(0.5)))
        fn = Un(form, e)
        if c == 1.0:
            return Update(fn)
        return Update(Bin("*", fn, Const(c)) if self.chance(0.5) else Bin("*", Const(c), fn))

    def linear(self, inner: _Atom) -> Update:
        """``inner`` times a Python float k with |value| <= 1 and Lipschitz <= 0.9 (no
        factor if ``inner`` is already so)."""
        k = min(0.9 / inner.lip if inner.lip else math.inf, 1 / inner.bound)
        if k >= 1:
            return Update(inner.e)
        k = max(math.floor(k * 100) / 100, 0.01)
        return Update(Bin("*", inner.e, Const(k)) if self.chance(0.5) else
                      Bin("*", Const(k), inner.e))

    def drivers(self, first: int) -> tuple[list[Update], list[Expr], list[_Atom]]:
        """A clock ``c = c + step`` read as sin(c), or (arithmetic) a damped rotation
        of two carried values: updates, initial values, and atoms reading them."""
        if not self.arith:
            step = self.pick([0.25, 0.1, 1])
            return ([Update(Bin("+", Ref(first), Const(step)))], [self.leaf("x", (), -1, 1)],
                    [_Atom(Un("sin", Ref(first)), 1.0, 1.0)])
        theta = float(self.rng.uniform(0.1, 1.0))
        cs, sn = Const(0.99 * math.cos(theta)), Const(0.99 * math.sin(theta))
        u, v = Ref(first), Ref(first + 1)
        ups = [Update(Bin("-", Bin("*", u, cs), Bin("*", v, sn))),
               Update(Bin("+", Bin("*", u, sn), Bin("*", v, cs)))]
        init: list[Expr] = [self.leaf("x", (), -0.7, 0.7), self.leaf("x", (), -0.7, 0.7)]
        return ups, init, [_Atom(u, 1.0, 1.0), _Atom(v, 1.0, 1.0)]

    def stage(self, reps: int, n_carry: int, max_ops: int, lags: int, init: Sequence[Expr],
              seq: Seq | None = None, driver: bool = False, residual: bool = False,
              record: bool = False) -> Stage:
        """A stage of ``n_carry`` bounded carried values (plus drivers, last)."""
        sequential = self.chance(0.3)
        refs = [_Atom(Ref(i, d), 1.0, 1.0) for i in range(n_carry) for d in range(lags + 1)]
        d_updates: list[Update] = []
        d_init: list[Expr] = []
        extra: list[_Atom] = []
        if driver:
            d_updates, d_init, extra = self.drivers(n_carry)
        if seq is not None:
            extra += [_Atom(seq, 1.0, 0.0)] * 2
        updates: list[Update] = []
        for i in range(n_carry):
            # Start from the value itself (or, with lags, sometimes an older one).
            d = int(self.rng.integers(lags + 1)) if lags else 0
            n_ops = int(self.rng.integers(max_ops + 1))
            inner = self.chain(_Atom(Ref(i, d), 1.0, 1.0), n_ops, refs, extra)
            forced: list[tuple[Expr, float]] = []
            if lags and not any(isinstance(r, Ref) and r.lag > 0 for r in walk(inner.e)):
                forced.append((Ref(i, lags), 1.0))
            if driver and i == 0 and not any(x.e in walk(inner.e) for x in extra):
                forced.append((extra[0].e, 1.0))
            if seq is not None and seq not in walk(inner.e):
                forced.append((seq, 0.0))
            for e, lip in forced:
                inner = _Atom(Bin("+", inner.e, e), inner.bound + 1.0, inner.lip + lip)
            updates.append(self.squash(inner, Ref(i), f"z{i}", residual and i == 0))
        inits = [*init, *d_init]
        assert len(inits) == n_carry + len(d_updates)
        return Stage(reps, tuple(inits), tuple(updates + d_updates), lags, sequential,
                     record, len(d_updates))


def _head(g: _Gen) -> tuple[str, str, tuple[int, ...], bool, int]:
    """The first draws of a case: family, kind, shape, arithmetic or not, and the first
    stage's repetitions."""
    family = str(_FAMILIES[int(g.rng.choice(len(_FAMILIES), p=_FAMILY_P))])
    kind = str(g.pick(["scalar"] * 13 + ["array"] * 4 + ["mixed"] * 3))
    shape: tuple[int, ...] = () if kind == "scalar" else tuple(g.pick([(3,), (2, 3)]))
    arith = g.chance(0.7 if kind == "scalar" else 0.25)
    return family, kind, shape, arith, draw_reps(g.rng, arith and kind == "scalar")


def first_reps(case: int) -> int:
    """The first stage's repetitions in case ``case``, without making the recipe. Later
    stages repeat at most 1000 times, so a case has more than 1000 when this does."""
    return _head(_Gen(np.random.default_rng(case)))[4]


def make_case(case: int) -> Recipe:
    """The random recipe of case ``case``, from ``np.random.default_rng(case)``."""
    rng = np.random.default_rng(case)
    g = _Gen(rng)
    family, kind, shape, arith, reps = _head(g)
    g.kind, g.shape, g.arith = kind, shape, arith
    # Fewer and smaller updates for longer loops, so every case stays quick.
    if arith and kind == "scalar":
        max_carry, max_ops = (4, 2) if reps <= 30 else (2, 1) if reps <= 100 else (1, 1)
    else:
        max_carry, max_ops = (4 if g.chance(0.1) else 2 if g.chance(0.4) else 1, 1)
    cheap, heavy = arith and kind == "scalar", reps > 1000
    if heavy:
        max_carry, max_ops = 1, 0 if reps >= 4500 else 1
        g.thin = True
        if (reps >= 4500 or not cheap) and family in ("zip", "multi"):
            family = "rec"  # one loop that long is costly enough
    if family == "zip":
        reps = min(reps, 1500)  # two loops of this length

    def carry(most: int = 4) -> int:
        return int(rng.integers(1, min(most, max_carry) + 1))

    stages: list[Stage] = []
    raw_residual = False
    if reps >= 4500:
        # The cheapest bounded nonlinear steps: h = p / (k + h*h) (3 ops) or, reading
        # one step further back, h = p / (2 + h*h_1), p a leaf or a Python number:
        # |h| <= 0.6, Lipschitz <= 0.8.
        family = "lag" if g.chance(0.3) else "rec"
        p: Expr = g.param().e if g.chance(0.6) else Const(g.pick([0.5, -0.5]))
        lag = int(family == "lag")
        k = 2 if lag else g.pick([1.5, 2])
        stages.append(Stage(reps, tuple(g.inits(1)), (Update(Bin(
            "/", p, Bin("+", Const(k), Bin("*", Ref(0), Ref(0, lag))))),), lags=lag))
    elif family == "rec":
        n = carry()
        stages.append(g.stage(reps, n, max_ops, 0, g.inits(n),
                              driver=not heavy and g.chance(0.2)))
    elif family == "lag":
        n = carry(2)
        stages.append(g.stage(reps, n, max_ops, int(rng.integers(1, 4)), g.inits(n)))
    elif family == "zip":
        n = carry(2)
        stages.append(g.stage(reps, n, max_ops, int(rng.integers(0, 2)), g.inits(n),
                              driver=not heavy and g.chance(0.6), record=True))
        m = carry(2)
        init2: list[Expr] = [Prev(0)] if g.chance(0.5) else g.inits(1)
        stages.append(g.stage(reps, m, max_ops, 0, init2 + g.inits(m - 1),
                              seq=Seq(0, g.chance(0.3))))
    elif family == "multi":
        n_prev = 0
        for s in range(2 if g.chance(0.85) else 3):
            n = carry()
            cheap = arith and kind == "scalar"
            r = reps if s == 0 else min(draw_reps(rng, cheap), 1000 if cheap else 20) if (
                reps <= 1000) else int(rng.integers(10, 60))
            init: list[Expr] = []
            for i in range(n):
                use_prev = i < n_prev and (i == 0 or g.chance(0.5))
                init += [Prev(i)] if use_prev else g.inits(1)
            stages.append(g.stage(r, n, max_ops, int(rng.integers(0, 2)), init))
            n_prev = n - stages[-1].driver
    elif g.chance(0.4):
        # The raw residual h = tanh(h * k [+ a]) + h (arithmetic: h = h + z / (1 + z*z)
        # for z = h * k [+ a]): unbounded, it grows by at most 1 per step.
        raw_residual = True
        body: Expr = Bin("*", Ref(0), Const(float(g.pick([0.9, 0.5, 1.0]))))
        if g.chance(0.5):
            body = Bin("+", body, g.param().e)
        if arith:
            z = Tmp("z0")
            update = Update(Bin("+", Ref(0), Bin("/", z, Bin("+", Const(1), Bin("*", z, z)))),
                            (("z0", body),))
        else:
            update = Update(Bin("+", Un("tanh", body), Ref(0)))
        stages.append(Stage(reps, tuple(g.inits(1)), (update,)))
    else:
        n = carry(2)
        stages.append(g.stage(reps, n, max_ops, 0, g.inits(n), residual=True))

    # At most this many ops: fewer repetitions when the steps came out larger (but no
    # fewer than 10, or 1001 for a long loop, or 4500 for one near 5000, whose steps
    # are the cheapest).
    long = not cheap and reps >= 200
    cap = 3000 if heavy else 250 if cheap else 2500 if long else 40
    floor = 4500 if reps >= 4500 else 1001 if heavy else 200 if long else 10
    ops = sum(st.reps * stage_ops(st) for st in stages)
    if ops > cap:
        stages = [replace(st, reps=max(floor if s == 0 or family == "zip" else 10,
                                       int(st.reps * cap / ops)))
                  for s, st in enumerate(stages)]

    # The output: the last stage's values (never a driver's raw value), mixed.
    last = stages[-1]
    usable = list(range(len(last.updates) - last.driver))
    out: Expr = Prev(usable[0])
    for i in usable[1:]:
        if g.chance(0.85):
            out = Bin(g.pick(["+", "-"]), out, Bin("*", Const(g.const()), Prev(i)))
    if last.driver and not arith and g.chance(0.5):
        out = Bin("+", out, Un("sin", Prev(len(last.updates) - 1)))
    if not raw_residual and g.chance(0.3):
        out = Bin("*", out, Un("tanh", Prev(usable[-1])) if not arith else Prev(usable[-1]))
    if g.chance(0.2):
        out = Bin("+", out, g.param().e)
    sum_output = kind == "mixed" or (kind == "array" and g.chance(0.6))

    # Only leaves the code reads. One the output does not depend on (it starts a carried
    # value nothing reads) stays a Variable: its gradient is zeros.
    draft = Recipe(case, family, kind, arith, tuple(g.leaves), tuple(stages), out, False,
                   (), (), ())
    exprs = [out, *(e for st in stages for e in st.init),
             *(e for st in stages for u in st.updates for e in u.exprs())]
    read = {x.name for e in exprs for x in walk(e) if isinstance(x, Leaf)}
    needed = dependencies(draft, [lf.name for lf in g.leaves])
    leaves = tuple(lf if lf.name in needed else LeafSpec(
        lf.name, False, lf.value, lf.value_b, False) for lf in g.leaves if lf.name in read)
    names = [lf.name for lf in leaves if lf.name in needed]
    wrt = [str(x) for x in rng.choice(names, size=int(rng.integers(1, min(3, len(names)) + 1)),
                                      replace=False)]
    unneeded = [lf.name for lf in leaves if lf.name not in needed]
    if unneeded and g.chance(0.3):
        wrt.insert(int(rng.integers(len(wrt) + 1)), unneeded[0])
    if g.chance(0.05):
        wrt.append(wrt[0])  # the same node twice: two gradients, not aliased
    inputs = [lf.name for lf in leaves if lf.placeholder]
    inputs = [inputs[int(j)] for j in rng.permutation(len(inputs))]
    limits: list[tuple[str, int]] = []
    if kind == "scalar" and g.chance(0.35):
        limits.append(("ROLL_MIN_NODES", 1))
    if g.chance(0.2 if kind == "scalar" else 0.35):
        limits.append(("CHUNK", int(g.pick([4, 12, 40]))))
    if kind != "scalar" and g.chance(0.25):
        limits.append(("COMPACT_NODES", 1))
    directions = {lf.name: rng.standard_normal(lf.shape) for lf in leaves}
    return Recipe(case, family, kind, arith, leaves, tuple(stages), out, sum_output,
                  tuple(wrt), tuple(inputs), tuple(limits), directions)
