"""What users' tools see of the ops: signatures, the generated stub, README's tables.

The stub (``autodag/ops.pyi``) and README's op tables are generated from the registry
(``python -m autodag.opstubs``); the test fails when an op changed and they were not
regenerated, so they cannot drift. mypy, run on a small user file, flags a misspelt op
and a wrong attribute type, and accepts the right calls.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest

import autodag as ad
from autodag import opstubs

ROOT = Path(__file__).resolve().parents[1]


def test_stub_and_readme_tables_are_up_to_date() -> None:
    ops = opstubs.first_party_ops()
    stub = Path(ad.ops.__file__).with_name("ops.pyi").read_text(encoding="utf-8")
    assert stub == opstubs.render_stub(ops), "run: python -m autodag.opstubs"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert opstubs.render_tables(ops) in readme, "run: python -m autodag.opstubs"


def test_every_first_party_op_is_in_the_stub_and_the_tables() -> None:
    ops = opstubs.first_party_ops()
    stub, tables = opstubs.render_stub(ops), opstubs.render_tables(ops)
    for reg in ops:
        assert f"def {reg.opdef.name}(" in stub
        assert f"| `{reg.opdef.name}` |" in tables


def test_inspect_shows_inputs_and_attributes() -> None:
    sig = inspect.signature(ad.ops.sum)
    assert list(sig.parameters) == ["a", "axis", "keepdims", "name"]
    assert sig.parameters["axis"].default is None
    assert sig.parameters["keepdims"].default is False
    assert sig.parameters["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert str(inspect.signature(ad.ops.exp)) == "(x, *, name=None)"
    assert list(inspect.signature(ad.ops.concatenate).parameters)[:2] == ["arrays", "axis"]


def test_linalg_namespace_and_get() -> None:
    assert "inv" in dir(ad.ops.linalg)
    inv: Any = ad.ops.linalg.inv
    assert inv.registered is ad.get_registry().get("linalg_inv")
    assert ad.ops.get("exp").registered is ad.get_registry().get("exp")
    with pytest.raises(ad.OpNotFoundError, match="linalg_nope"):
        ad.ops.linalg.nope  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.slow
def test_mypy_flags_misspelt_ops_and_bad_attributes(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    user = tmp_path / "user.py"
    user.write_text(textwrap.dedent("""
        import numpy as np
        import autodag as ad

        x = ad.Variable(np.ones(3), name="x")
        good: ad.Operator = ad.ops.sum(ad.ops.tanh(x), axis=0)
        inv: ad.Operator = ad.ops.linalg.inv(x)
        third_party = ad.ops.get("cube")(x)
        bad1 = ad.ops.tanhh(x)
        bad2 = ad.ops.sum(x, axis="zero")
        bad3 = ad.ops.linalg.invv(x)
    """), encoding="utf-8")
    out, err, status = api.run(["--strict", "--no-incremental", "--cache-dir",
                                str(tmp_path / "cache"), str(user)])
    lines = [ln for ln in out.splitlines() if "user.py" in ln]
    assert status == 1, out + err
    assert any(":9:" in ln and '"tanhh"' in ln for ln in lines), out
    assert any(":10:" in ln and "axis" in ln for ln in lines), out
    assert any(":11:" in ln and '"invv"' in ln for ln in lines), out
    assert not any(f":{n}:" in ln for n in (6, 7, 8) for ln in lines), out
