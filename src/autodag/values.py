"""The VALUE of ``autodag grad``'s NAME=VALUE: a number or a nested array of numbers.

Numbers are JSON's plus ``.5``, ``5.``, ``+1`` and nan/inf/infinity in any case. Arrays
are read by JSON's parser when they are short and plain, else token by token into one
flat buffer, so a long value takes no more memory than its text.
"""

from __future__ import annotations

import array
import json
import re
from typing import Any, Final

import numpy as np

from .expr_syntax import ExpressionError

__all__ = ["MAX_VALUE_DIMS", "parse_value"]

#: How deep a value's arrays may nest (NumPy 1.x arrays have at most 32 dimensions).
MAX_VALUE_DIMS: Final = 32
#: A number in a value: what JSON allows, plus .5, 5., +1 and nan/inf/infinity in any case.
_NUMBER: Final = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|nan|inf(?:inity)?)", re.I | re.ASCII
)
_VALUE_TOKEN: Final = re.compile(r"\s*(?:([\[\],])|([^\s\[\],]+))", re.ASCII)
#: Arrays of plain JSON numbers only (no true, null, strings, nan): JSON reads them as
#: the tokenizer would. Longer ones are left to the tokenizer, whose memory stays at
#: 8 bytes a number where JSON's nested lists take five times that.
_PLAIN_ARRAY: Final = re.compile(r"[\d\s\[\],.eE+-]*", re.ASCII)
_FAST_VALUE: Final = 1_000_000
_NOT_RECTANGULAR: Final = "is not a rectangular array of numbers"


def _at(start: int) -> str:
    # Only made for a message: a long value has millions of tokens.
    return f"at character {start + 1}"


def _bad_value(name: str, text: str, why: str) -> ExpressionError:
    return ExpressionError(f"value of {name!r} {why}: {text!r:.60}")


def parse_value(text: str, name: str = "value") -> np.float64 | np.ndarray[Any, Any]:
    """A number or a nested array of numbers (``[[1, 2], [3, 4]]``), as float64.

    Numbers are JSON's plus ``.5``, ``5.``, ``+1`` and ``nan``, ``inf``, ``-inf`` and
    ``infinity`` in any case, alone or inside arrays.
    """
    stripped = text.strip()
    if _NUMBER.fullmatch(stripped):
        number: np.float64 = np.float64(float(stripped))
        return number
    if stripped.startswith("["):
        if len(stripped) <= _FAST_VALUE and _PLAIN_ARRAY.fullmatch(stripped):
            # JSON's parser in C is ten times faster than the tokenizer. Whatever it or
            # NumPy refuses goes to the tokenizer, for its message (or its number forms).
            try:
                arr = np.array(json.loads(stripped), dtype=np.float64)
            except (ValueError, TypeError, OverflowError, RecursionError):
                pass
            else:
                if 0 < arr.ndim <= MAX_VALUE_DIMS:
                    return arr
        return _parse_array(stripped, name)
    try:
        json.loads(stripped)
    except (ValueError, RecursionError):
        raise _bad_value(name, text, "is not a number or an array of numbers") from None
    raise _bad_value(name, text, "must be a number or an array of numbers")


class _ArrayReader:
    """What has been read of a nested array so far: its numbers and its shape."""

    __slots__ = ("counts", "data", "deepest", "dims", "expect_value", "leaf", "name", "text")

    def __init__(self, text: str, name: str) -> None:
        self.text, self.name = text, name
        self.data = array.array("d")
        self.counts: list[int] = []  # elements so far of each open array
        self.dims: dict[int, int] = {}  # the length of every array at each depth, once closed
        self.deepest = 0  # the most arrays ever open at once
        self.leaf: int | None = None  # how many arrays are open around every number
        self.expect_value = True  # after '[' or ',': a value; after a value: ',' or ']'

    def bad(self, why: str) -> ExpressionError:
        """The error for this value, saying ``why``."""
        return _bad_value(self.name, self.text, why)

    def open(self, start: int) -> None:
        """A ``[`` at index ``start``."""
        if not self.expect_value:
            raise self.bad(f"needs a comma before '[' {_at(start)}")
        if self.leaf is not None and self.leaf <= len(self.counts):
            raise self.bad(f"{_NOT_RECTANGULAR} (an array where numbers were) {_at(start)}")
        self.counts.append(0)
        if len(self.counts) > MAX_VALUE_DIMS:
            raise self.bad(f"is nested more than {MAX_VALUE_DIMS} levels deep")
        self.deepest = max(self.deepest, len(self.counts))

    def close(self, start: int) -> None:
        """A ``]`` at index ``start``."""
        counts = self.counts
        if self.expect_value and counts and counts[-1] > 0:
            raise self.bad(f"has a value missing before ']' {_at(start)}")
        if not counts:
            raise self.bad(f"has an unmatched ']' {_at(start)}")
        n, d = counts.pop(), len(counts)
        if self.dims.setdefault(d, n) != n:
            raise self.bad(f"{_NOT_RECTANGULAR} (arrays of lengths {self.dims[d]} and {n} "
                           "side by side)")
        if counts:
            counts[-1] += 1
        self.expect_value = False

    def comma(self, start: int) -> None:
        """A ``,`` at index ``start``."""
        if self.expect_value:
            raise self.bad(f"has a value missing before ',' {_at(start)}")
        self.expect_value = True

    def number(self, word: str, start: int) -> None:
        """Any other word, at index ``start``: a number where numbers go."""
        if not self.expect_value:
            raise self.bad(f"needs a comma before {word!r:.20} {_at(start)}")
        if not _NUMBER.fullmatch(word):
            raise self.bad(f"is not an array of numbers: {word!r:.20} {_at(start)} is not a number")
        depth = len(self.counts)
        if self.leaf is None:
            self.leaf = depth
        if self.leaf != depth or self.deepest != depth:
            raise self.bad(f"{_NOT_RECTANGULAR} (a number where arrays were) {_at(start)}")
        self.data.append(float(word))
        self.counts[-1] += 1
        self.expect_value = False

    def result(self) -> np.ndarray[Any, Any]:
        """The array read, once the text has ended."""
        if self.counts:
            raise self.bad("is missing a closing ']'")
        shape = tuple(self.dims[d] for d in range(self.deepest))
        if not self.data:
            return np.zeros(shape, dtype=np.float64)
        return np.frombuffer(self.data, dtype=np.float64).reshape(shape)


def _parse_array(text: str, name: str) -> np.ndarray[Any, Any]:
    """A rectangular nested array, read token by token into one flat buffer.

    No nested Python lists are built: each number goes straight into 8 bytes, so reading
    a long value takes no more memory than its text.
    """
    reader = _ArrayReader(text, name)
    pos = 0
    while pos < len(text):
        m = _VALUE_TOKEN.match(text, pos)
        if m is None:
            break  # only whitespace is left
        punct, word = m.group(1), m.group(2)
        start, pos = m.start(1 if punct else 2), m.end()
        if not reader.counts and start > 0:
            raise reader.bad(f"has text after its array {_at(start)}")
        if punct == "[":
            reader.open(start)
        elif punct == "]":
            reader.close(start)
        elif punct == ",":
            reader.comma(start)
        else:
            reader.number(word, start)
    return reader.result()
