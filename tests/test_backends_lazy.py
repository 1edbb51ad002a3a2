"""Dask stays lazy; libraries never mix or convert silently.

On Dask, the loss of a linear model, ``mean((X @ w + b - y)**2)``, and of the demo's
MLP (``autodag.demo.train_spirals``: two tanh layers, softmax cross-entropy), with the
data as row-chunked dask arrays and the parameters small NumPy arrays: ``evaluate``,
``grad``, ``gradients`` (evaluated) and a compiled program (``autodag.compile``) return
dask arrays, and computing nothing (a ``dask.callbacks.Callback`` counts every graph
computed); then one ``dask.compute`` of the loss and gradients gives the NumPy run's
numbers. The same models on array-api-strict (CuPy with a GPU), parameters included,
give that library's arrays and the same numbers; Python operators take the backend's
arrays as operands.

Mixing libraries autodag cannot compute together (NumPy or Dask with array-api-strict
or CuPy) is a ``BackendError`` naming both nodes; an op with ``array_api=False`` on
another library's arrays is a ``BackendError`` naming it, with nothing computed; torch
tensors and JAX arrays work through array-api-compat, interpreted and compiled, and
stay tensors and JAX arrays (skipped when the library is not installed); an object no array
library owns (a list of strings, a ``memoryview``, an object of a class of one's own)
is an ``AutodagError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import pytest

import autodag as ad
from autodag.backend import BackendError
from autodag.demo import two_spirals

from .backends import BACKENDS, DASK, Backend, ComputeCounter, da, dask, params

RTOL: Final = 1e-10
ATOL: Final = 1e-12
#: Rows of the data, and rows per chunk: several chunks along axis 0.
ROWS: Final = 64
CHUNK: Final = 16

Array = np.ndarray[Any, Any]


def _rows(a: Array) -> Any:
    """``a`` as a dask array chunked along its rows."""
    return da.from_array(a, chunks=(CHUNK, *a.shape[1:]))


# --- the models ---------------------------------------------------------------------------
#: A model: data values in, (loss node, parameter nodes, inputs, feed) out. ``entry``
#: says how the data enters: "constants" (full static shapes), "placeholders" with full
#: declared shapes, or "batch" placeholders of shape (None, ...) as the demo declares.
#: ``param`` makes a parameter's value: NumPy on NumPy and Dask (Dask computes with
#: NumPy arrays next to its own), the backend's own array on the others.
Param = Callable[[Any], Any]
Model = Callable[[Sequence[Any], str, Param], tuple[ad.Node, list[ad.Node], list[ad.Node],
                                                      dict[ad.Node, Any]]]


def _numpy_param(value: Any) -> Any:
    return value


def _data_nodes(data: Sequence[Any], entry: str, names: Sequence[str],
                dtypes: Sequence[Any]) -> tuple[list[ad.Node], list[ad.Node],
                                                dict[ad.Node, Any]]:
    nodes: list[ad.Node] = []
    inputs: list[ad.Node] = []
    feed: dict[ad.Node, Any] = {}
    for value, name, dtype in zip(data, names, dtypes, strict=True):
        if entry == "constants":
            nodes.append(ad.Constant(value, name=name))
            continue
        shape = tuple(value.shape)
        if entry == "batch":
            shape = (None, *shape[1:])
        p = ad.Placeholder(name=name, dtype=dtype, shape=shape)
        nodes.append(p)
        inputs.append(p)
        feed[p] = value
    return nodes, inputs, feed


LINEAR_RNG: Final = np.random.default_rng(11)
LINEAR_X: Final = LINEAR_RNG.standard_normal((ROWS, 3))
LINEAR_Y: Final = LINEAR_X @ np.array([0.5, -1.0, 2.0]) + 0.1 * LINEAR_RNG.standard_normal(ROWS)
LINEAR_W: Final = np.array([0.1, 0.2, -0.3])
LINEAR_B: Final = np.array(0.25)


def linear_model(data: Sequence[Any], entry: str, param: Param = _numpy_param) -> tuple[
        ad.Node, list[ad.Node], list[ad.Node], dict[ad.Node, Any]]:
    """``mean((X @ w + b - y)**2)``: w, b NumPy Variables; X, y as ``entry`` says."""
    with ad.Graph():
        (x, y), inputs, feed = _data_nodes(data, entry, ["X", "y"], [float, float])
        w = ad.Variable(param(LINEAR_W.copy()), name="w")
        b = ad.Variable(param(LINEAR_B.copy()), name="b")
        loss = ad.ops.mean((x @ w + b - y) ** 2, name="loss")
    return loss, [w, b], inputs, feed


MLP_RNG: Final = np.random.default_rng(5)
MLP_FEATURES, MLP_LABELS = two_spirals(ROWS // 2, MLP_RNG)
HIDDEN: Final = 8


def _layer(rng: np.random.Generator, n_in: int, n_out: int, gain: float, k: int,
           param: Param) -> tuple[ad.Variable, ad.Variable]:
    w = ad.Variable(param(rng.normal(0.0, gain / np.sqrt(n_in), (n_in, n_out))), name=f"W{k}")
    return w, ad.Variable(param(rng.normal(0.0, 0.1, n_out)), name=f"b{k}")


def mlp_model(data: Sequence[Any], entry: str, param: Param = _numpy_param) -> tuple[
        ad.Node, list[ad.Node], list[ad.Node], dict[ad.Node, Any]]:
    """The demo's model (``train_spirals``), its parameters NumPy Variables."""
    rng = np.random.default_rng(3)
    with ad.Graph():
        (x, t), inputs, feed = _data_nodes(data, entry, ["x", "labels"], [float, np.int64])
        w1, b1 = _layer(rng, 2, HIDDEN, 3.0, 1, param)
        w2, b2 = _layer(rng, HIDDEN, HIDDEN, 1.0, 2, param)
        w3, b3 = _layer(rng, HIDDEN, 2, 1.0, 3, param)
        h1 = ad.ops.tanh(x @ w1 + b1, name="h1")
        h2 = ad.ops.tanh(h1 @ w2 + b2, name="h2")
        logits = h2 @ w3 + b3
        loss = ad.ops.mean(ad.ops.softmax_cross_entropy(logits, t), name="loss")
    return loss, [w1, b1, w2, b2, w3, b3], inputs, feed


MODELS: Final = {
    "linear": (linear_model, (LINEAR_X, LINEAR_Y)),
    "mlp": (mlp_model, (MLP_FEATURES, MLP_LABELS)),
}


#: How the data enters the graph (see ``Model``).
ENTRIES: Final = ["constants", "placeholders", "batch"]


def _every_path(model: Model, data: Sequence[Any], entry: str,
                param: Param = _numpy_param) -> dict[str, tuple[Any, list[Any]]]:
    """(loss, gradients) by evaluate + grad, gradients evaluated, a compiled program."""
    loss, params, inputs, feed = model(data, entry, param)
    out: dict[str, tuple[Any, list[Any]]] = {
        "evaluate/grad": (ad.evaluate(loss, feed), ad.grad(loss, params, feed)),
        "compile": ad.compile(loss, wrt=params, inputs=inputs)(*(feed[p] for p in inputs)),
    }
    if entry != "batch":  # gradients as nodes need static shapes
        gs = ad.gradients(loss, params)
        out["gradients"] = (None, list(ad.evaluate(gs, feed)))
    return out


def test_the_counter_sees_every_compute() -> None:
    """The counter is not blind: explicit computes and the implicit ones (NumPy
    conversion, ``float``, ``bool``) are all counted, a distributed default aside."""
    x = _rows(LINEAR_X)
    with ComputeCounter() as counter:
        x.sum().compute()
        np.asarray(x)
        float(x[0, 0])
        bool(x[0, 0] > 0)
    assert counter.count == 4


def _flat(results: dict[str, tuple[Any, list[Any]]]) -> list[tuple[str, Any]]:
    """Every result with a label: the loss (where the path gives it), each gradient."""
    out: list[tuple[str, Any]] = []
    for path, (loss, grads) in results.items():
        if loss is not None:
            out.append((f"{path}: loss", loss))
        out += [(f"{path}: gradient {k}", g) for k, g in enumerate(grads)]
    return out


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_dask_lazy_and_right(model_name: str, entry: str) -> None:
    model, data = MODELS[model_name]
    want = _flat(_every_path(model, data, entry))
    with ComputeCounter() as inside:
        got = _flat(_every_path(model, [_rows(a) for a in data], entry))
    assert inside.count == 0, (
        f"{model_name} ({entry}): {inside.count} dask graph(s) computed inside autodag")
    assert [label for label, _ in got] == [label for label, _ in want]
    for label, v in got:
        assert isinstance(v, da.Array), (
            f"{model_name} ({entry}), {label} is a {type(v).__module__}."
            f"{type(v).__qualname__}, not a lazy dask array")
    with ComputeCounter() as computing:
        done = dask.compute(*(v for _, v in got))
    assert computing.count == 1, f"one dask.compute ran {computing.count} graphs"
    for (label, w), g in zip(want, done, strict=True):
        what = f"{model_name} ({entry}), {label}"
        g = np.asarray(g)
        assert g.shape == np.shape(w), f"{what}: shape {g.shape}, NumPy {np.shape(w)}"
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=what)


@pytest.mark.parametrize("backend", params("strict", "cupy", "torch", "jax",
                                           slow=("torch", "jax")))
@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_models_on_eager_backends(model_name: str, entry: str, backend: Backend) -> None:
    """The same models with data and parameters arrays of array-api-strict (CuPy with a
    GPU): results of that library, equal to the NumPy run's."""
    model, data = MODELS[model_name]
    want = _flat(_every_path(model, data, entry))
    got = _flat(_every_path(model, [backend.to_backend(a) for a in data], entry,
                            backend.to_backend))
    assert [label for label, _ in got] == [label for label, _ in want]
    for (label, w), (_, g) in zip(want, got, strict=True):
        what = f"{model_name} ({entry}) on {backend.name}, {label}"
        assert backend.owns(g), f"{what} is a {type(g).__module__}.{type(g).__qualname__}"
        g_np = backend.to_numpy(g)
        assert g_np.shape == np.shape(w), f"{what}: shape {g_np.shape}, NumPy {np.shape(w)}"
        np.testing.assert_allclose(g_np, w, rtol=RTOL, atol=ATOL, err_msg=what)


def test_dask_gradients_keep_the_chunks() -> None:
    """The data's chunks survive: the per-row gradient of the linear model's residual
    is chunked like the rows (nothing was gathered into one piece)."""
    with ComputeCounter() as inside, ad.Graph():
        x = ad.Variable(_rows(LINEAR_X), name="X")
        w = ad.Variable(LINEAR_W.copy(), name="w")
        loss = ad.ops.mean((x @ w - ad.Constant(_rows(LINEAR_Y), name="y")) ** 2)
        gx, gw = ad.grad(loss, [x, w])
    assert inside.count == 0
    assert isinstance(gx, da.Array) and isinstance(gw, da.Array)
    assert gx.chunks[0] == (CHUNK,) * (ROWS // CHUNK)


def test_dask_spread_gradient_is_made_where_it_is_read() -> None:
    """mean's gradient spread over chunked rows is a dask.array.full (no task, memory or
    data dependency of its own: the tasks that read it make each chunk as a view), yet
    the gradient handed to the user is an ordinary array of its own, with the right
    dtype and numbers (1/n everywhere, by hand)."""
    for dtype in (np.float64, np.float32):
        with ComputeCounter() as inside, ad.Graph():
            x = ad.Placeholder(name="X", shape=(ROWS, 3))
            loss = ad.ops.mean(x)
            feed = {x: _rows(np.ones((ROWS, 3), dtype=dtype))}
            gx: Any = ad.grad(loss, [x], feed_dict=feed)[0]
        assert inside.count == 0
        assert gx.chunks[0] == (CHUNK,) * (ROWS // CHUNK)
        layers = sorted(dict(gx.dask.layers))
        assert not any(name.startswith("zeros_like") for name in layers), layers
        got = gx.compute()
        assert got.dtype == dtype and got.flags.writeable and got.strides[0] != 0
        np.testing.assert_array_equal(got, np.full((ROWS, 3), 1 / (3 * ROWS), dtype=dtype))
    spread = ad.backend.broadcast_as(da, 0.5, _rows(np.ones((ROWS, 2), dtype=np.float32)))
    assert spread.dtype == np.float32 and spread.chunks[0] == (CHUNK,) * (ROWS // CHUNK)
    block = dask.get(dict(spread.__dask_graph__()), (spread.name, 0, 0))
    assert block.shape == (CHUNK, 2) and block.strides == (0, 0), "a view of one number"
    np.testing.assert_array_equal(block, 0.5)
    assert not dict(spread.dask.dependencies).get(spread.name), "it depends on no data"


# --- operators with another library's arrays as operands ---------------------------------
@pytest.mark.parametrize("backend_name", ["strict", "dask"])
def test_operators_take_backend_arrays(backend_name: str) -> None:
    """``node <op> array`` with arrays of the run's backend, and on Dask ``array <op>
    node`` too (array-api-strict's own operators raise TypeError for an operand that is
    not theirs instead of deferring to it, so there the node must come first)."""
    b = BACKENDS[backend_name]
    a_np, c_np = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, -1.0, 2.0, 3.0])
    want = 2 * a_np * c_np - a_np / (c_np**2 + 1) + (a_np - c_np) ** 2
    want_grad = 2 * c_np - 1 / (c_np**2 + 1) + 2 * (a_np - c_np)
    with ComputeCounter() as inside, ad.Graph():
        x = ad.Variable(b.to_backend(a_np), name="x")
        c = b.to_backend(c_np)
        if backend_name == "dask":
            z = x * c + c * x - x / (c * c + 1.0) + (c - x) ** 2
        else:
            z = x * c + x * c - x / (c * c + 1.0) + (x - c) ** 2
        value = ad.evaluate(z)
        (gx,) = ad.grad(z, [x])
    assert inside.count == 0
    assert b.owns(value) and b.owns(gx)
    np.testing.assert_allclose(b.to_numpy(value), want, rtol=RTOL)
    np.testing.assert_allclose(b.to_numpy(gx), want_grad, rtol=RTOL)


# --- libraries that do not mix -----------------------------------------------------------
def _mixed(first: Any, second: Any, feed: bool) -> Callable[[], Any]:
    def run() -> Any:
        with ad.Graph():
            a = ad.Variable(first, name="first_weights")
            if feed:
                p = ad.Placeholder(name="second_data", shape=(3,))
                z = a * p
                return ad.evaluate(z, {p: second}), ad.grad(z, [a], {p: second})
            s = ad.Variable(second, name="second_data")
            z = a * s
            return ad.evaluate(z), ad.grad(z, [a, s])
    return run


@pytest.mark.parametrize("feed", [False, True], ids=["variables", "fed"])
@pytest.mark.parametrize("second", params("strict", "cupy"))
@pytest.mark.parametrize("first", ["numpy", "dask"])
def test_mixing_libraries_names_both_nodes(first: str, second: Backend, feed: bool) -> None:
    """NumPy or Dask values with array-api-strict's (or CuPy's) in one run."""
    value = np.array([1.0, 2.0, 3.0])
    left = value if first == "numpy" else DASK.to_backend(value)
    with pytest.raises(BackendError) as info:
        _mixed(left, second.to_backend(value), feed)()
    msg = str(info.value)
    assert isinstance(info.value, ad.AutodagError)
    assert "first_weights" in msg and "second_data" in msg, msg


# --- an op that runs on NumPy only ---------------------------------------------------------
NUMPY_ONLY: Final = ad.OpDef(
    name="numpy_only_square", arity=1, forward=np.square,
    backward=(lambda xp, g, out, a: 2.0 * g * a,),
)


@pytest.fixture
def numpy_only_op() -> Any:
    """A throwaway plugin with one op of ``array_api=False`` (the default)."""

    class Plugin:
        @ad.hookimpl
        def autodag_register_ops(self) -> list[ad.OpDef]:
            return [NUMPY_ONLY]

    name = ad.register_plugin(Plugin(), name="numpy-only-backends")
    try:
        yield
    finally:
        ad.unregister_plugin(name)


@pytest.mark.parametrize("call", ["evaluate", "grad", "gradients", "compile"])
@pytest.mark.parametrize("backend", params("strict", "dask", "cupy"))
def test_numpy_only_op_is_refused_by_name(numpy_only_op: None, backend: Backend,
                                          call: str) -> None:
    """An op with ``array_api=False`` on another library's arrays: a BackendError naming
    it, from every entry point that runs its forward, and nothing converted (on Dask:
    nothing computed)."""
    assert not NUMPY_ONLY.array_api
    a = np.array([1.0, -2.0, 3.0])
    with ComputeCounter() as inside, pytest.raises(BackendError) as info:
        with ad.Graph():
            x = ad.Variable(backend.to_backend(a), name="x")
            y = ad.ops.get("numpy_only_square")(x) * 2.0
        if call == "evaluate":
            ad.evaluate(y)
        elif call == "grad":
            ad.grad(y, [x])
        elif call == "gradients":  # with the value, which needs the forward
            ad.evaluate([y, *ad.gradients(y, [x], grad_ys=backend.to_backend(np.ones(3)))])
        else:
            ad.compile(y, wrt=[x])()
    assert "numpy_only_square" in str(info.value), info.value
    assert inside.count == 0, f"{inside.count} dask graph(s) computed before the refusal"


@pytest.mark.parametrize("backend", params("strict", "dask", "cupy"))
def test_numpy_only_op_derivatives_without_its_forward(numpy_only_op: None,
                                                       backend: Backend) -> None:
    """Derivative graphs that do not hold the op's forward (its backward rule is written
    against ``xp``) run on any backend: forward mode, and the gradient nodes alone."""
    a, t = np.array([1.0, -2.0, 3.0]), np.array([0.5, 1.0, -1.0])
    with ComputeCounter() as inside:
        with ad.Graph():
            x = ad.Variable(backend.to_backend(a), name="x")
            y = ad.ops.get("numpy_only_square")(x) * 2.0
        tangent = ad.jvp(y, [x], [backend.to_backend(t)])
        (grad,) = ad.evaluate(ad.gradients(y, [x], grad_ys=backend.to_backend(t)))
    assert inside.count == 0
    for got in (tangent, grad):
        assert backend.owns(got), type(got)
        np.testing.assert_allclose(backend.to_numpy(got), 4.0 * a * t, rtol=RTOL)


def test_numpy_only_op_runs_on_numpy(numpy_only_op: None) -> None:
    with ad.Graph():
        x = ad.Variable(np.array([1.0, -2.0, 3.0]), name="x")
        y = ad.ops.get("numpy_only_square")(x) * 2.0
    np.testing.assert_array_equal(ad.evaluate(y), [2.0, 8.0, 18.0])
    np.testing.assert_array_equal(ad.grad(y, [x])[0], [4.0, -8.0, 12.0])


# --- torch and JAX: through array-api-compat --------------------------------------------
def _foreign_run(x: Any, x_np: Array, owns: Callable[[Any], bool], library: str,
                 rtol: float) -> None:
    """A small graph on ``x``: evaluated, differentiated and compiled, its results are
    arrays of its own library (never silently converted) equal to NumPy's."""
    def build(v: Any) -> tuple[ad.Node, ad.Node]:
        with ad.Graph():
            node = ad.Variable(v, name="x")
            return ad.ops.sum(ad.ops.tanh(node) * node + node * node), node

    y_np, node_np = build(x_np)
    want = (ad.evaluate(y_np), ad.grad(y_np, [node_np])[0])
    y, node = build(x)
    value, (grad,) = ad.compile(y, [node])()
    runs = {"interpreted": (ad.evaluate(y), ad.grad(y, [node])[0]), "compiled": (value, grad)}
    for how, got in runs.items():
        for g, w in zip(got, want, strict=True):
            kind = f"{type(g).__module__}.{type(g).__name__}"
            assert owns(g), f"{how}: a {library} run returned a {kind}"
            np.testing.assert_allclose(np.asarray(g), w, rtol=rtol, err_msg=how)


def test_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    x_np = np.array([0.5, -1.0, 2.0])
    _foreign_run(torch.asarray(x_np, dtype=torch.float64), x_np,
                 lambda v: isinstance(v, torch.Tensor), "torch", 1e-12)


def test_jax_arrays() -> None:
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    x_np = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    _foreign_run(jnp.asarray(x_np), x_np.astype(np.float64),
                 lambda v: isinstance(v, jax.Array), "jax", 1e-5)


# --- objects no array library owns ------------------------------------------------------
class Opaque:
    """An object of a class of one's own: not a number, not an array."""


class BadNamespace:
    """Claims to be an array-API array, but its namespace cannot be had."""

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        raise RuntimeError("no namespace here")

    dtype = "float64"
    shape = (3,)


@pytest.mark.parametrize(("value", "mentions"), [
    (["a", "b"], "numeric"),
    (memoryview(b"abc"), "memoryview"),
    (Opaque(), "Opaque"),
    (BadNamespace(), "BadNamespace"),
], ids=["strings", "memoryview", "opaque", "bad-namespace"])
@pytest.mark.parametrize("how", ["variable", "feed"])
def test_unsupported_objects_are_clear_errors(value: Any, mentions: str, how: str) -> None:
    with pytest.raises(ad.AutodagError) as info, ad.Graph():
        if how == "variable":
            x: ad.Node = ad.Variable(value, name="bad")
            ad.evaluate(x * 2.0)
        else:
            x = ad.Placeholder(name="bad")
            ad.evaluate(x * 2.0, {x: value})
    msg = str(info.value)
    assert "bad" in msg and mentions in msg, msg
