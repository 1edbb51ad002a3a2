"""``autodag.save`` / ``autodag.load``: what a graph file keeps (outputs' form, names,
declarations, exact value kinds, attributes, sites, metadata), and what cannot be saved
(a SaveError, nothing written). Hostile files are in test_saving_hostile.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.optim import Adam

# --- what a file keeps ---


def _model(rows: int | None = None) -> tuple[dict[str, ad.Node], ad.Node]:
    """loss = sum((data @ w + b) ** 2): a float32 placeholder of declared shape (rows, 2),
    a Variable matrix, a Python-float Variable; its value and gradients are checked
    against NumPy's below."""
    with ad.Graph():
        data = ad.Placeholder("data", dtype=np.float32, shape=(rows, 2))
        w = ad.Variable(np.array([[1.0, -1.0], [0.5, 2.0]]), name="w")
        b = ad.Variable(0.25, name="b")
        y = data @ w + b
        loss = ad.ops.sum(y * y, name="loss")
    return {"data": data, "w": w, "b": b, "y": y}, loss


DATA = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]], dtype=np.float32)


def _numpy_loss_and_grads(w: np.ndarray, b: float) -> tuple[float, np.ndarray, float]:
    y = DATA.astype(np.float64) @ w + b
    return float(np.sum(y * y)), DATA.astype(np.float64).T @ (2 * y), float(np.sum(2 * y))


def test_single_output_loads_as_a_node_and_list_as_a_list(tmp_path: Path) -> None:
    nodes, loss = _model()
    ad.save(tmp_path / "one.adg", loss)
    ad.save(tmp_path / "list1.adg", [loss])
    ad.save(tmp_path / "two.adg", [loss, nodes["y"]])
    one = ad.load(tmp_path / "one.adg")
    assert isinstance(one.outputs, ad.Operator) and one.outputs.name == "loss"
    list1 = ad.load(tmp_path / "list1.adg")
    assert isinstance(list1.outputs, list) and [o.name for o in list1.outputs] == ["loss"]
    two = ad.load(tmp_path / "two.adg")
    assert isinstance(two.outputs, list)
    assert [o.name for o in two.outputs] == ["loss", nodes["y"].name]
    loss2, y2 = two.outputs
    assert isinstance(loss2, ad.Operator) and isinstance(loss2.inputs[0], ad.Operator)
    assert loss2.inputs[0].inputs == (y2, y2)  # y * y: the output node itself, shared
    assert all(n.graph is one.graph for n in one.nodes) and one.graph is not loss.graph
    want, _, _ = _numpy_loss_and_grads(nodes["w"].value, 0.25)
    feed = {one["data"]: DATA}
    assert float(ad.evaluate(one.outputs, feed)) == pytest.approx(want, rel=1e-6)


def test_names_variables_and_placeholders(tmp_path: Path) -> None:
    nodes, loss = _model()
    ad.save(tmp_path / "m.adg", loss)
    loaded = ad.load(tmp_path / "m.adg")
    assert [v.name for v in loaded.variables] == ["w", "b"]
    assert [p.name for p in loaded.placeholders] == ["data"]
    assert [n.name for n in loaded] == [n.name for n in loaded.nodes]
    assert len(loaded.nodes) == len(loss.graph.nodes)
    assert loaded["w"] is loaded.variables[0]
    np.testing.assert_array_equal(loaded["w"].value, nodes["w"].value)
    with pytest.raises(KeyError, match="no node named 'nope'"):
        loaded["nope"]


def test_ambiguous_name_is_a_key_error(tmp_path: Path) -> None:
    with ad.Graph():
        a = ad.Variable(1.0, name="w")
        b = ad.Variable(2.0, name="w")
    ad.save(tmp_path / "twice.adg", [a + b])
    loaded = ad.load(tmp_path / "twice.adg")
    with pytest.raises(KeyError, match="2 nodes named 'w'"):
        loaded["w"]
    assert [v.value for v in loaded.variables] == [1.0, 2.0]


def test_new_nodes_on_a_loaded_graph_get_fresh_default_names(tmp_path: Path) -> None:
    with ad.Graph():
        x = ad.Variable(1.0)
        y = x * 2.0
    ad.save(tmp_path / "d.adg", y)
    loaded = ad.load(tmp_path / "d.adg")
    assert isinstance(loaded.outputs, ad.Node)
    with loaded.graph:
        z = ad.Variable(3.0)
        w = loaded.outputs * 3.0
    assert [z.name, w.name] == ["Var/1", "mul/1"]
    assert len({n.name for n in loaded.graph.nodes}) == len(loaded.graph.nodes) == 6
    assert float(ad.evaluate(w)) == 6.0


def test_placeholder_declarations_are_restored(tmp_path: Path) -> None:
    with ad.Graph():
        exact = ad.Placeholder("exact", dtype=np.float32, shape=(None, 2))
        loose = ad.Placeholder("loose")
        fixed = ad.Placeholder("fixed", dtype=np.int64, shape=(3,))
        out = ad.ops.sum(exact) + loose + ad.ops.sum(fixed)
    ad.save(tmp_path / "p.adg", out)
    loaded = ad.load(tmp_path / "p.adg")
    e, lo, f = (loaded[k] for k in ("exact", "loose", "fixed"))
    assert isinstance(e, ad.Placeholder) and isinstance(lo, ad.Placeholder)
    assert isinstance(f, ad.Placeholder)
    assert (e.dtype, e.declared_shape) == (np.float32, (None, 2))
    assert (lo.dtype, lo.declared_shape) == (np.float64, None)
    assert (f.dtype, f.declared_shape, f.shape) == (np.int64, (3,), (3,))
    # An exact dtype converts what is fed; the default keeps any floating precision.
    assert e.check_feed(np.ones((4, 2))).dtype == np.float32
    assert lo.check_feed(np.ones(2, np.float32)).dtype == np.float32
    with pytest.raises(ad.FeedError, match=r"'exact' has shape \(4, 3\), declared shape"):
        ad.evaluate(loaded.outputs, {e: np.ones((4, 3)), lo: 1.0, f: np.arange(3)})
    with pytest.raises(ad.FeedError, match="'fixed' has shape"):
        f.check_feed(np.arange(4))
    got = ad.evaluate(loaded.outputs, {e: np.ones((4, 2)), lo: 0.5, f: np.arange(3)})
    assert float(got) == 8.0 + 0.5 + 3.0


def test_value_kinds_are_kept_exactly(tmp_path: Path) -> None:
    values: dict[str, Any] = {
        "pyfloat": 0.1, "pyint": 7, "f64": np.float64(2.5), "f32": np.float32(1.5),
        "i32": np.int32(-3), "zero_d": np.array(4.0), "arr32": np.linspace(0, 1, 6,
                                                                          dtype=np.float32),
        "ints": np.arange(6).reshape(2, 3), "fortran": np.asfortranarray(
            np.arange(6.0).reshape(2, 3)), "empty": np.zeros((0, 3)),
        "nan": math.nan, "inf": math.inf, "ninf": -math.inf,
        "nonfinite": np.array([np.nan, np.inf, -np.inf, 1.0]),
    }
    with ad.Graph():
        vs = [ad.Variable(v, name=k) for k, v in values.items()]
        c = ad.Constant(-math.inf, name="cinf")
    ad.save(tmp_path / "v.adg", [*vs, c])
    loaded = ad.load(tmp_path / "v.adg")
    for name, want in [*values.items(), ("cinf", -math.inf)]:
        got = loaded[name].value
        assert type(got) is type(want), name
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want)
            assert got.flags.writeable, name  # an optimizer updates it in place
        elif isinstance(want, np.generic):
            assert got.dtype == want.dtype and got == want, name
        elif isinstance(want, float) and math.isnan(want):
            assert math.isnan(got), name
        else:
            assert got == want, name
    assert isinstance(loaded["cinf"], ad.Constant)
    np.testing.assert_array_equal(loaded["fortran"].value, np.arange(6.0).reshape(2, 3))


def test_attributes_of_every_kind_round_trip(tmp_path: Path) -> None:
    x0 = np.arange(12.0).reshape(3, 4)
    index = (slice(None, None, -1), Ellipsis, np.array([0, 3]))
    with ad.Graph():
        x = ad.Variable(x0, name="x")
        outs = [
            ad.ops.getitem(x, index=index, name="g"),
            ad.ops.reshape(x, (4, 3), name="rt"),
            ad.ops.reshape(x, [2, 6], name="rl"),
            ad.ops.pad(x, pad_width=[(1, 0), (0, 2)], name="p"),
            ad.ops.pad(x, pad_width=((0, 1), (1, 1)),
                       constant_values=complex(1.5, -2.0),  # type: ignore[arg-type]
                       name="pc"),
            ad.ops.nan_to_num(ad.Variable(np.array([np.nan, np.inf, -np.inf])),
                              nan=math.inf, posinf=-math.inf, neginf=math.nan, name="n"),
            ad.ops.sum(x, axis=(0, 1), keepdims=True, name="s"),
            ad.ops.einsum("ij,ij->i", x, x, name="e"),
        ]
    ad.save(tmp_path / "a.adg", outs)
    loaded = ad.load(tmp_path / "a.adg")
    attrs = {o.name: dict(o.attrs) for o in loaded.outputs if isinstance(o, ad.Operator)}
    start, dots, picks = attrs["g"]["index"]
    assert (start, dots) == (slice(None, None, -1), Ellipsis)
    assert picks.dtype == np.int64 and picks.tolist() == [0, 3]
    assert attrs["rt"]["shape"] == (4, 3) and type(attrs["rt"]["shape"]) is tuple
    assert attrs["rl"]["shape"] == [2, 6] and type(attrs["rl"]["shape"]) is list
    assert attrs["p"]["pad_width"] == [(1, 0), (0, 2)]
    assert attrs["pc"]["pad_width"] == ((0, 1), (1, 1))
    assert attrs["pc"]["constant_values"] == complex(1.5, -2.0)
    assert type(attrs["pc"]["constant_values"]) is complex
    n = attrs["n"]
    assert n["nan"] == math.inf and n["posinf"] == -math.inf and math.isnan(n["neginf"])
    assert attrs["s"] == {"axis": (0, 1), "keepdims": True}
    assert attrs["e"]["subscripts"] == "ij,ij->i" and attrs["e"]["optimize"] is False
    # And they still compute what NumPy computes.
    g, rt, rl, p = ad.evaluate(loaded.outputs[:4])
    np.testing.assert_array_equal(g, x0[index])
    np.testing.assert_array_equal(rt, x0.reshape(4, 3))
    np.testing.assert_array_equal(rl, x0.reshape(2, 6))
    np.testing.assert_array_equal(p, np.pad(x0, [(1, 0), (0, 2)]))
    s, e = ad.evaluate(loaded.outputs[6:])
    np.testing.assert_array_equal(s, x0.sum(keepdims=True))
    np.testing.assert_array_equal(e, np.einsum("ij,ij->i", x0, x0))
    np.testing.assert_array_equal(ad.evaluate(loaded.outputs[5]), [np.inf, -np.inf, np.nan])


def test_sites_are_restored(tmp_path: Path) -> None:
    nodes, loss = _model()
    ad.save(tmp_path / "s.adg", loss)
    loaded = ad.load(tmp_path / "s.adg")
    for name in ("data", "w", "b", "loss"):
        original = loss if name == "loss" else nodes[name]
        assert loaded[name].where() == original.where()
        assert loaded[name].where().startswith(f"{__file__}:")
    assert isinstance(loss, ad.Operator) and loaded["loss"].site == loss.site


def _same(a: Any, b: Any) -> None:
    """Equal, and of the same types all the way down (tuples are not lists)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_metadata_round_trips(tmp_path: Path) -> None:
    nodes, loss = _model()
    params = [nodes["w"], nodes["b"]]
    assert all(isinstance(p, ad.Variable) for p in params)
    opt = Adam(params, lr=0.01)  # type: ignore[arg-type]
    for _ in range(2):
        opt.step(ad.grad(loss, opt.params, {nodes["data"]: DATA}))
    metadata = {
        "epoch": 5, "lr": 0.1, "done": False, "note": "mid-run", "none": None,
        "nested": {"a": [1, 2.5, None, True, "s"], "t": (1, (2, 3)), "deeper": {"z": []}},
        "arr": np.arange(3, dtype=np.int32), "scalar": np.float32(2.0), "nan": math.nan,
        "dtype": np.dtype("int16"), "z": complex(0.5, -1.0), "cut": slice(1, None, 2),
        "dots": Ellipsis, "bools": np.array([True, False]),
        "optimizer": opt.state_dict(),
    }
    ad.save(tmp_path / "m.adg", loss, metadata=metadata)
    loaded = ad.load(tmp_path / "m.adg")
    _same(loaded.metadata, metadata)
    assert ad.load(tmp_path / "m.adg").metadata["optimizer"]["steps"] == 2
    ad.save(tmp_path / "none.adg", loss)
    assert ad.load(tmp_path / "none.adg").metadata == {}


def test_saved_gradient_graph_evaluates_to_the_same_gradients(tmp_path: Path) -> None:
    nodes, loss = _model(rows=len(DATA))  # symbolic gradients need the static shapes
    gw, gb = ad.gradients(loss, [nodes["w"], nodes["b"]])
    feed = {nodes["data"]: DATA}
    before = ad.evaluate([loss, gw, gb], feed)
    ad.save(tmp_path / "g.adg", [loss, gw, gb])
    loaded = ad.load(tmp_path / "g.adg")
    after = ad.evaluate(loaded.outputs, {loaded["data"]: DATA})
    for want, got in zip(before, after):
        np.testing.assert_array_equal(got, want)
    ref_loss, ref_gw, ref_gb = _numpy_loss_and_grads(nodes["w"].value, 0.25)
    assert float(after[0]) == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(after[1], ref_gw, rtol=1e-6)
    assert float(after[2]) == pytest.approx(ref_gb, rel=1e-6)
    # The loaded Variables are the loaded gradient graph's: changing one changes it.
    loaded["b"].value = 0.0
    _, ref_gw0, _ = _numpy_loss_and_grads(nodes["w"].value, 0.0)
    np.testing.assert_allclose(ad.evaluate(loaded.outputs[1], {loaded["data"]: DATA}),
                               ref_gw0, rtol=1e-6)


# --- what cannot be saved: SaveError, and nothing written ---


Unsavable = Callable[[], tuple[ad.Node, dict[str, Any] | None]]


def _dask_value() -> tuple[ad.Node, None]:
    da = pytest.importorskip("dask.array")
    with ad.Graph():
        return ad.Variable(da.ones(3), name="lazy") * 2.0, None


def _object_attribute() -> tuple[ad.Node, None]:
    with ad.Graph():
        x = ad.Variable(np.ones(3), name="x")
        return ad.ops.sum(x, axis=object(), name="bad"), None  # type: ignore[arg-type]


def _object_metadata() -> tuple[ad.Node, dict[str, Any]]:
    with ad.Graph():
        return ad.Variable(1.0, name="fine") + 1.0, {"run": {"fn": print}}


@pytest.mark.parametrize(("build", "match"), [
    pytest.param(_dask_value, r"variable 'lazy' \(created at .*test_saving.py:\d+\): its "
                              r"value: a value of type dask\.array", id="dask"),
    pytest.param(_object_attribute, r"node 'bad' \(op 'sum' .*\): attribute 'axis': a value "
                                    r"of type builtins\.object", id="attr"),
    pytest.param(_object_metadata, r"metadata\['run'\]\['fn'\]: a value of type "
                                   r"builtins\.builtin_function", id="metadata"),
])
def test_unsavable_graph_is_a_save_error_and_writes_nothing(
    tmp_path: Path, build: Unsavable, match: str
) -> None:
    _, good_loss = _model()
    path = tmp_path / "model.adg"
    ad.save(path, good_loss)
    before = path.read_bytes()
    node, metadata = build()
    with pytest.raises(ad.SaveError, match=match):
        ad.save(path, node, metadata=metadata)
    with pytest.raises(ad.SaveError):
        ad.save(tmp_path / "new.adg", node, metadata=metadata)
    # Saving is atomic: no partial or temporary file, the good file as it was.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.adg"]
    assert path.read_bytes() == before
    assert ad.load(path).variables[0].name == "w"
    assert issubclass(ad.SaveError, ad.AutodagError)


def test_saving_nothing_is_an_argument_error(tmp_path: Path) -> None:
    with pytest.raises(ad.ArgumentError, match="at least one output"):
        ad.save(tmp_path / "empty.adg", [])
    assert not list(tmp_path.iterdir())


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes, loss = _model()
    path = tmp_path / "model.adg"
    ad.save(path, loss)
    before = path.read_bytes()

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", full_disk)
    nodes["w"].value = np.zeros((2, 2))
    with pytest.raises(OSError, match="No space left"):
        ad.save(path, loss)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.adg"]
    assert path.read_bytes() == before
    monkeypatch.undo()
    np.testing.assert_array_equal(ad.load(path)["w"].value, [[1.0, -1.0], [0.5, 2.0]])
