"""einsum, and the vector-Jacobian product every product op here is made of.

The gradient of operand ``k`` of an einsum is an einsum of the output's gradient and the
other operands, whose output is operand ``k``'s term. Where that term repeats a label
(a diagonal, ``"ii->i"``) or names one found nowhere else (a sum, ``"ij->i"``), an
extra operand shaped like operand ``k`` (``linalg_einsum_mask``: ones where repeated
labels' indices agree) spreads the gradient over it. Being an einsum again, the rule
differentiates again, to any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from autodag import REQUIRED, OpDef, Sample
from autodag.backend import namespace_of

from ._einsum import (
    ELLIPSIS,
    any_foreign,
    explicit,
    float_dtype,
    fresh_letters,
    generic_einsum,
    index_mask,
    join,
    parse,
    shape_of,
)

__all__ = ["EINSUM", "EINSUM_MASK", "einsum_vjp"]


def _einsum(*operands: Any, subscripts: str, optimize: Any) -> Any:
    if any_foreign(operands):
        return generic_einsum(subscripts, *operands)  # the library picks its own order
    return np.einsum(subscripts, *operands, optimize=optimize)


def _einsum_mask(like: Any, subscripts: str) -> Any:
    xp = namespace_of(like) if any_foreign((like,)) else np
    shape = shape_of(like)
    (labels,), _ = explicit(subscripts + "->", [len(shape)])
    return index_mask(xp, shape, labels, float_dtype(xp, like))


def einsum_vjp(xp: Any, g: Any, operands: Sequence[Any], subscripts: str, k: int) -> Any:
    """The gradient of operand ``k`` of ``einsum(subscripts, *operands)``, as an einsum."""
    ins, out = parse(subscripts)
    term = ins[k]
    others = [i for i in range(len(ins)) if i != k]
    present = set(out).union(*(ins[i] for i in others))
    fresh = iter(fresh_letters({t for toks in (*ins, out) for t in toks}, len(term)))
    renamed: list[str] = []
    for t in term:
        renamed.append(next(fresh) if t != ELLIPSIS and t in renamed else t)
    terms = [out, *(ins[i] for i in others)]
    args = [g, *(operands[i] for i in others)]
    if renamed != term or not set(term) <= present:
        terms.append(renamed)
        args.append(xp.linalg_einsum_mask(operands[k], subscripts="".join(term)))
    return xp.einsum(args, subscripts=join(terms, renamed))


def _einsum_backward(xp: Any, g: Any, out: Any, *operands: Any, subscripts: str,
                     optimize: Any) -> tuple[Any, ...]:
    return tuple(einsum_vjp(xp, g, operands, subscripts, k) for k in range(len(operands)))


def _einsum_samples(rng: np.random.Generator) -> list[Sample]:
    r = rng.standard_normal
    return [
        Sample((r((2, 3)), r((3, 4))), {"subscripts": "ij,jk->ik"}),
        Sample((r((3, 3)),), {"subscripts": "ii"}),
        Sample((r((2, 2, 3)), r((2, 3, 4))), {"subscripts": "...ij,...jk"}),
        Sample((r((3,)), r((3,)), r((2, 3))), {"subscripts": "i,i,ji->j"}),
        Sample((r((2, 3)),), {"subscripts": "ij->ji"}),
        Sample((r((3, 3, 2)),), {"subscripts": "iij->ij"}),
        Sample((r((2, 1, 3)), r((4, 3))), {"subscripts": "...i,...i->..."}),
        Sample((r(()), r((2,))), {"subscripts": ",i->i"}),
        Sample((r((2, 3)), r((3, 4)), r((4, 2))), {"subscripts": "ij,jk,kl", "optimize": True}),
    ]


def _mask_samples(rng: np.random.Generator) -> list[Sample]:
    r = rng.standard_normal
    return [Sample((r((3, 3)),), {"subscripts": "ii"}),
            Sample((r((2, 3, 2)),), {"subscripts": "i...i"})]


def _numpy_form(args: tuple[Any, ...], kwargs: dict[str, Any]
                ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    # numpy.einsum("ij,jk", a, b): subscripts first, then the operands.
    if args and isinstance(args[0], str):
        return (list(args[1:]),), {"subscripts": args[0], **kwargs}
    return args, kwargs


EINSUM: Final = OpDef(
    name="einsum", arity=None, attributes={"subscripts": REQUIRED, "optimize": False},
    forward=_einsum, backward=_einsum_backward, samples=_einsum_samples, array_api=True,
    numpy_call=_numpy_form,
    doc="Einstein summation of a sequence of operands, as numpy.einsum(subscripts, "
        "*operands) (also einsum([a, b], subscripts='ij,jk->ik')); any subscripts NumPy "
        "accepts (repeated labels, '...', implicit output; optimize as NumPy's, on "
        "NumPy).",
)
EINSUM_MASK: Final = OpDef(
    name="linalg_einsum_mask", arity=1, attributes={"subscripts": REQUIRED},
    forward=_einsum_mask, backward=None, samples=_mask_samples, array_api=True,
    input_names=("like",),
    doc="Ones shaped like `like` where the axes of each label repeated in its einsum "
        "term share an index, zeros elsewhere (einsum's gradient helper; no gradient).",
)
