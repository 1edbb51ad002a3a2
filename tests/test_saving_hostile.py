"""Hostile graph files: malformed, truncated, of another version, naming what is not
there or what a file may not hold. Each is a ``LoadError`` (an ``AutodagError``) naming
the file and the problem, never another exception from inside zipfile, json or NumPy."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autodag as ad

from .graphfiles import (
    base_file,
    members,
    node_record,
    npy,
    npy_with_header,
    repack,
    rewrite,
    write_zip,
)


def _at(doc: dict[str, Any], name: str) -> int:
    index: int = [n["name"] for n in doc["nodes"]].index(name)
    return index


def _set(name: str, key: str, value: Any) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        node_record(doc, name)[key] = value
    return edit


def _attr(name: str, key: str, value: Any) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        node_record(doc, name)["attrs"][key] = value
    return edit


def _doc_key(key: str, value: Any) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        doc[key] = value
    return edit


def _drop(key: str) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        del doc[key]
    return edit


def _self_input(doc: Any) -> None:
    node_record(doc, "t")["inputs"] = [_at(doc, "t")]


def _later_input(doc: Any) -> None:
    node_record(doc, "t")["inputs"] = [_at(doc, "s")]


def _unknown_op(doc: Any) -> None:
    node_record(doc, "t").update(op="tplug_frobnicate", plugin={
        "name": "frob", "distribution": "tplug-frob", "version": "9.9"})


DOCUMENT_CASES: list[tuple[str, Callable[[Any], Any], str]] = [
    ("format", _doc_key("format", "onnx"), r"is not an autodag graph file .*format"),
    ("no-format", _drop("format"), r"is not an autodag graph file .*format"),
    ("not-object", lambda d: [d], r"is not an autodag graph file"),
    ("version-2", _doc_key("version", 2),
     r"format version 2, written by a newer autodag.*reads versions up to 1"),
    ("version-0", _doc_key("version", 0), r"format version 0 is not a positive integer"),
    ("version-str", _doc_key("version", "1"), r"format version '1' is not a positive"),
    ("version-bool", _doc_key("version", True), r"format version True is not"),
    ("no-version", _drop("version"), r"format version None is not"),
    ("nodes-not-list", _doc_key("nodes", {"0": {}}), r"'nodes' must be a list"),
    ("node-not-object", lambda d: d["nodes"].insert(0, 5), r"node 0 is not a JSON object"),
    ("node-no-name", _set("w", "name", None), r"node 1 has no name string"),
    ("unknown-kind", _set("w", "kind", "lambda"),
     r"node 1 \('w'\): unknown node kind 'lambda' \(known: \['constant', 'operator'"),
    ("unknown-op", _unknown_op,
     r"op 'tplug_frobnicate' came from distribution 'tplug-frob' 9\.9, and no loaded "
     r"plugin provides it"),
    ("op-not-string", _set("t", "op", ["tanh"]), r"'t'\): an operator needs an op name"),
    ("plugin-not-object", _set("t", "plugin", "math"), r"an operator needs .* plugin obj"),
    ("plugin-version-number", _set("t", "plugin", {"name": "math", "version": 1}),
     r"plugin's name, distribution and version must be strings"),
    ("self-input", _self_input, r"'t'\): inputs: node reference 3 is not an earlier node"),
    ("later-input", _later_input, r"'t'\): inputs: node reference 5 is not an earlier node"),
    ("input-out-of-range", _set("t", "inputs", [999]), r"node reference 999 is not an"),
    ("input-negative", _set("t", "inputs", [-1]), r"reference -1 is not a non-negative"),
    ("input-bool", _set("t", "inputs", [True]), r"reference True is not a non-negative"),
    ("input-float", _set("t", "inputs", [1.0]), r"reference 1\.0 is not a non-negative"),
    ("inputs-not-list", _set("t", "inputs", 2), r"'t'\): 'inputs' must be a list"),
    ("output-out-of-range", _doc_key("outputs", [99]), r"outputs: node reference 99"),
    ("outputs-not-list", _doc_key("outputs", 5), r"'outputs' must be a list"),
    ("single-but-two", _doc_key("outputs", [4, 5]), r"'single' is true but there are 2"),
    ("object-attr", _attr("s", "axis", {"object": "os.system"}),
     r"'s'\): attribute 'axis': unknown value kind 'object' .*cannot hold objects"),
    ("reduce-attr", _attr("s", "axis", {"__reduce__": ["os.system", ["echo hi"]]}),
     r"attribute 'axis': unknown value kind '__reduce__'"),
    ("two-key-attr", _attr("s", "axis", {"tuple": [0], "slice": [0, 1, 1]}),
     r"attribute 'axis': .* is not a value a graph file may hold"),
    ("unknown-attr", _attr("s", "axes", 0),
     r"'s'\): op 'sum' has no attribute\(s\) \['axes'\] \(its attributes: \['axis', "
     r"'keepdims'\]\)"),
    ("missing-required-attr", _set("r", "attrs", {}),
     r"'r'\): op 'reshape' needs attribute\(s\) \['shape'\]"),
    ("attrs-not-object", _set("s", "attrs", [0]), r"'s'\): 'attrs' must be a JSON object"),
    ("wrong-arity", _set("t", "inputs", [0, 1]),
     r"'t'\): op 'tanh' takes 1 input\(s\), the file gives 2"),
    ("bad-float", _attr("s", "axis", {"float": "1e999"}), r"is not nan, inf or -inf"),
    ("bad-slice", _attr("s", "axis", {"slice": [0, "1", None]}), r"slice bounds must be"),
    ("bad-complex", _attr("s", "axis", {"complex": [1, True]}), r"complex parts must be"),
    ("bad-tuple", _attr("s", "axis", {"tuple": 0}), r"body of 'tuple' must be a list"),
    ("dict-not-object", _doc_key("metadata", {"dict": [1]}), r"body of 'dict' must be"),
    ("metadata-not-dict", _doc_key("metadata", [1]), r"metadata must be a dict"),
    ("dtype-O", _set("data", "dtype", "O"), r"'data'\): dtype: 'O' is not a boolean or "
                                            r"numeric dtype name"),
    ("dtype-object", _set("data", "dtype", "object"), r"'object' is not a boolean or numeric"),
    ("dtype-code", _set("data", "dtype", "float64; import os"), r"is not a boolean or num"),
    ("dtype-datetime", _set("data", "dtype", "datetime64"), r"'datetime64' is not a bool"),
    ("dtype-record", _set("data", "dtype", [["a", "<f8"]]), r"is not a boolean or numeric"),
    ("dtype-attr", _attr("s", "axis", {"dtype": "str"}), r"'str' is not a boolean or num"),
    ("shape-negative", _set("data", "shape", [-1, 2]), r"shape must be null or a list of"),
    ("shape-string", _set("data", "shape", "big"), r"shape must be null or a list of"),
    ("exact-not-bool", _set("data", "exact", "yes"), r"'exact' must be true or false"),
    ("site-bad", _set("w", "site", ["f.py", "1"]), r"'site' must be null or \[file, line\]"),
    ("value-string", _set("w", "value", "hello"), r"'w'\): .*must be numeric"),
    ("value-missing-array", _set("w", "value", {"array": 7}),
     r"the archive has no member 'arrays/7\.npy'"),
    ("value-array-ref-string", _set("w", "value", {"array": "0"}),
     r"array reference '0' is not a non-negative integer"),
    ("value-scalar-of-array", _set("w", "value", {"scalar": 0}),
     r"scalar 0 is stored as an array of shape \(2, 2\)"),
]


@pytest.mark.parametrize(("edit", "match"),
                         [pytest.param(e, m, id=i) for i, e, m in DOCUMENT_CASES])
def test_hostile_document_is_a_named_load_error(
    tmp_path: Path, edit: Callable[[Any], Any], match: str
) -> None:
    bad = rewrite(base_file(tmp_path), tmp_path / "bad.adg", edit)
    with pytest.raises(ad.LoadError, match=match) as info:
        ad.load(bad)
    assert str(bad) in str(info.value)  # which file it was


def test_load_error_is_an_autodag_error() -> None:
    assert issubclass(ad.LoadError, ad.AutodagError)


HUGE = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
HUGE_2D = b"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"
NEGATIVE = b"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }"
CODE = b"{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (2,), }"

ARRAY_CASES: list[tuple[str, bytes, str]] = [
    ("pickled-object",
     npy(np.array([{"run": "os.system"}, None], dtype=object), allow_pickle=True),
     r"array 'arrays/0\.npy' has dtype object: .*never does"),
    # Huge declared shapes, a few bytes of data: refused from the header, nothing allocated.
    ("huge-shape", npy_with_header(HUGE, b"\0" * 16),
     r"declares shape \(1000000000000,\) of float64 \(8000000000000 bytes\) but holds 16"),
    ("huge-2d", npy_with_header(HUGE_2D, b"\0" * 16),
     r"declares shape \(4294967296, 4294967296\) of float64 .* but holds 16"),
    ("negative-shape", npy_with_header(NEGATIVE, b""), r"declares an invalid shape \(-2,\)"),
    ("record", npy(np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")])),
     r"has dtype .*a graph file holds only boolean and numeric arrays"),
    ("datetime", npy(np.array(["2020-01-01"], dtype="M8[D]")), r"has dtype datetime64"),
    ("strings", npy(np.array(["a", "b"])), r"has dtype <U1"),
    ("truncated-data", npy(np.ones((2, 2)))[:-8], r"holds 24 bytes of data"),
    ("extra-data", npy(np.ones((2, 2))) + b"\0" * 8, r"holds 40 bytes of data"),
    ("not-npy", b"hello, world", r"array 'arrays/0\.npy' is not a valid \.npy array"),
    ("empty", b"", r"is not a valid \.npy array"),
    ("header-code", npy_with_header(CODE, b"\0" * 16), r"is not a valid \.npy array"),
    ("npy-version-9", b"\x93NUMPY\x09\x00" + npy(np.ones(2))[8:],
     r"has an unknown \.npy version \(9, 0\)"),
    ("header-length-lies", b"\x93NUMPY\x03\x00" + npy(np.ones(2))[8:],
     r"is not a valid \.npy array: EOF"),
]


@pytest.mark.parametrize(("member", "match"),
                         [pytest.param(m, r, id=i) for i, m, r in ARRAY_CASES])
def test_hostile_array_member_is_a_named_load_error(
    tmp_path: Path, member: bytes, match: str
) -> None:
    bad = rewrite(base_file(tmp_path), tmp_path / "bad.adg", replace={"arrays/0.npy": member})
    with pytest.raises(ad.LoadError, match=match):
        ad.load(bad)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ad.LoadError, match=r"nope\.adg: no such file"):
        ad.load(tmp_path / "nope.adg")
    with pytest.raises(ad.LoadError, match="is not an autodag graph file"):
        ad.load(tmp_path)


@pytest.mark.parametrize("content", [b"", b"just text\n", b"PK\x03\x04" + b"\0" * 40,
                                     json.dumps({"format": "autodag.graph"}).encode()],
                         ids=["empty", "text", "zip-magic-only", "bare-json"])
def test_a_file_that_is_no_zip_archive(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.adg"
    path.write_bytes(content)
    with pytest.raises(ad.LoadError, match=r"x\.adg is not an autodag graph file \(not a "
                                           r"complete ZIP archive"):
        ad.load(path)


@pytest.mark.parametrize("cut", ["half", "minus-10", "first-100", "minus-1", "first-22"])
def test_truncated_file(tmp_path: Path, cut: str) -> None:
    good = base_file(tmp_path).read_bytes()
    length = {"half": len(good) // 2, "minus-10": len(good) - 10, "first-100": 100,
              "minus-1": len(good) - 1, "first-22": 22}[cut]
    path = tmp_path / "cut.adg"
    path.write_bytes(good[:length])
    with pytest.raises(ad.LoadError, match=r"cut\.adg is not an autodag graph file .*may be "
                                           r"truncated"):
        ad.load(path)


def _fuzz(good: Path, path: Path, stride: int) -> None:
    """Every ``stride``-th truncation and flipped byte of ``good`` is a LoadError, or (a
    byte zipfile does not check, such as a time stamp) loads."""
    data = good.read_bytes()
    for length in range(0, len(data), stride):
        path.write_bytes(data[:length])
        with pytest.raises(ad.LoadError):
            ad.load(path)
    loaded = 0
    for k in range(0, len(data), stride):
        spoilt = bytearray(data)
        spoilt[k] ^= 0xFF
        path.write_bytes(bytes(spoilt))
        try:
            ad.load(path)
        except ad.LoadError:
            continue
        loaded += 1
    assert loaded < len(data) // stride // 4


def test_truncations_and_flipped_bytes_are_load_errors(tmp_path: Path) -> None:
    _fuzz(base_file(tmp_path), tmp_path / "fuzz.adg", stride=13)


@pytest.mark.slow
def test_every_truncation_and_every_flipped_byte_is_a_load_error(tmp_path: Path) -> None:
    _fuzz(base_file(tmp_path), tmp_path / "fuzz.adg", stride=1)


def test_zip_without_document(tmp_path: Path) -> None:
    content = members(base_file(tmp_path))
    del content["autodag.json"]
    path = write_zip(tmp_path / "nodoc.adg", content)
    with pytest.raises(ad.LoadError, match=r"nodoc\.adg: the archive has no member "
                                           r"'autodag\.json'"):
        ad.load(path)


def test_corrupt_member_fails_its_checksum(tmp_path: Path) -> None:
    good = base_file(tmp_path).read_bytes()
    at = good.index(b'"format"')  # inside the stored (uncompressed) document
    path = tmp_path / "crc.adg"
    path.write_bytes(good[:at + 2] + b"X" + good[at + 3:])
    with pytest.raises(ad.LoadError, match=r"member 'autodag\.json' cannot be read \(Bad "
                                           r"CRC-32"):
        ad.load(path)


@pytest.mark.parametrize(("text", "match"), [
    (b"{not json", r"autodag\.json is not valid JSON"),
    (b"\xff\xfe{}", r"autodag\.json is not valid JSON"),
    (b'{"format": "autodag.graph", "version": NaN, "nodes": []}',
     r"not valid JSON: non-standard JSON constant NaN"),
    (b'{"format": "autodag.graph", "version": 1, "nodes": [], "x": -Infinity}',
     r"non-standard JSON constant -Infinity"),
    (b"[" * 100_000 + b"]" * 100_000, r"autodag\.json is not valid JSON"),
    (b'{"format": "autodag.graph", "version": 1, "nodes": [], "outputs": [],'
     b' "metadata": {"dict": {"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}}",
     r"autodag\.json is not valid JSON"),
    (b"[1, 2]", r"is not an autodag graph file"),
    (b'"autodag.graph"', r"is not an autodag graph file"),
    (b"null", r"is not an autodag graph file"),
], ids=["syntax", "not-utf8", "nan", "infinity", "deep-lists", "deep-metadata", "list",
        "string", "null"])
def test_document_that_is_not_a_json_object(tmp_path: Path, text: bytes, match: str) -> None:
    bad = rewrite(base_file(tmp_path), tmp_path / "bad.adg", text=text)
    with pytest.raises(ad.LoadError, match=match):
        ad.load(bad)


def test_value_nested_deeper_than_the_decoder_follows(tmp_path: Path) -> None:
    # Shallow enough for the JSON parser, deeper than decoding follows: still a LoadError.
    depth = 900
    deep = b"[" * depth + b"]" * depth
    text = (b'{"format": "autodag.graph", "version": 1, "nodes": [], "outputs": [],'
            b' "metadata": {"dict": {"deep": ' + deep + b"}}}")
    bad = rewrite(base_file(tmp_path), tmp_path / "bad.adg", text=text)
    try:
        json.loads(text)
    except RecursionError:
        pytest.skip("this Python's JSON parser stops earlier")
    with pytest.raises(ad.LoadError, match="nested too deeply"):
        ad.load(bad)


def test_other_plugin_version_loads_with_a_warning(tmp_path: Path) -> None:
    def older(doc: Any) -> None:
        node_record(doc, "t")["plugin"]["version"] = "0.0.1"

    bad = rewrite(base_file(tmp_path), tmp_path / "old.adg", older)
    with pytest.warns(ad.PluginWarning, match=r"op 'tanh' was stored from autodag-math "
                                              r"0\.0\.1 and is now provided by 'math' "
                                              r"\(autodag-math 0\.1\.0\)"):
        loaded = ad.load(bad)
    t = loaded["t"]
    assert isinstance(t, ad.Operator) and t.op.name == "tanh" and t.plugin.version == "0.1.0"


def test_deflated_file_loads_and_its_corrupt_deflate_data_is_a_load_error(
    tmp_path: Path
) -> None:
    # A file a zip tool repacked (deflate) still loads: the format is the members.
    path = repack(base_file(tmp_path), tmp_path / "deflated.adg", zipfile.ZIP_DEFLATED)
    assert ad.load(path).metadata == {"epoch": 1}
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("autodag.json")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename)  # after the local header
    for k in range(start + 2, start + info.compress_size - 2, 3):
        data[k] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(ad.LoadError, match=r"member 'autodag\.json' cannot be read"):
        ad.load(path)


def test_member_of_another_compression_method_is_refused(tmp_path: Path) -> None:
    path = repack(base_file(tmp_path), tmp_path / "lzma.adg", zipfile.ZIP_LZMA)
    with pytest.raises(ad.LoadError, match=r"member 'autodag\.json' is compressed with "
                                           r"method 14"):
        ad.load(path)


def test_encrypted_member_is_a_load_error(tmp_path: Path) -> None:
    data = bytearray(base_file(tmp_path).read_bytes())
    # Bit 0 of the general-purpose flags (encrypted), in the local and central headers.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        data[at + offset] |= 1
    path = tmp_path / "locked.adg"
    path.write_bytes(bytes(data))
    with pytest.raises(ad.LoadError, match=r"member 'autodag\.json' cannot be read "
                                           r"\(.*encrypted"):
        ad.load(path)


def test_document_larger_than_the_limit_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autodag import archive

    path = base_file(tmp_path)
    size = len(members(path)["autodag.json"])
    monkeypatch.setattr(archive, "MAX_DOCUMENT_BYTES", size - 1)
    with pytest.raises(ad.LoadError, match=rf"autodag\.json declares {size} bytes, more than "
                                           rf"the {size - 1}"):
        ad.load(path)
    monkeypatch.setattr(archive, "MAX_DOCUMENT_BYTES", size)
    assert ad.load(path).metadata == {"epoch": 1}


def test_loaded_attribute_that_its_op_refuses_fails_when_run_naming_the_node(
    tmp_path: Path
) -> None:
    bad = rewrite(base_file(tmp_path), tmp_path / "bad.adg", _attr("r", "shape", {"tuple": [7]}))
    loaded = ad.load(bad)  # a well-formed file: the op itself judges its attribute
    with pytest.raises(ad.AutodagError, match=r"node 'r' \(op 'reshape'"):
        ad.evaluate(loaded.outputs, {loaded["data"]: np.ones((1, 2))})
