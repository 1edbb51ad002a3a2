"""Fuzz: 500 random graphs built by Python loops, compiled, cached and interpreted.

Each case (``tests/loopgraphs.py``, ``make_case(i)`` from ``np.random.default_rng(i)``)
builds one graph in a fresh ``ad.Graph()`` and checks, at two points (leaf values a and
b; Variables are reassigned, Placeholders fed):

- ``ad.compile(out, wrt=wrt, inputs=placeholders)``: called twice at a, once at b;
- ``ad.grad(out, wrt, feed)``: three times at a (thresholds patched so that the plan
  cache compiles on the second call), once at b;
- ``ad.evaluate(out, feed)``: twice at a (the second runs its compiled plan), once at b;

each against the interpreter (``forward_pass`` + ``backward_pass``, run after them, so
no value it stores on the nodes can be read by them) to rtol 1e-9; and the interpreter
against the recipe computed in plain Python floats (scalar graphs) or NumPy: values to
rtol 1e-9, gradients against central differences (``tests/fd.py``) to rtol 1e-5, atol
1e-7 (per element, or along a random direction for larger cases). Graphs of more than
``BIG_OPS`` ops are checked at point a only, with one (interpreted) evaluate call. Some
cases also set compiler thresholds (``Recipe.limits``: loops for small scalar graphs,
code cut into many small functions, compact array code). A failing case lists every
check that failed, then the code that builds the graph and computes the reference.

Cases whose loops repeat more than 1000 times, and every other case, are marked ``slow``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

import autodag as ad

from .fd import numeric_grads
from .loopgraphs import Recipe, first_reps, make_case, python_value, reference

N_CASES = 500
#: Cases up to this many wrt elements times repetitions get per-element differences.
FULL_FD = 2000
RTOL = 1e-9  # compiled or cached against the interpreter; interpreter against Python
ATOL = 1e-12
FD_RTOL = 1e-5
FD_ATOL = 1e-7
#: Graphs of up to this many ops are also checked at a second point, and evaluate's
#: compiled plan too.
BIG_OPS = 3000


@pytest.fixture
def compile_early(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A cached plan of any size compiles on its second call, and so does a large
    program that starts in the interpreter."""
    monkeypatch.setattr("autodag.compiler.limits.COMPILE_COST", 0.0)
    monkeypatch.setattr("autodag.compiler.limits.ANALYSIS_COST", 0.0)
    monkeypatch.setattr("autodag.compiler.limits.COMPILE_AT_ONCE", 10**9)
    yield


def _set_limits(monkeypatch: pytest.MonkeyPatch, recipe: Recipe) -> None:
    """The case's compiler thresholds (``Recipe.limits``)."""
    for name, value in recipe.limits:
        monkeypatch.setattr(f"autodag.compiler.limits.{name}", value)


# --- comparing ------------------------------------------------------------------------
#: The value of a call that returns none (grad).
NO_VALUE: Any = object()


def _fmt(x: Any) -> str:
    return np.array2string(np.asarray(x, dtype=np.float64), precision=17, threshold=12)


def _mismatch(got: Any, want: Any, rtol: float, atol: float) -> str | None:
    """Why ``got`` is not ``want`` (shapes and values), or None."""
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return f"not a number or array ({type(got).__name__}: {exc})"
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        return f"shape {g.shape}, expected {w.shape}"
    if not np.all(np.isfinite(g)) and np.all(np.isfinite(w)):
        return f"not finite: {_fmt(g)}"
    if not np.allclose(g, w, rtol=rtol, atol=atol):
        err = float(np.max(np.abs(g - w)))
        return f"max abs error {err:.3g}: got {_fmt(g)}, expected {_fmt(w)}"
    return None


class Checker:
    """Collects every failed check of one case."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.failures: list[str] = []

    def fail(self, what: str, why: str) -> None:
        self.failures.append(f"{what}: {why}")

    def raised(self, what: str, exc: BaseException) -> None:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        self.fail(what, f"raised {type(exc).__name__}: {msg[:300]}")

    def same(self, what: str, got: Any, want: Any, rtol: float = RTOL,
             atol: float = ATOL) -> None:
        why = _mismatch(got, want, rtol, atol)
        if why is not None:
            self.fail(what, why)

    def result(self, what: str, got: tuple[Any, list[Any]] | None,
               want: tuple[Any, list[Any]] | None, wrt: Sequence[str],
               shapes: Sequence[tuple[int, ...]]) -> None:
        """(value, grads) of a call against the interpreter's."""
        if got is None or want is None:
            return
        value, grads = got
        if value is not NO_VALUE:
            self.same(f"{what}: value", value, want[0])
        if len(grads) != len(wrt):
            self.fail(what, f"{len(grads)} gradients for {len(wrt)} wrt nodes")
            return
        for name, shape, g, w in zip(wrt, shapes, grads, want[1], strict=True):
            if np.shape(g) != shape:
                self.fail(f"{what}: gradient of {name}",
                          f"shape {np.shape(g)}, expected {shape} (the node's)")
            else:
                self.same(f"{what}: gradient of {name}", g, w)
        arrays = [g for g in grads if isinstance(g, np.ndarray)]
        for j, a in enumerate(arrays):
            if any(np.shares_memory(a, b) for b in arrays[:j]):
                self.fail(what, "two gradients share memory")

    def message(self) -> str:
        return "\n".join([f"{self.recipe.summary()}: {len(self.failures)} failed check(s)",
                          *(f"  - {f}" for f in self.failures),
                          "graph and reference (tests/loopgraphs.py):",
                          self.recipe.source()])


# --- one case -------------------------------------------------------------------------
def _interpret(out: Any, wrt: Sequence[Any], feed: dict[Any, Any]) -> tuple[Any, list[Any]]:
    """The interpreter's value and gradients: forward_pass and backward_pass."""
    order = ad.topological_sort(out)
    value = ad.forward_pass(order, feed)
    ad.backward_pass(order, out)
    inside = set(order)
    grads = [w.gradient if w in inside else np.zeros(np.shape(w.value)) for w in wrt]
    return value, grads


def _fd_check(check: Checker, recipe: Recipe, grads: Sequence[Any]) -> None:
    """The interpreter's gradients (at point a) against central differences of the
    recipe in Python floats or NumPy."""
    names = list(dict.fromkeys(recipe.wrt))
    by_name = dict(zip(recipe.wrt, grads, strict=True))
    f = reference(recipe)
    x = [recipe.leaf(n).value for n in names]
    size = sum(int(np.size(v)) for v in x)
    if size * recipe.max_reps * len(recipe.stages) <= FULL_FD:
        want = numeric_grads(f, x)
        for n, w in zip(names, want, strict=True):
            check.same(f"interpreter: gradient of {n} vs central differences", by_name[n], w,
                       FD_RTOL, FD_ATOL)
        return
    # Along a random direction v: d/dt f(x + t v) at t = 0 is sum <grad_i, v_i>.
    v = [np.asarray(recipe.directions[n], dtype=np.float64) for n in names]

    def along(t: Any) -> Any:
        return f(*(xi + float(t) * vi for xi, vi in zip(x, v, strict=True)))

    (dd,) = numeric_grads(along, [0.0])
    terms = [np.asarray(by_name[n], dtype=np.float64) * vi for n, vi in zip(names, v,
                                                                           strict=True)]
    got = sum(float(np.sum(t)) for t in terms)
    scale = sum(float(np.sum(np.abs(t))) for t in terms)
    tol = FD_RTOL * scale + FD_ATOL * max(1.0, sum(float(np.sum(np.abs(vi))) for vi in v))
    if not abs(got - float(dd)) <= tol:
        check.fail("interpreter: directional derivative vs central differences",
                   f"got {got!r}, expected {float(dd)!r} (tolerance {tol:.3g})")


def _call(check: Checker, what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        check.raised(what, exc)
        return None


def build(recipe: Recipe) -> tuple[dict[str, Any], Any]:
    """The recipe's leaves (by name) and output node, in a fresh graph."""
    with ad.Graph():
        nodes: dict[str, Any] = {}
        for lf in recipe.leaves:
            if lf.placeholder:
                nodes[lf.name] = ad.Placeholder(
                    name=lf.name, shape=lf.shape if lf.declare_shape else None)
            else:
                nodes[lf.name] = ad.Variable(lf.value, name=lf.name)
        out = recipe.fn(nodes, ad.ops.tanh, ad.ops.sin, ad.ops.exp, ad.ops.sum)
    return nodes, out


def run_case(recipe: Recipe) -> list[str]:
    """Every check of one recipe: [] when all pass, else one message listing the
    failures."""
    check = Checker(recipe)
    nodes, out = build(recipe)
    wrt = [nodes[n] for n in recipe.wrt]
    shapes = [recipe.leaf(n).shape for n in recipe.wrt]
    inputs = [nodes[n] for n in recipe.inputs]
    prog = _call(check, "compile()", ad.compile, out, wrt, inputs)
    # (compiled calls, grad calls, evaluate calls) at each point. Large graphs: no point
    # b and one evaluate call (its plan interpreted), which saves two thirds of the time.
    points = {"a": (2, 3, 2), "b": (1, 1, 1)} if recipe.ops <= BIG_OPS else {
        "a": (2, 3, 1)}
    count = {"compiled": 0, "grad": 0, "evaluate": 0}

    def label(api: str, point: str) -> str:
        count[api] += 1
        return f"{api} call {count[api]} at {point}"

    for point, (n_prog, n_grad, n_eval) in points.items():
        vals = recipe.values(point)
        if point != "a":  # Variables reassigned, Placeholders fed new values
            for lf in recipe.leaves:
                if not lf.placeholder:
                    nodes[lf.name].value = vals[lf.name]
        args = [vals[n] for n in recipe.inputs]
        feed = {nodes[n]: vals[n] for n in recipe.inputs}
        # The API under test first, then the interpreter: nothing the passes store on
        # the nodes can be read by the calls checked against them.
        got: list[tuple[str, Any]] = []
        for _ in range(n_prog if prog is not None else 0):
            what = label("compiled", point)
            got.append((what, _call(check, what, prog, *args)))
        for _ in range(n_grad):
            what = label("grad", point)
            grads = _call(check, what, ad.grad, out, wrt, feed)
            got.append((what, None if grads is None else (NO_VALUE, list(grads))))
        evals = []
        for _ in range(n_eval):
            what = label("evaluate", point)
            evals.append((what, _call(check, what, ad.evaluate, out, feed)))
        ref = _call(check, f"interpreter at {point}", _interpret, out, wrt, feed)
        if ref is None:
            continue
        for what, result in got:
            check.result(what, result, ref, recipe.wrt, shapes)
        for what, value in evals:
            if value is not None:
                check.same(f"{what}: value", value, ref[0])
        check.same(f"interpreter at {point}: value vs Python", ref[0],
                   python_value(recipe, point))
        if point == "a":
            _fd_check(check, recipe, ref[1])
    return [check.message()] if check.failures else []


def _case_param(i: int) -> Any:
    # make test runs every other case (and none of the longest); make slow the rest.
    marks = [pytest.mark.slow] if first_reps(i) > 1000 or i % 2 else []
    return pytest.param(i, marks=marks, id=f"case{i}")


@pytest.mark.parametrize("case", [_case_param(i) for i in range(N_CASES)])
def test_loop_graph(case: int, compile_early: None, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = make_case(case)
    _set_limits(monkeypatch, recipe)
    failures = run_case(recipe)
    if failures:
        pytest.fail(failures[0], pytrace=False)


# --- named regressions ----------------------------------------------------------------
def _square_chain_reference(x0: float, steps: int = 60) -> tuple[float, float]:
    """y = tanh(y*y + 0.5) ``steps`` times from x0, and dy/dx0 by the chain rule:
    d tanh(u)/du = 1 - tanh(u)**2, du/dy = 2y."""
    y, dy = x0, 1.0
    for _ in range(steps):
        t = math.tanh(y * y + 0.5)
        dy *= (1.0 - t * t) * 2.0 * y
        y = t
    return y, dy


def test_tanh_of_square_chain_compiles_with_the_hand_derived_gradient() -> None:
    # Crashed with KeyError: 't1' in the compiled program.
    with ad.Graph():
        x = ad.Variable(0.3)
        y: Any = x
        for _ in range(60):
            y = ad.ops.tanh(y * y + 0.5)
    want_v, want_g = _square_chain_reference(0.3)
    # The chain contracts (|dy_k+1/dy_k| ~ 0.6), so the gradient is tiny but exact;
    # finite differences see it only as about zero.
    (fd,) = numeric_grads(lambda v: _square_chain_reference(float(v))[0], [0.3])
    assert abs(float(fd) - want_g) < 1e-9
    prog = ad.compile(y, wrt=[x])
    for _ in range(2):
        value, (g,) = prog()
        assert value == pytest.approx(want_v, rel=1e-12)
        assert g == pytest.approx(want_g, rel=1e-9)
    ref_v, (ref_g,) = _interpret(y, [x], {})
    assert float(ref_v) == pytest.approx(want_v, rel=1e-12)
    assert float(ref_g) == pytest.approx(want_g, rel=1e-9)


def test_tanh_of_square_chain_grad_compiled_on_the_second_call(compile_early: None) -> None:
    with ad.Graph():
        x = ad.Variable(0.3)
        y: Any = x
        for _ in range(60):
            y = ad.ops.tanh(y * y + 0.5)
    _, want_g = _square_chain_reference(0.3)
    for call in range(3):
        (g,) = ad.grad(y, [x])
        assert float(g) == pytest.approx(want_g, rel=1e-9), f"grad call {call + 1}"


def _residual(blocks: int) -> tuple[Any, Any]:
    with ad.Graph():
        x0 = ad.Variable(np.ones(16), name="x0")
        h: Any = x0
        for _ in range(blocks):
            h = ad.ops.tanh(h * 0.9) + h
        loss = ad.ops.sum(h)
    return x0, loss


def _residual_reference(x: Any, blocks: int) -> tuple[float, Any]:
    """sum(h) after ``blocks`` steps h = tanh(0.9 h) + h, and its gradient: the product
    of 0.9 (1 - tanh(0.9 h)**2) + 1 over the steps. Each step adds at most 1 to h, so
    nothing overflows (h is about 200 after 200 steps; the gradient about 1.7)."""
    h = np.array(x, dtype=np.float64)
    g = np.ones_like(h)
    for _ in range(blocks):
        t = np.tanh(0.9 * h)
        g *= 0.9 * (1.0 - t * t) + 1.0
        h = t + h
    return float(np.sum(h)), g


def test_residual_blocks_grad_every_call() -> None:
    # With the default thresholds, the cached plan compiles after a dozen calls; the
    # compiled plan crashed with KeyError: 't1'.
    x0, loss = _residual(200)
    want_v, want_g = _residual_reference(np.ones(16), 200)
    assert 150 * 16 < want_v < 250 * 16 and np.all((want_g > 1) & (want_g < 3))
    (fd,) = numeric_grads(lambda v: _residual_reference(v, 200)[0], [np.ones(16)])
    np.testing.assert_allclose(want_g, fd, rtol=FD_RTOL, atol=FD_ATOL)
    for call in range(50):
        (g,) = ad.grad(loss, [x0])
        np.testing.assert_allclose(g, want_g, rtol=RTOL, err_msg=f"grad call {call + 1}")
    ref_v, (ref_g,) = _interpret(loss, [x0], {})
    assert float(ref_v) == pytest.approx(want_v, rel=RTOL)
    np.testing.assert_allclose(ref_g, want_g, rtol=RTOL)


def test_residual_blocks_grad_compiled_on_the_second_call(compile_early: None) -> None:
    x0, loss = _residual(200)
    _, want_g = _residual_reference(np.ones(16), 200)
    for call in range(3):
        (g,) = ad.grad(loss, [x0])
        np.testing.assert_allclose(g, want_g, rtol=RTOL, err_msg=f"grad call {call + 1}")


def test_residual_blocks_compile() -> None:
    # Crashed with KeyError: 't1'.
    x0, loss = _residual(200)
    want_v, want_g = _residual_reference(np.ones(16), 200)
    prog = ad.compile(loss, wrt=[x0])
    for _ in range(2):
        value, (g,) = prog()
        assert value == pytest.approx(want_v, rel=RTOL)
        np.testing.assert_allclose(g, want_g, rtol=RTOL)


@pytest.mark.slow
@pytest.mark.parametrize("api", ["compile", "grad"])
@pytest.mark.parametrize("blocks", [1000, 2000])
def test_many_residual_blocks_match_the_interpreter(blocks: int, api: str,
                                                    compile_early: None) -> None:
    x0, loss = _residual(blocks)
    want_v, want_g = _residual_reference(np.ones(16), blocks)
    if api == "compile":
        prog = ad.compile(loss, wrt=[x0])
        got = [prog() for _ in range(2)]
    else:  # the second call compiles the cached plan
        value = ad.evaluate(loss)
        got = [(value, ad.grad(loss, [x0])) for _ in range(3)]
    ref_v, (ref_g,) = _interpret(loss, [x0], {})
    assert float(ref_v) == pytest.approx(want_v, rel=RTOL)
    np.testing.assert_allclose(ref_g, want_g, rtol=RTOL)
    for call, (value, (g,)) in enumerate(got):
        assert value == pytest.approx(float(ref_v), rel=RTOL), f"{api} call {call + 1}"
        np.testing.assert_allclose(g, ref_g, rtol=RTOL, err_msg=f"{api} call {call + 1}")
