"""Every op with samples and an ONNX converter, exported on Placeholders fed with each
sample and run in onnxruntime, against autodag's own values; and the ops without one."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag import ops

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

import autodag.onnx as adx  # noqa: E402

#: ONNX ops onnxruntime's CPU provider implements for float32 only (no float64 kernel):
#: graphs using them are run, in these tests, with float32 samples.
ORT_FLOAT32_ONLY = {"Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "AveragePool",
                    "Conv", "ConvTranspose", "Cosh", "Det", "Erf", "Sinh", "Tan"}


def _samples(name: str) -> list[ad.Sample]:
    op = ad.get_registry().get(name).opdef
    return [] if op.samples is None else list(op.samples(np.random.default_rng(0)))


def _cases(first_only: bool) -> list[Any]:
    out = []
    reg = ad.get_registry()
    for name in sorted(adx.converters()):
        if name not in reg:
            continue
        for k, _ in enumerate(_samples(name)[:1] if first_only else _samples(name)):
            out.append(pytest.param(name, k, id=f"{name}-{k}"))
    return out


def _as_float(v: Any, dtype: Any) -> Any:
    return v.astype(dtype) if dtype is not None and v.dtype.kind == "f" else v


def _build(name: str, sample: ad.Sample, dtype: Any) -> tuple[Any, dict[Any, Any]]:
    """The op on Placeholders shaped like the sample's arrays (numbers stay Constants)."""
    feeds: dict[Any, Any] = {}
    args: list[Any] = []
    for k, v in enumerate(sample.inputs):
        if isinstance(v, (np.ndarray, np.generic)):
            v = _as_float(np.asarray(v), dtype)
            p = ad.Placeholder(f"in{k}", dtype=v.dtype, shape=v.shape)
            feeds[p] = v
            args.append(p)
        else:
            args.append(v)
    fn = getattr(ops, name)
    arity = ad.get_registry().get(name).opdef.arity
    node = fn(args, **sample.attrs) if arity is None else fn(*args, **sample.attrs)
    return node, feeds


def _run(name: str, sample: ad.Sample, dtype: Any = None) -> None:
    with ad.Graph(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a sample's nan is compared too
        node, feeds = _build(name, sample, dtype)
        want = np.asarray(ad.evaluate(node, feeds))
        model = adx.export(node, None, inputs=list(feeds))
    try:
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:
        if dtype is None and "NOT_IMPLEMENTED" in str(exc):
            used = {n.op_type for n in model.graph.node}
            assert used & ORT_FLOAT32_ONLY, f"onnxruntime lacks a kernel: {exc}"
            _run(name, sample, np.float32)
            return
        raise
    names = [i.name for i in sess.get_inputs()]
    (got,) = sess.run(None, dict(zip(names, feeds.values(), strict=True)))
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    tol = 1e-6 if dtype is None else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 1e-3 if dtype is None else tol)


#: Ops whose converter refuses some samples (ONNX lacks what they need), and why.
PARTIAL = {
    "linalg_matrix_power": "needs an inverse",
    "linalg_norm": "needs singular values",
    "median": "median over several axes",
}


def _check(name: str, k: int) -> None:
    sample = _samples(name)[k]
    try:
        _run(name, sample)
    except ad.AutodagError as exc:
        if name in PARTIAL and PARTIAL[name] in str(exc):
            pytest.skip(f"{name} sample {k}: {PARTIAL[name]}, which ONNX lacks")
        raise


@pytest.mark.parametrize(("name", "k"), _cases(first_only=True))
def test_op_first_sample_matches_in_onnxruntime(name: str, k: int) -> None:
    _check(name, k)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "k"), _cases(first_only=False))
def test_op_every_sample_matches_in_onnxruntime(name: str, k: int) -> None:
    _check(name, k)


def test_ops_without_converter_are_listed_in_their_plugins_onnx_rules() -> None:
    """Each registered op without ONNX converter is named in the docstring of its
    plugin's converter module, where the reason is given (or there is none yet)."""
    missing = adx.missing_converters()
    print("ops without an ONNX converter:", ", ".join(missing))  # shown with pytest -s
    reg = ad.get_registry()
    undocumented = []
    for name in missing:
        module = inspect.getmodule(reg.get(name).opdef.forward)
        package = (module.__name__ if module else "").split(".")[0]
        rules = __import__(f"{package}.onnx_rules" if package != "autodag"
                           else "autodag.builtin_onnx", fromlist=["_"])
        if name not in (rules.__doc__ or ""):
            undocumented.append(f"{name} ({package})")
    assert not undocumented, (f"ops without ONNX converter, not said in their plugin's "
                              f"onnx_rules: {', '.join(undocumented)}")
    assert "add" not in missing and "conv2d" not in missing
