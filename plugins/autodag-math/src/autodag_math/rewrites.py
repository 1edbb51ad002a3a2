"""The math plugin's rewrites: ``log(exp(x))`` and ``exp(log(x))`` as ``x``.

Both are opt-in (``compile(..., enable_rewrites=["log_exp"])``), as they change results:
``log(exp(x))`` is ``x`` exactly only where ``exp`` neither overflows nor underflows
(``log(exp(800.0))`` is inf, and its gradient NaN where ``exp`` underflows to 0), and
``exp(log(x))`` equals ``x`` only on its domain ``x > 0`` (elsewhere the original gives
NaN, or 0 at 0); inside those ranges they differ from the original only by rounding
(a few ulp), and the gradients become exactly 1.
"""

from __future__ import annotations

from typing import Any, Final

import autodag
from autodag import Rewrite

__all__ = ["REWRITES", "autodag_rewrites"]


def _inverse_of(inner: str) -> Any:
    """A rewrite of ``f(inner(x))`` to ``x``, for ``f`` the inverse of ``inner``."""

    def apply(ctx: Any, node: Any) -> Any:
        (a,) = node.inputs
        if ctx.op_of(a) == inner and ctx.floating(a.inputs[0]):
            return a.inputs[0]
        return None

    return apply


REWRITES: Final = {
    "log_exp": Rewrite(("log",), _inverse_of("exp"), "log(exp(x)) -> x (opt-in: differs "
                       "where exp overflows or underflows)", exact=False),
    "exp_log": Rewrite(("exp",), _inverse_of("log"), "exp(log(x)) -> x (opt-in: only for "
                       "x > 0, where the original is defined)", exact=False),
}


@autodag.hookimpl
def autodag_rewrites() -> dict[str, Rewrite]:
    """The math plugin's rewrites (opt-in: they change results outside a domain)."""
    return dict(REWRITES)
