"""Every registered op with samples survives saving, pickling and copying: built here,
loaded in a fresh process, evaluated and differentiated there with identical results."""

from __future__ import annotations

import contextlib
import copy
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad
from autodag.symbolic import SymbolicGradientError

#: (op name, sample index) of every sample of every registered op.
ALL_CASES = [
    (name, k)
    for name, reg in sorted(ad.get_registry().ops.items())
    if reg.opdef.samples is not None
    for k in range(len(list(reg.opdef.samples(np.random.default_rng(0)))))
]
#: The first sample of each op: every op, in the quick suite (the rest in `make slow`).
CASES = [c for c in ALL_CASES if c[1] == 0]


def _build(name: str, k: int) -> tuple[list[ad.Node], list[ad.Variable]]:
    """The op on Variables holding sample ``k``, with its value and (where it has one)
    its symbolic gradient with respect to its floating inputs, as outputs."""
    reg = ad.get_registry().get(name)
    assert reg.opdef.samples is not None
    sample = list(reg.opdef.samples(np.random.default_rng(0)))[k]
    with ad.Graph():
        xs = [ad.Variable(v, name=f"in{j}") for j, v in enumerate(sample.inputs)]
        args = (xs,) if reg.opdef.arity is None else tuple(xs)
        out = ad.ops.get(name)(*args, **dict(sample.attrs), name="out")
        wrt = [x for x in xs if np.result_type(x.value).kind == "f"]
        outs: list[ad.Node] = [out]
        value = ad.evaluate(out)
        if reg.opdef.backward is not None and wrt and np.result_type(value).kind == "f":
            loss = ad.ops.sum(out * out) if np.ndim(value) else out * out
            # A NumPy-only rule has no symbolic gradient: its value is still compared.
            with contextlib.suppress(SymbolicGradientError):
                outs += list(ad.gradients(loss, wrt))
    return outs, wrt


def _results(outs: list[ad.Node]) -> list[Any]:
    return [np.asarray(v) for v in ad.evaluate(outs)]


def _same(a: list[Any], b: list[Any], what: str) -> None:
    assert len(a) == len(b), what
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype, what
        np.testing.assert_array_equal(x, y, err_msg=what)


def _save_all(folder: Path, cases: list[tuple[str, int]]) -> dict[str, list[Any]]:
    """Every case saved and pickled into ``folder``; the values computed here."""
    expected: dict[str, list[Any]] = {}
    for name, k in cases:
        outs, _ = _build(name, k)
        tag = f"{name}-{k}"
        ad.save(folder / f"{tag}.adg", outs)
        (folder / f"{tag}.pkl").write_bytes(pickle.dumps(outs))
        expected[tag] = _results(outs)
    return expected


_CHILD = textwrap.dedent("""
    import pickle, sys
    from pathlib import Path
    import numpy as np
    import autodag as ad
    folder = Path(sys.argv[1])
    out = {}
    for f in sorted(folder.glob("*.adg")):
        loaded = ad.load(f)
        for j, v in enumerate(ad.evaluate(loaded.outputs)):
            out[f"{f.stem}|adg|{j}"] = np.asarray(v)
        nodes = pickle.loads(f.with_suffix(".pkl").read_bytes())
        for j, v in enumerate(ad.evaluate(nodes)):
            out[f"{f.stem}|pkl|{j}"] = np.asarray(v)
    np.savez(folder / "results.npz", **out)
""")


def _check_in_fresh_process(folder: Path, cases: list[tuple[str, int]]) -> None:
    expected = _save_all(folder, cases)
    res = subprocess.run([sys.executable, "-c", _CHILD, str(folder)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with np.load(folder / "results.npz", allow_pickle=False) as got:
        for tag, values in expected.items():
            for how in ("adg", "pkl"):
                _same(values, [got[f"{tag}|{how}|{j}"] for j in range(len(values))],
                      f"{tag} ({how})")


def test_every_op_round_trips_in_a_fresh_process(tmp_path: Path) -> None:
    _check_in_fresh_process(tmp_path, CASES)


@pytest.mark.slow
def test_every_sample_round_trips_in_a_fresh_process(tmp_path: Path) -> None:
    _check_in_fresh_process(tmp_path, [c for c in ALL_CASES if c[1] != 0])


@pytest.mark.parametrize(("name", "k"), CASES[::3], ids=[f"{n}-{k}" for n, k in CASES[::3]])
def test_deepcopy_and_compiled_program_of_op(name: str, k: int) -> None:
    outs, wrt = _build(name, k)
    expected = _results(outs)
    _same(expected, _results(copy.deepcopy(outs)), "deepcopy")
    if not wrt or len(outs) == 1:
        return
    prog = ad.compile(outs[0], wrt=wrt, inputs=wrt)
    values = [x.value for x in wrt]
    want = prog(*values)
    for clone in (pickle.loads(pickle.dumps(prog)), copy.deepcopy(prog)):
        got = clone(*values)
        _same([want[0], *want[1]], [got[0], *got[1]], f"{name} program")
