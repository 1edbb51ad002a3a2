"""A PNG writer and a line chart drawn with NumPy: loss curves without a plotting library.

The chart is rasterised into an RGB array (lines by dense sampling, text in a 3x5 pixel
font) and written as an 8-bit truecolour PNG with :mod:`zlib` and :mod:`struct`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["line_chart", "write_png"]

RGB = tuple[int, int, int]
Image = np.ndarray[Any, np.dtype[np.uint8]]

BLACK: Final[RGB] = (0, 0, 0)
GREY: Final[RGB] = (210, 210, 210)
BLUE: Final[RGB] = (31, 119, 180)
ORANGE: Final[RGB] = (230, 115, 0)

# 3x5 glyphs, one string of 15 bits per character, rows top to bottom.
_FONT: Final[dict[str, str]] = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    "+": "000010111010000", "e": "000011101110011", "l": "110010010010111",
    "o": "000111101101111", "s": "000011100001110", "t": "010111010010011",
    "p": "000111101111100", "a": "000011101101011", "c": "000111100100111",
    "u": "000101101101111", "r": "000111100100100", "y": "000101111001111",
    "g": "000011101011110", " ": "0" * 15, "%": "101001010100101",
    "/": "001001010100100", ":": "000010000010000", "(": "010100100100010",
    ")": "010001001001010", "n": "000110101101101", "i": "010000010010010",
    "m": "000111111101101", "h": "100100111101101",
    "w": "000101101111111", "d": "001001111101111",
}


def write_png(path: str | Path, image: Image) -> Path:
    """Write an (height, width, 3) uint8 array as an RGB PNG file."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"write_png needs an (height, width, 3) array, got shape {img.shape}")
    h, w, _ = img.shape
    # Each scanline starts with its filter type: 0, no filter.
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = b"".join([
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)),
        chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)),
        chunk(b"IEND", b""),
    ])
    p = Path(path)
    p.write_bytes(png)
    return p


def _text(img: Image, x: int, y: int, text: str, color: RGB, scale: int = 2) -> None:
    """Draw ``text`` with its top-left corner at (x, y); unknown characters are blank."""
    h, w, _ = img.shape
    for i, ch in enumerate(text):
        glyph = _FONT.get(ch, _FONT[" "])
        for k, bit in enumerate(glyph):
            if bit == "1":
                r, c = divmod(k, 3)
                y0, x0 = y + r * scale, x + (i * 4 + c) * scale
                if 0 <= y0 <= h - scale and 0 <= x0 <= w - scale:
                    img[y0 : y0 + scale, x0 : x0 + scale] = color


def _text_width(text: str, scale: int = 2) -> int:
    return len(text) * 4 * scale


def _polyline(img: Image, xs: np.ndarray[Any, Any], ys: np.ndarray[Any, Any],
              color: RGB) -> None:
    """Draw the line through the points (xs, ys), two pixels thick."""
    h, w, _ = img.shape
    if len(xs) == 1:
        xs, ys = np.repeat(xs, 2), np.repeat(ys, 2)
    lengths = np.maximum(np.abs(np.diff(xs)), np.abs(np.diff(ys)))
    n = int(np.ceil(lengths.max())) + 2 if len(lengths) else 2
    t = np.linspace(0.0, 1.0, n)
    px = (xs[:-1, None] + np.diff(xs)[:, None] * t).ravel()
    py = (ys[:-1, None] + np.diff(ys)[:, None] * t).ravel()
    for dx in (0, 1):
        for dy in (0, 1):
            cx = np.clip(np.round(px).astype(int) + dx, 0, w - 1)
            cy = np.clip(np.round(py).astype(int) + dy, 0, h - 1)
            img[cy, cx] = color


def _tick(v: float) -> str:
    return f"{v:.3g}"


def line_chart(
    series: Sequence[tuple[str, Sequence[float], RGB]],
    *,
    title: str = "",
    xlabel: str = "step",
    log_first: bool = True,
    width: int = 640,
    height: int = 400,
) -> Image:
    """An RGB image of one or two curves over their step number.

    The first series sets the left axis (log scale with ``log_first`` when all its
    values are positive); a second one is drawn on its own 0..max scale, labelled right.
    """
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    left, right, top, bottom = 70, 60, 40, 50
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    img[y0:y1 + 1, x0] = BLACK
    img[y1, x0:x1 + 1] = BLACK
    for gy in np.linspace(y0, y1, 5)[:-1]:
        img[int(gy), x0 + 1 : x1 + 1 : 4] = GREY
    if title:
        _text(img, (width - _text_width(title, 3)) // 2, 8, title, BLACK, 3)
    _text(img, (x0 + x1 - _text_width(xlabel)) // 2, y1 + 28, xlabel, BLACK)
    for k, (name, values, color) in enumerate(series[:2]):
        v = np.asarray(values, dtype=np.float64)
        if v.size == 0:
            continue
        finite = v[np.isfinite(v)]
        if finite.size == 0:
            continue
        v = np.where(np.isfinite(v), v, finite.max())
        use_log = k == 0 and log_first and bool(np.all(v > 0))
        scaled = np.log10(v) if use_log else v
        lo, hi = (float(scaled.min()), float(scaled.max())) if k == 0 else (0.0, max(
            1.0, float(v.max())))
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        steps = np.arange(1, v.size + 1, dtype=np.float64)
        xs = x0 + (steps - 1) / max(v.size - 1, 1) * (x1 - x0)
        ys = y1 - (scaled - lo) / (hi - lo) * (y1 - y0)
        _polyline(img, xs, ys, color)
        top_label = _tick(10**hi if use_log else hi)
        low_label = _tick(10**lo if use_log else lo)
        label = f"{name} (log)" if use_log else name
        if k == 0:
            _text(img, x0 - 6 - _text_width(top_label), y0 - 4, top_label, color)
            _text(img, x0 - 6 - _text_width(low_label), y1 - 8, low_label, color)
            _text(img, x0 + 10, y1 - 20, label, color)
        else:
            _text(img, x1 + 6, y0 - 4, top_label, color)
            _text(img, x1 + 6, y1 - 8, low_label, color)
            _text(img, x1 - 10 - _text_width(label), y0 + 6, label, color)
    n = max((len(s[1]) for s in series[:2]), default=0)
    _text(img, x0 - 2, y1 + 8, "1", BLACK)
    last = str(max(n, 1))
    _text(img, x1 - _text_width(last) + 2, y1 + 8, last, BLACK)
    return img
