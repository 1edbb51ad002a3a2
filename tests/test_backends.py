"""Every built-in and first-party op on every array backend (NumPy, array-api-strict,
Dask; CuPy with a GPU), through the calls users make.

For each op with ``samples`` (its first ``N_SAMPLES`` of them, drawn with
``numpy.random.default_rng(0)``; the second runs in ``make slow``), the sample's inputs
are converted to the backend
(``tests/backends.py``) and made a graph as ``autodag.testing.check_op`` makes it:
float inputs become Variables (in float64; Python numbers stay Python numbers),
integer and boolean inputs (labels, masks) Constants, held fixed. Then, one test each:

* ``test_value``: ``autodag.evaluate`` equals the op's NumPy ``forward`` on the
  original inputs (the reference for values), with the same shape and dtype;
* ``test_grad``: ``autodag.grad`` of ``sum(out * w)`` (a random weight ``w``) against
  central differences in float64 of the NumPy forward (``tests/fd.py``), an
  independent reference;
* ``test_gradients``: ``autodag.gradients(out, xs, grad_ys=w)`` evaluated, against the
  same differences;
* ``test_second_order``: the gradient of the gradient's weighted sum (a Hessian-vector
  product, ``gradients(gradients(...), xs, grad_ys=v)``) against finite differences of
  the first derivative, itself differenced from the forward (mixed second
  differences); where those depend on the step (a kink or tie), the product is only
  built and evaluated and its shapes checked, as ``check_op`` does;
* ``test_jvp``: ``autodag.jvp`` along a random tangent against central differences of
  the forward (at a kink or tie, ``<w, J t> = <J^T w, t>`` with the differenced
  gradient);
* ``test_compiled``: ``autodag.compile`` of ``out * w``: value and gradients.

Every result must be an array of the backend (never silently converted), and on Dask a
lazy dask array whose computing autodag left to the test: no graph is computed inside
the autodag calls (``ComputeCounter``). An op with ``array_api=False`` cannot run on a
backend other than NumPy: there every check asserts the ``BackendError`` naming it.
"""

from __future__ import annotations

import copy
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import numpy as np
import pytest

import autodag as ad
from autodag.backend import BackendError
from autodag.opdef import OpDef, Sample
from autodag.registry import RegisteredOp

from .backends import NUMPY, PARAMS, Backend, counting, is_py_number, params
from .fd import numeric_grads
from .isolation import FIRST_PARTY

#: Samples per op: the first ones of its ``samples``.
N_SAMPLES: Final = 2
#: Values: the backend against the NumPy forward.
VALUE_RTOL: Final = 1e-12
VALUE_ATOL: Final = 1e-13
#: First derivatives against central differences (step ``EPS``), as check_op compares.
EPS: Final = 1e-6
RTOL: Final = 1e-4
ATOL: Final = 1e-6
#: Second derivatives against mixed second differences of step ``H2``.
H2: Final = 1e-4
RTOL2: Final = 1e-4
ATOL2: Final = 1e-5
#: Finite differences with a step this many times larger must agree (no kink or tie
#: within the step) for a comparison: check_op's test (autodag.opcheck.numeric).
COARSE: Final = 4.0
STABLE_RTOL: Final = 1e-3
STABLE_ATOL: Final = 1e-4

Array = np.ndarray[Any, Any]


def _first_party(reg: RegisteredOp) -> bool:
    return reg.plugin.builtin or reg.plugin.distribution in FIRST_PARTY


def _is_float(x: Any) -> bool:
    return isinstance(x, float) or np.result_type(x).kind == "f"


# --- the cases: one op sample each, with its NumPy references ----------------------------
@dataclass
class Case:
    """One sample of one op, its NumPy value and the finite-difference references."""

    name: str
    index: int
    opdef: OpDef
    #: The inputs: floats in float64 (Python numbers kept), the others as given.
    values: list[Any]
    attrs: dict[str, Any]
    #: The NumPy forward's value on ``values``.
    out: Any
    #: Positions of the inputs differentiated: floats with a rule.
    wrt: list[int]

    @property
    def id(self) -> str:
        return f"{self.name}-{self.index}"

    def forward(self, values: Sequence[Any]) -> Any:
        """The op's NumPy forward on ``values`` (the reference)."""
        args: tuple[Any, ...] = (list(values),) if self.opdef.arity is None else tuple(values)
        ins, attrs = self.opdef.bind(args, self.attrs)
        return self.opdef.forward(*ins, **attrs)

    def moved(self, xs: Sequence[Any]) -> list[Any]:
        """``values`` with the differentiated inputs replaced by ``xs``."""
        vals = list(self.values)
        for k, x in zip(self.wrt, xs, strict=True):
            vals[k] = x
        return vals

    @property
    def differentiable(self) -> bool:
        return self.opdef.differentiable and _is_float(self.out) and bool(self.wrt)

    @property
    def symbolic(self) -> bool:
        return self.differentiable and self.opdef.symbolic

    def stream(self, purpose: int) -> np.random.Generator:
        """The random stream of one purpose (0: output weights, 1: second-order
        directions, 2: tangents), the same whichever tests run and in what order."""
        return np.random.default_rng([zlib.crc32(self.name.encode()), self.index, purpose])


def _prepared(x: Any) -> Any:
    """A sample input as the tests use it: floats in float64, Python numbers kept."""
    if is_py_number(x):
        return x
    if _is_float(x):
        return np.array(x, dtype=np.float64)
    return copy.deepcopy(x)


@cache
def _case(name: str, index: int) -> Case:
    reg = ad.get_registry().get(name)
    assert isinstance(reg, RegisteredOp)
    opdef = reg.opdef
    assert opdef.samples is not None
    sample: Sample = list(opdef.samples(np.random.default_rng(0)))[index]
    values = [_prepared(x) for x in sample.inputs]
    vjps = opdef.vjps
    wrt = [k for k, v in enumerate(values)
           if _is_float(v) and (vjps is None or vjps[k] is not None)]
    case = Case(name, index, opdef, values, dict(sample.attrs), None, wrt)
    case.out = case.forward(values)
    return case


def _case_names() -> list[tuple[str, int]]:
    out = []
    for name, reg in sorted(ad.get_registry().ops.items()):
        if not _first_party(reg) or reg.opdef.samples is None:
            continue
        n = len(list(reg.opdef.samples(np.random.default_rng(0))))
        out += [(name, k) for k in range(min(N_SAMPLES, n))]
    return out


ALL: Final = [_case(n, k) for n, k in _case_names()]


def _params(pick: Callable[[Case], bool]) -> list[Any]:
    # Each op's first sample in make test, its second in make slow (which CI runs too).
    return [pytest.param(c.name, c.index, id=c.id, marks=[pytest.mark.slow] if c.index else [])
            for c in ALL if pick(c)]


#: Second order and forward mode build the most: their Dask cases run in make slow.
SYMBOLIC_PARAMS: Final = params(slow=("torch", "jax", "dask"))
VALUE_CASES: Final = _params(lambda c: True)
GRAD_CASES: Final = _params(lambda c: c.differentiable)
SYMBOLIC_CASES: Final = _params(lambda c: c.symbolic)


@cache
def _fd_grads(name: str, index: int) -> tuple[Array, list[Array]]:
    """The output weight ``w`` and central differences of ``sum(forward * w)``."""
    case = _case(name, index)
    w = case.stream(0).standard_normal(np.shape(case.out))

    def f(*xs: Any) -> Any:
        return np.asarray(case.forward(case.moved(xs)), dtype=np.float64) * w

    return w, numeric_grads(f, [case.values[k] for k in case.wrt], eps=EPS)


def _stable(fine: Any, coarse: Any) -> bool:
    a, b = np.asarray(fine), np.asarray(coarse)
    return bool(np.all(np.isfinite(a)) and np.allclose(a, b, rtol=STABLE_RTOL,
                                                       atol=STABLE_ATOL))


def _hvp_differences(case: Case, w: Array, vs: Sequence[Array], h: float) -> list[Array]:
    """H v of ``f = sum(forward * w)`` by central differences of the first derivative
    along ``v``, each differenced from ``f``: element i of input k is
    ``(f(x + h e_i + h v) - f(x + h e_i - h v) - f(x - h e_i + h v)
    + f(x - h e_i - h v)) / (4 h^2)``."""
    xs = [np.array(case.values[k], dtype=np.float64) for k in case.wrt]

    def f(moved: Sequence[Array]) -> float:
        return float(np.sum(np.asarray(case.forward(case.moved(moved)), dtype=np.float64) * w))

    def shifted(k: int, idx: tuple[int, ...], a: float, b: float) -> list[Array]:
        out = [np.array(x + b * h * v, dtype=np.float64) for x, v in zip(xs, vs, strict=True)]
        out[k][idx] += a * h
        return out

    result = []
    for k, x in enumerate(xs):
        hv = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            hv[idx] = (f(shifted(k, idx, 1, 1)) - f(shifted(k, idx, 1, -1))
                       - f(shifted(k, idx, -1, 1)) + f(shifted(k, idx, -1, -1))) / (4 * h * h)
        result.append(hv)
    return result


@cache
def _fd_second(name: str, index: int) -> tuple[list[Array], list[Array] | None]:
    """Directions ``v`` and H v by differences, or None where they depend on the step."""
    case = _case(name, index)
    w, _ = _fd_grads(name, index)
    rng = case.stream(1)
    vs = [rng.standard_normal(np.shape(case.values[k])) for k in case.wrt]
    fine = _hvp_differences(case, w, vs, H2)
    coarse = _hvp_differences(case, w, vs, COARSE * H2)
    ok = all(_stable(a, b) for a, b in zip(fine, coarse, strict=True))
    return vs, fine if ok else None


@cache
def _fd_jvp(name: str, index: int) -> tuple[list[Array], Array, bool]:
    """Tangents ``t``, central differences of forward along them, and whether those
    hardly depend on the step."""
    case = _case(name, index)
    rng = case.stream(2)
    ts = [rng.standard_normal(np.shape(case.values[k])) for k in case.wrt]
    xs = [np.array(case.values[k], dtype=np.float64) for k in case.wrt]

    def along(eps: float) -> Array:
        def at(sign: float) -> Array:
            return np.asarray(case.forward(case.moved(
                [x + sign * eps * t for x, t in zip(xs, ts, strict=True)])), dtype=np.float64)
        return (at(1.0) - at(-1.0)) / (2 * eps)

    fine = along(EPS)
    return ts, fine, _stable(fine, along(COARSE * EPS))


# --- running on a backend -----------------------------------------------------------------
@dataclass
class Built:
    """The sample as a graph on a backend: the op node and the Variables of ``wrt``."""

    graph: ad.Graph
    y: ad.Operator
    xs: list[ad.Node]

    def weighted(self, w: Any) -> ad.Node:
        """``y * w``, the weight a Constant of the graph: its gradient is that of
        ``sum(y * w)``."""
        with self.graph:
            z: ad.Node = self.y * ad.Constant(w, name="w")
        return z


def _build(case: Case, backend: Backend) -> Built:
    """The sample on ``backend`` as users build it: Variables and Constants, the op."""
    nodes: list[ad.Node] = []
    variables: dict[int, ad.Node] = {}
    with ad.Graph() as graph:
        for k, v in enumerate(case.values):
            bv = backend.to_backend(v)
            if _is_float(v):
                variables[k] = ad.Variable(bv, name=f"x{k}")
                nodes.append(variables[k])
            else:
                nodes.append(ad.Constant(bv, name=f"c{k}"))
        fn = getattr(ad.ops, case.name)
        y = fn(nodes, **case.attrs) if case.opdef.arity is None else fn(*nodes, **case.attrs)
    return Built(graph, y, [variables[k] for k in case.wrt])


#: What a test runs: build the graph (the nodes that will be evaluated, and the autodag
#: call that evaluates them).
Plan = Callable[[], tuple[Sequence[ad.Node], Callable[[], Any]]]


def _refuses(case: Case, backend: Backend) -> bool:
    """Whether the op cannot run on ``backend`` (and must say so)."""
    return backend is not NUMPY and not case.opdef.array_api


def _names_one(exc: BaseException, names: Sequence[str]) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", str(exc)) for n in names)


def _not_array_api(heads: Sequence[ad.Node]) -> list[str]:
    """The ops with ``array_api=False`` among the nodes ``heads`` depend on."""
    ops = (getattr(n, "op", None) for n in ad.topological_sort(list(heads)))
    return sorted({op.name for op in ops if isinstance(op, OpDef) and not op.array_api})


def _run(case: Case, backend: Backend, what: str, plan: Plan) -> Any:
    """Build and run ``plan`` on ``backend``; None when the run was refused, as it must
    be, for an op with ``array_api=False``.

    Such an op on a backend other than NumPy must be a BackendError naming it (or,
    for a derivative graph without the op's own forward, naming an op of that graph
    which has ``array_api=False``); a derivative graph with no such op must simply
    work. On Dask no graph may be computed inside the autodag calls.
    """
    refused = _refuses(case, backend)
    with counting(backend) as counter:
        try:
            heads, call = plan()
        except BackendError as exc:
            if not refused:
                raise
            assert _names_one(exc, [case.name]), (
                f"the BackendError for op {case.name!r} (array_api=False) on {backend.name} "
                f"does not name the op: {exc}")
            return None
        offenders = _not_array_api(heads) if refused else []
        if offenders:
            with pytest.raises(BackendError) as info:
                call()
            assert _names_one(info.value, offenders), (
                f"the BackendError of {what} for op {case.name!r} (array_api=False) on "
                f"{backend.name} names none of the graph's ops with array_api=False "
                f"({', '.join(offenders)}): {info.value}")
            return None
        result = call()
    assert counter.count == 0, (
        f"{what} of op {case.id} on {backend.name} computed {counter.count} dask graph(s) "
        f"inside autodag; results must stay lazy")
    return result


def _owned(case: Case, backend: Backend, value: Any, what: str,
           zero_scalar: bool = False) -> None:
    """A result must be an array of ``backend`` (lazy on Dask: not computed yet).

    With ``zero_scalar``, a derivative of a 0-d input that is structurally zero may be
    the Python number 0.0: autodag's zeros constant, on every backend (NumPy's too);
    Python numbers mix with all of them.
    """
    if not (zero_scalar and is_py_number(value) and value == 0):
        assert backend.owns(value), (
            f"{what} is a {type(value).__module__}.{type(value).__qualname__}, not an "
            f"array of the backend")


def _close(got: Any, want: Any, what: str, rtol: float, atol: float) -> None:
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert g.shape == w.shape, f"{what}: shape {g.shape}, expected {w.shape}"
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=what)


def _gradients_right(case: Case, backend: Backend, got: Sequence[Any], want: Sequence[Array],
                     what: str) -> None:
    """Gradients of the inputs ``wrt``: arrays of the backend, then (computed) of the
    inputs' shapes, float64, equal to the differences ``want``."""
    assert len(got) == len(case.wrt), f"{what}: {len(got)} gradients for {len(case.wrt)}"
    zero_ok = [np.shape(case.values[k]) == () for k in case.wrt]
    for k, g, z in zip(case.wrt, got, zero_ok, strict=True):
        _owned(case, backend, g, f"{what} of input {k}", z)
    for k, g, fd in zip(case.wrt, backend.materialize(list(got)), want, strict=True):
        g_np = backend.to_numpy(g)
        w = f"{what} of input {k}"
        assert g_np.shape == np.shape(case.values[k]), (
            f"{w}: shape {g_np.shape}, input {np.shape(case.values[k])}")
        assert g_np.dtype == np.float64, f"{w}: dtype {g_np.dtype}, not float64"
        _close(g_np, fd, f"{w} against central differences", RTOL, ATOL)


# --- the tests ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", PARAMS)
@pytest.mark.parametrize(("name", "index"), VALUE_CASES)
def test_value(name: str, index: int, backend: Backend) -> None:
    case = _case(name, index)

    def plan() -> Any:
        b = _build(case, backend)
        return [b.y], lambda: ad.evaluate(b.y)

    got = _run(case, backend, "evaluate", plan)
    if got is None:
        return
    what = f"value of op {case.id} on {backend.name}"
    _owned(case, backend, got, what)
    got = backend.to_numpy(backend.materialize(got))
    want = np.asarray(case.out)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, NumPy {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, NumPy {want.dtype}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=VALUE_RTOL, atol=VALUE_ATOL,
                                   equal_nan=True, err_msg=what)


@pytest.mark.parametrize("backend", PARAMS)
@pytest.mark.parametrize(("name", "index"), GRAD_CASES)
def test_grad(name: str, index: int, backend: Backend) -> None:
    case = _case(name, index)
    w, want = _fd_grads(name, index)

    def plan() -> Any:
        b = _build(case, backend)
        z = b.weighted(backend.to_backend(w))
        return [z], lambda: ad.grad(z, b.xs)

    got = _run(case, backend, "grad", plan)
    if got is not None:
        _gradients_right(case, backend, got, want, f"grad of op {case.id} on {backend.name}")


@pytest.mark.parametrize("backend", PARAMS)
@pytest.mark.parametrize(("name", "index"), GRAD_CASES)
def test_gradients(name: str, index: int, backend: Backend) -> None:
    case = _case(name, index)
    w, want = _fd_grads(name, index)

    def plan() -> Any:
        b = _build(case, backend)
        gs = ad.gradients(b.y, b.xs, grad_ys=backend.to_backend(w))
        return gs, lambda: ad.evaluate(gs)

    got = _run(case, backend, "gradients evaluated", plan)
    if got is not None:
        _gradients_right(case, backend, got, want,
                         f"autodag.gradients of op {case.id} on {backend.name}")


@pytest.mark.parametrize("backend", SYMBOLIC_PARAMS)
@pytest.mark.parametrize(("name", "index"), SYMBOLIC_CASES)
def test_second_order(name: str, index: int, backend: Backend) -> None:
    case = _case(name, index)
    w, _ = _fd_grads(name, index)
    vs, want = _fd_second(name, index)

    def plan() -> Any:
        b = _build(case, backend)
        gs = ad.gradients(b.y, b.xs, grad_ys=backend.to_backend(w))
        hv = ad.gradients(gs, b.xs, grad_ys=[backend.to_backend(v) for v in vs])
        return hv, lambda: ad.evaluate(hv)

    got = _run(case, backend, "the Hessian-vector product", plan)
    if got is None:
        return
    assert len(got) == len(case.wrt)
    what_k = [f"Hessian-vector product for input {k} of op {case.id} on {backend.name}"
              for k in case.wrt]
    for k, hv, what in zip(case.wrt, got, what_k, strict=True):
        _owned(case, backend, hv, what, zero_scalar=np.shape(case.values[k]) == ())
    got = backend.materialize(list(got))
    for j, (k, hv, what) in enumerate(zip(case.wrt, got, what_k, strict=True)):
        hv_np = backend.to_numpy(hv)
        assert hv_np.shape == np.shape(case.values[k]), (
            f"{what}: shape {hv_np.shape}, input {np.shape(case.values[k])}")
        if want is not None:  # else a kink or tie within the step: evaluated only
            _close(hv_np, want[j], f"{what} against differences of the first derivative",
                   RTOL2, ATOL2)


@pytest.mark.parametrize("backend", SYMBOLIC_PARAMS)
@pytest.mark.parametrize(("name", "index"), SYMBOLIC_CASES)
def test_jvp(name: str, index: int, backend: Backend) -> None:
    case = _case(name, index)
    ts, want, stable = _fd_jvp(name, index)

    def plan() -> Any:
        b = _build(case, backend)
        tb = [backend.to_backend(t) for t in ts]
        # The tangent graph, to see which ops it holds (ad.jvp builds its own).
        heads = ad.jvp_nodes(b.y, b.xs, tb) if _refuses(case, backend) else []
        return heads, lambda: ad.jvp(b.y, b.xs, tb)

    got = _run(case, backend, "jvp", plan)
    if got is None:
        return
    what = f"jvp of op {case.id} on {backend.name}"
    _owned(case, backend, got, what)
    got = backend.to_numpy(backend.materialize(got))
    if stable:
        _close(got, want, f"{what} against central differences", RTOL, ATOL)
        return
    # A kink or tie within the step: <w, J t> = <J^T w, t>, J^T w by differences.
    w, grads = _fd_grads(name, index)
    assert got.shape == np.shape(case.out), f"{what}: shape {got.shape}"
    lhs = float(np.sum(got * w))
    terms = [g * t for g, t in zip(grads, ts, strict=True)]
    rhs = float(sum(np.sum(t) for t in terms))
    scale = float(np.sum(np.abs(got * w))) + sum(float(np.sum(np.abs(t))) for t in terms)
    assert abs(lhs - rhs) <= ATOL + RTOL * scale, (
        f"{what}: <w, J t> = {lhs:.10g}, <J^T w, t> = {rhs:.10g} by differences")


@pytest.mark.parametrize("backend", PARAMS)
@pytest.mark.parametrize(("name", "index"), GRAD_CASES)
def test_compiled(name: str, index: int, backend: Backend) -> None:
    case = _case(name, index)
    w, want = _fd_grads(name, index)

    def plan() -> Any:
        b = _build(case, backend)
        z = b.weighted(backend.to_backend(w))
        return [z], lambda: ad.compile(z, wrt=b.xs)()

    got = _run(case, backend, "a compiled program", plan)
    if got is None:
        return
    value, grads = got
    what = f"compiled program of op {case.id} on {backend.name}"
    _owned(case, backend, value, f"{what}: value")
    _gradients_right(case, backend, grads, want, f"{what}: gradient")
    _close(backend.to_numpy(backend.materialize(value)),
           np.asarray(case.out, dtype=np.float64) * w, f"{what}: value", VALUE_RTOL, VALUE_ATOL)


# --- the suite itself ---------------------------------------------------------------------
def test_every_first_party_op_is_covered() -> None:
    """No built-in or first-party op escapes the suite for want of samples."""
    missing = [name for name, reg in sorted(ad.get_registry().ops.items())
               if _first_party(reg) and reg.opdef.samples is None]
    assert not missing, f"ops without samples, so not run on the backends: {missing}"
    covered = {c.name for c in ALL}
    assert covered == {name for name, reg in ad.get_registry().ops.items()
                       if _first_party(reg)}


@pytest.mark.parametrize("backend", PARAMS)
def test_conversions(backend: Backend) -> None:
    """What the tests hand each backend: its own arrays (Dask: two chunks or more along
    axis 0), Python numbers as they are, and back to NumPy unchanged."""
    a = np.arange(6.0).reshape(3, 2)
    b = backend.to_backend(a)
    assert backend.owns(b)
    if backend.lazy:
        assert len(b.chunks[0]) >= 2
    np.testing.assert_array_equal(backend.to_numpy(b), a)
    assert backend.to_backend(0.5) == 0.5 and type(backend.to_backend(0.5)) is float
    assert backend.owns(backend.to_backend(np.float64(2.0)))
    np.testing.assert_array_equal(backend.to_numpy(backend.to_backend(np.array([True]))),
                                  [True])
