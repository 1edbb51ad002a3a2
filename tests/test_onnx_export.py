"""ONNX export: models run in onnxruntime (CPU) agree with autodag's own values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import ops
from autodag.demo_model import mlp

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

import autodag.onnx as adx  # noqa: E402  # after the skip: needs nothing, tested with


def run(model: Any, feeds: Sequence[Any]) -> list[Any]:
    """The model's outputs in onnxruntime, its inputs fed in order."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    out: list[Any] = sess.run(None, dict(zip(names, feeds, strict=True)))
    return out


def assert_close(got: Sequence[Any], want: Sequence[Any], rtol: float) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * 1e-3)


def export_and_compare(outputs: list[ad.Node], inputs: list[ad.Node],
                       feeds: Mapping[ad.Node, Any], rtol: float = 1e-6) -> Any:
    model = adx.export(outputs, None, inputs=inputs)
    want = ad.evaluate(outputs, dict(feeds))
    assert_close(run(model, [feeds[i] for i in inputs]), want, rtol)
    return model


def test_seed_example_and_its_gradients_match_hand_derived_values(tmp_path: Path) -> None:
    path = tmp_path / "seed.onnx"
    with ad.Graph():
        x, y = ad.Variable(3.0, name="x"), ad.Variable(4.0, name="y")
        z = x * x * y + y + 2
        gx, gy = ad.gradients(z, [x, y])
        model = adx.export([z, gx, gy], path, inputs=[x, y])
    # z = x^2 y + y + 2, dz/dx = 2 x y, dz/dy = x^2 + 1
    got = run(onnx.load(str(path)), [np.array(3.0), np.array(4.0)])
    assert [float(v) for v in got] == [42.0, 24.0, 10.0]
    assert [i.name for i in model.graph.input] == ["x", "y"]
    onnx.checker.check_model(model, full_check=True)


def test_variables_not_listed_and_constants_become_initializers() -> None:
    with ad.Graph():
        x = ad.Placeholder("x", shape=(3,))
        w = ad.Variable(np.array([1.0, 2.0, 3.0]), name="w")
        y = ops.sum(x * w + 1.5)
        model = export_and_compare([y], [x], {x: np.array([0.5, -1.0, 2.0])})
    assert {t.name for t in model.graph.initializer} >= {"w"}
    assert [i.name for i in model.graph.input] == ["x"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_demo_mlp_logits_loss_and_gradients(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((6, 2)).astype(dtype)
    ts = np.array([0, 1, 1, 0, 1, 0])
    with ad.Graph():
        x = ad.Placeholder("x", dtype=dtype, shape=(6, 2))
        t = ad.Placeholder("t", dtype=np.int64, shape=(6,))
        params, logits, loss = mlp(x, t, rng, 8)
        for p in params:
            p.value = p.value.astype(dtype)
        grads = ad.gradients(loss, params)  # a training step's gradient graph
        export_and_compare([logits, loss, *grads], [x, t], {x: xs, t: ts},
                           1e-6 if dtype == np.float64 else 1e-4)


def test_symbolic_batch_dimension_runs_at_any_batch_size() -> None:
    rng = np.random.default_rng(1)
    with ad.Graph():
        x = ad.Placeholder("x", shape=(None, 2))
        w = ad.Variable(rng.standard_normal((2, 3)), name="w")
        y = ops.softmax(ops.tanh(x @ w), axis=-1)
        model = adx.export(y, None, inputs=[x])
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_value == 2
        assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 3
        for n in (1, 5):
            xs = rng.standard_normal((n, 2))
            assert_close(run(model, [xs]), [ad.evaluate(y, {x: xs})], 1e-6)


@pytest.mark.parametrize("form", ["einsum", "matmul"])
def test_attention_block(form: str) -> None:
    rng = np.random.default_rng(2)
    t, d = 5, 4
    feeds = [rng.standard_normal((t, d)) for _ in range(3)]
    with ad.Graph():
        q, k, v = (ad.Placeholder(n, shape=(t, d)) for n in "qkv")
        wq = ad.Variable(rng.standard_normal((d, d)), name="Wq")
        if form == "einsum":
            scores = ops.einsum([q @ wq, k], subscripts="id,jd->ij") / np.sqrt(d)
        else:
            scores = (q @ wq) @ ops.swapaxes(k, 0, 1) / np.sqrt(d)
        out = ops.softmax(scores, axis=-1) @ v
        loss = ops.sum(out * out)
        (g,) = ad.gradients(loss, [wq])
        export_and_compare([out, g], [q, k, v], dict(zip((q, k, v), feeds, strict=True)))


def test_small_cnn_in_float32() -> None:
    # onnxruntime's CPU Conv has float32 kernels only: the float32 network runs.
    rng = np.random.default_rng(3)
    f32 = np.float32
    xs = rng.standard_normal((2, 1, 8, 8)).astype(f32)
    with ad.Graph():
        x = ad.Placeholder("images", dtype=f32, shape=(None, 1, 8, 8))
        w1 = ad.Variable(rng.standard_normal((4, 1, 3, 3)).astype(f32), name="conv1.weight")
        w2 = ad.Variable(rng.standard_normal((36, 3)).astype(f32), name="fc.weight")
        h = ops.max_pool2d(ops.relu(ops.conv2d(x, w1, padding=1)), 2)
        h = ops.max_pool2d(h, 2, stride=1)  # (N, 4, 3, 3)
        logits = ops.reshape(h, (-1, 36)) @ w2
        probs = ops.softmax(logits)
        model = export_and_compare([logits, probs], [x], {x: xs}, 1e-4)
    # names are made ONNX-safe and unique
    assert {"conv1_weight", "fc_weight"} <= {t.name for t in model.graph.initializer}


def test_cnn_training_step_gradients_in_float32() -> None:
    rng = np.random.default_rng(4)
    f32 = np.float32
    xs = rng.standard_normal((2, 2, 6, 6)).astype(f32)
    labels = np.array([1, 0])
    with ad.Graph():
        x = ad.Placeholder("images", dtype=f32, shape=(2, 2, 6, 6))
        t = ad.Placeholder("labels", dtype=np.int64, shape=(2,))
        w1 = ad.Variable(rng.standard_normal((3, 2, 3, 3)).astype(f32), name="w1")
        w2 = ad.Variable(rng.standard_normal((12, 2)).astype(f32), name="w2")
        h = ops.relu(ops.conv2d(x, w1, stride=1, padding=1))
        h = ops.avg_pool2d(ops.max_pool2d(h, 2), 2, stride=1)     # (2, 3, 2, 2)
        logits = ops.reshape(h, (2, 12)) @ w2
        loss = ops.mean(ops.softmax_cross_entropy(logits, t))
        grads = ad.gradients(loss, [w1, w2, x])
        export_and_compare([loss, *grads], [x, t], {x: xs, t: labels}, 1e-4)


def test_output_names_are_safe_and_unique() -> None:
    with ad.Graph():
        x = ad.Placeholder("in put", shape=(2,))
        a = ops.exp(x, name="out/1")
        b = ops.exp(x, name="out_1")
        model = adx.export([a, b, a], None, inputs=[x])
    names = [o.name for o in model.graph.output]
    assert len(set(names)) == 3 and all(n.isidentifier() for n in names)
    assert model.graph.input[0].name == "in_put"


def test_an_op_without_converter_is_an_error_naming_op_plugin_and_node() -> None:
    with ad.Graph():
        a = ad.Placeholder("a", shape=(2, 2))
        inv = ops.linalg_inv(a, name="inverse")
        with pytest.raises(ad.AutodagError, match=r"node 'inverse' \(op 'linalg_inv' from "
                                                  r"plugin 'linalg'.*created at .*test_onnx"
                                                  r".*no loaded plugin gives a converter"):
            adx.export(inv, None, inputs=[a])


def test_a_sample_a_converter_cannot_take_is_an_error_naming_the_node() -> None:
    with ad.Graph():
        a = ad.Placeholder("a", shape=(2, 2))
        p = ops.linalg_matrix_power(a, -1)
        with pytest.raises(ad.AutodagError, match=r"cannot export node .*linalg_matrix_power"
                                                  r".*needs an inverse"):
            adx.export(p, None, inputs=[a])


def test_missing_inputs_and_bad_arguments_are_named_errors() -> None:
    with ad.Graph():
        x, y = ad.Placeholder("x", shape=(2,)), ad.Placeholder("y", shape=(2,))
        z = x + y
        with pytest.raises(ad.AutodagError, match=r"Placeholder 'y'.*not among the export's"):
            adx.export(z, None, inputs=[x])
        with pytest.raises(ad.AutodagError, match="opset must be an int"):
            adx.export(z, None, inputs=[x, y], opset=7)
        with pytest.raises(ad.AutodagError, match="must be nodes"):
            adx.export([z, 3], None, inputs=[x, y])  # type: ignore[list-item]
        u = ad.Placeholder("u")
        with pytest.raises(ad.AutodagError, match="has no declared shape"):
            adx.export(u * 2, None, inputs=[u])


def test_an_older_opset_exports_reductions_with_axes_attributes() -> None:
    with ad.Graph():
        x = ad.Placeholder("x", shape=(2, 3))
        y = ops.max(x, axis=0) + ops.mean(x, axis=0, keepdims=True)
        model = adx.export(y, None, inputs=[x], opset=13)
        xs = np.arange(6.0).reshape(2, 3)
        assert_close(run(model, [xs]), [ad.evaluate(y, {x: xs})], 1e-6)
    assert model.opset_import[0].version == 13
