"""Einsum subscripts read as NumPy reads them, and einsum on any array library.

Subscripts are split into tokens per operand: one letter each, ``...`` one token. On
another library's arrays an einsum is that library's own where it has one (Dask,
torch, JAX, CuPy: the intermediate products stay its business; Dask's refuses a label
repeated in one operand over axes chunked differently). The array-API standard has
none, so elsewhere (and there) an einsum is made of the standard's functions: repeated
labels of an operand become a diagonal (an equality mask, summed), the operands are
aligned on one order of labels and multiplied with broadcasting, and the labels not in
the output are summed.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any, Final

import array_api_compat
import numpy as np

from autodag.backend import is_array, namespace_of

__all__ = ["ELLIPSIS", "any_foreign", "explicit", "float_dtype", "fresh_letters", "generic_einsum",
           "index_mask", "join", "parse", "shape_of"]

ELLIPSIS: Final = "..."
PY_NUMBERS: Final = (bool, int, float, complex)
_NUMPY: Final = frozenset({np.ndarray, bool, int, float, complex, *np.sctypeDict.values()})


def foreign(x: Any) -> bool:
    """Whether ``x`` is an array of a library other than NumPy."""
    return x.__class__ not in _NUMPY and is_array(x)


def any_foreign(values: Sequence[Any]) -> bool:
    """Whether any of ``values`` is another library's array."""
    return any(foreign(x) for x in values)


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array of any library, or of Python data (through NumPy)."""
    s = getattr(x, "shape", None)
    return tuple(int(d) for d in s) if s is not None else tuple(np.shape(x))


def float_dtype(xp: Any, like: Any) -> Any:
    """``like``'s dtype if floating, else float64 (``xp``'s; NumPy's where ``xp`` is NumPy)."""
    if xp is np:
        dt = np.result_type(like)
        return dt if dt.kind in "fc" else np.dtype(np.float64)
    dt = like.dtype
    return dt if xp.isdtype(dt, ("real floating", "complex floating")) else xp.float64


def _tokens(term: str) -> list[str]:
    term = term.replace(" ", "")
    if term.count(ELLIPSIS) > 1 or term.replace(ELLIPSIS, "").count(".") > 0:
        raise ValueError(f"einsum: invalid subscripts term {term!r}")
    head, sep, tail = term.partition(ELLIPSIS)
    toks = [*head, *([ELLIPSIS] if sep else []), *tail]
    for t in toks:
        if t != ELLIPSIS and t not in string.ascii_letters:
            raise ValueError(f"einsum: invalid subscript {t!r} in {term!r}")
    return toks


def parse(subscripts: str) -> tuple[list[list[str]], list[str]]:
    """Tokens of each operand and of the output (explicit, as NumPy's implicit mode
    makes it: an ellipsis first, then the labels used once, in alphabetical order)."""
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string, got {subscripts!r}")
    lhs, arrow, rhs = subscripts.partition("->")
    ins = [_tokens(t) for t in lhs.split(",")]
    if arrow:
        return ins, _tokens(rhs)
    flat = [t for toks in ins for t in toks if t != ELLIPSIS]
    once = sorted((t for t in set(flat) if flat.count(t) == 1), key=_letter_rank)
    ell = [ELLIPSIS] if any(ELLIPSIS in toks for toks in ins) else []
    return ins, ell + once


def _letter_rank(t: str) -> tuple[int, str]:
    # NumPy orders implicit output labels as its ASCII table does: uppercase first.
    return (0 if t.isupper() else 1, t)


def join(ins: Sequence[Sequence[str]], out: Sequence[str]) -> str:
    """Subscripts from tokens."""
    return ",".join("".join(t) for t in ins) + "->" + "".join(out)


def fresh_letters(used: set[str], n: int) -> list[str]:
    """``n`` letters not among ``used``."""
    free = [c for c in string.ascii_letters if c not in used]
    if len(free) < n:
        raise ValueError("einsum: too many labels: no free letters left")
    return free[:n]


def explicit(subscripts: str, ndims: Sequence[int]) -> tuple[list[list[str]], list[str]]:
    """Tokens with each ellipsis replaced by letters, aligned from the right."""
    ins, out = parse(subscripts)
    if len(ins) != len(ndims):
        raise ValueError(f"einsum: {len(ins)} operand terms in {subscripts!r} for "
                         f"{len(ndims)} operands")
    used = {t for toks in (*ins, out) for t in toks}
    widths = [nd - (len(toks) - 1) for toks, nd in zip(ins, ndims) if ELLIPSIS in toks]
    if any(w < 0 for w in widths):
        raise ValueError(f"einsum: an operand has fewer dimensions than {subscripts!r} names")
    ell = fresh_letters(used, max(widths, default=0))

    def expand(toks: list[str], width: int) -> list[str]:
        if ELLIPSIS not in toks:
            return toks
        i = toks.index(ELLIPSIS)
        return [*toks[:i], *ell[len(ell) - width:], *toks[i + 1:]]

    new_ins = []
    for toks, nd in zip(ins, ndims):
        width = nd - (len(toks) - 1) if ELLIPSIS in toks else 0
        if ELLIPSIS not in toks and len(toks) != nd:
            raise ValueError(f"einsum: term {''.join(toks)!r} of {subscripts!r} names "
                             f"{len(toks)} axes of an operand with {nd}")
        new_ins.append(expand(toks, width))
    return new_ins, expand(out, len(ell))


def index_mask(xp: Any, shape: Sequence[int], labels: Sequence[str], dtype: Any) -> Any:
    """Ones of ``shape`` where the axes of each repeated label share an index, else 0."""
    mask = xp.ones(tuple(shape), dtype=dtype)
    rank = len(shape)
    for p, lab in enumerate(labels):
        for q in range(p + 1, rank):
            if labels[q] != lab:
                continue
            i = xp.arange(shape[p])
            j = xp.arange(shape[q])
            eq = xp.astype(xp.expand_dims(i, axis=1) == xp.expand_dims(j, axis=0), dtype)
            mask = mask * xp.reshape(eq, tuple(
                shape[a] if a in (p, q) else 1 for a in range(rank)))
            break  # later repeats pair with q in turn
    return mask


def _take_diagonals(xp: Any, x: Any, labels: list[str]) -> tuple[Any, list[str]]:
    """``x`` with each repeated label reduced to one axis (its diagonal)."""
    while len(set(labels)) < len(labels):
        p = next(i for i, t in enumerate(labels) if labels.count(t) > 1)
        q = labels.index(labels[p], p + 1)
        shape = shape_of(x)
        x = xp.sum(x * index_mask(xp, shape, [labels[p] if a in (p, q) else str(a)
                                              for a in range(len(shape))], x.dtype), axis=q)
        labels = labels[:q] + labels[q + 1:]
    return x, labels


def generic_einsum(subscripts: str, *operands: Any) -> Any:
    """``numpy.einsum`` on the operands' library: its einsum, or its array-API functions."""
    xp = namespace_of(*operands)
    arrays = [xp.asarray(x) if x.__class__ in PY_NUMBERS else x for x in operands]
    native = getattr(xp, "einsum", None)
    if native is not None and not (array_api_compat.is_dask_namespace(xp) and any(
            len(set(t)) < len(t) for t in parse(subscripts)[0])):
        return native(subscripts, *arrays)
    return _standard_einsum(xp, subscripts, arrays)


def _standard_einsum(xp: Any, subscripts: str, arrays: Sequence[Any]) -> Any:
    """einsum with the standard's functions only: every label one axis of a broadcast
    product (as large as all the operands' axes together), then summed."""
    ins, out = explicit(subscripts, [len(shape_of(x)) for x in arrays])
    order = list(dict.fromkeys([*out, *(t for toks in ins for t in toks)]))
    total: Any = None
    for x, toks in zip(arrays, ins):
        x, labs = _take_diagonals(xp, x, list(toks))
        perm = sorted(range(len(labs)), key=lambda i: order.index(labs[i]))
        x = xp.permute_dims(x, tuple(perm))
        have = [labs[i] for i in perm]
        for pos, lab in enumerate(order):
            if lab not in have:
                x = xp.expand_dims(x, axis=pos)
                have.insert(pos, lab)
        total = x if total is None else total * x
    summed = tuple(range(len(out), len(order)))
    return xp.sum(total, axis=summed) if summed else total
