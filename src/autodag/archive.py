"""The container of a saved graph: a ZIP archive of one JSON document and ``.npy`` arrays.

Reading trusts nothing in the file: the archive, the document's size and syntax, and
every array's header are checked before anything is allocated, arrays are read with
``allow_pickle=False``, and each failure is a ``LoadError`` naming the file and what is
wrong in it (never a traceback from inside ``zipfile``, ``json`` or NumPy).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from .errors import LoadError, SaveError

__all__ = ["DOCUMENT", "MAX_DOCUMENT_BYTES", "Archive", "array_member", "write_archive"]

#: The archive member holding the JSON document.
DOCUMENT: Final = "autodag.json"
#: Largest document read (the structure only; array data is not in it).
MAX_DOCUMENT_BYTES: Final = 256 * 2**20
#: Array dtype kinds a file may hold: booleans and numbers, never objects or records.
_KINDS: Final = frozenset("biufc")
#: What reading a spoilt member raises inside zipfile (CRC, encryption or flag bits,
#: deflate data), made a LoadError.
_READ_ERRORS: Final = (zipfile.BadZipFile, OSError, EOFError, ValueError,
                       NotImplementedError, RuntimeError, zlib.error)


def array_member(k: int) -> str:
    """The archive member name of array ``k``."""
    return f"arrays/{k}.npy"


def write_archive(path: str | os.PathLike[str], document: dict[str, Any],
                  arrays: Sequence[np.ndarray[Any, Any]]) -> None:
    """Write the archive to a temporary file beside ``path``, then move it into place, so
    a failed save never leaves a truncated file where a good one was."""
    target = Path(path)
    try:
        text = json.dumps(document, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # a bug of the encoder, not of the user
        raise SaveError(f"cannot write {target}: the graph document is not JSON: {exc}") from exc
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                               dir=target.parent if str(target.parent) else None)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(DOCUMENT, text)
            for k, arr in enumerate(arrays):
                with zf.open(array_member(k), "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Archive:
    """An open saved-graph archive: its document, and its arrays read one by one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise LoadError(f"{self.path}: no such file") from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError,
                NotImplementedError) as exc:  # NotImplemented: a spoilt version field
            raise LoadError(
                f"{self.path} is not an autodag graph file (not a complete ZIP archive: "
                f"{exc}); it may be truncated or of another format") from None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    def _info(self, member: str) -> zipfile.ZipInfo:
        try:
            info = self._zip.getinfo(member)
        except KeyError:
            raise LoadError(f"{self.path}: the archive has no member {member!r}") from None
        # Only what write_archive or a zip tool's default writes: no bz2/lzma decoders.
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise LoadError(f"{self.path}: member {member!r} is compressed with method "
                            f"{info.compress_type}; a graph file is stored or deflated")
        return info

    def document(self) -> Any:
        """The parsed JSON document (any JSON value: the caller checks its schema)."""
        info = self._info(DOCUMENT)
        if info.file_size > MAX_DOCUMENT_BYTES:
            raise LoadError(f"{self.path}: {DOCUMENT} declares {info.file_size} bytes, more "
                            f"than the {MAX_DOCUMENT_BYTES} a graph document may have")
        try:
            text = self._read(info).decode("utf-8")
            return json.loads(text, parse_constant=_no_constant)
        except LoadError:
            raise
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise LoadError(f"{self.path}: {DOCUMENT} is not valid JSON: {exc}") from None

    def _read(self, info: zipfile.ZipInfo) -> bytes:
        try:
            return self._zip.read(info)
        except _READ_ERRORS as exc:
            raise LoadError(f"{self.path}: member {info.filename!r} cannot be read "
                            f"({exc}); the file may be truncated or corrupt") from None

    def array(self, k: int) -> np.ndarray[Any, Any]:
        """Array ``k``: its header checked (dtype, shape against the bytes it holds) before
        its data is read, and read without unpickling."""
        info = self._info(array_member(k))
        where = f"{self.path}: array {array_member(k)!r}"
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise LoadError(f"{where} has an unknown .npy version {version}")
                _check_header(where, dtype, shape, info.file_size - f.tell())
                data = f.read()
        except LoadError:
            raise
        except (*_READ_ERRORS, SyntaxError, TypeError) as exc:
            raise LoadError(f"{where} is not a valid .npy array: {exc}") from None
        arr: np.ndarray[Any, Any] = np.frombuffer(data, dtype=dtype).copy()
        out: np.ndarray[Any, Any] = arr.reshape(shape, order="F" if fortran else "C")
        return out


def _check_header(where: str, dtype: np.dtype[Any], shape: tuple[int, ...],
                  available: int) -> None:
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
        raise LoadError(f"{where} has dtype {dtype}: a graph file holds only boolean and "
                        "numeric arrays (object arrays would need unpickling, which autodag "
                        "never does)")
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise LoadError(f"{where} declares an invalid shape {shape}")
    need = dtype.itemsize * int(np.prod(shape, dtype=object))
    if need != available:
        raise LoadError(f"{where} declares shape {shape} of {dtype} ({need} bytes) but holds "
                        f"{available} bytes of data; the file is truncated or corrupt")


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")
