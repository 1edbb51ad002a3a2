"""``autodag grad``'s argument list made fit for argparse: EXPR may start with '-'.

argparse takes any argument starting with '-' for an option, so ``autodag grad -x*y``
would be refused; this finds EXPR among the arguments first, by grad's own options.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final

__all__ = ["parse_grad"]

#: grad's long options and whether each takes a value: the options ``cli_grad``
#: gives grad's parser, which this must list too.
_GRAD_OPTIONS: Final = {"--wrt": True, "--json": False, "--dot": True, "--render": True,
                        "--max-bytes": True, "--help": False}


def _grad_options(arg: str) -> list[str]:
    """grad's long options ``arg`` names, as argparse takes unique abbreviations too."""
    name = arg.partition("=")[0]
    return [o for o in _GRAD_OPTIONS if o.startswith(name)]


def _find_expression(argv: Sequence[str]) -> int | None:
    """Where grad's EXPR is in ``argv`` (``grad ...``), or None when it is missing.

    EXPR is the first argument that is neither an option nor an option's value, so it
    may start with '-' (-x*y), and ``--x`` is an expression while ``--js`` is --json.
    """
    k = 1
    while k < len(argv):
        arg = argv[k]
        if arg == "--":
            return k + 1 if k + 1 < len(argv) else None
        if not arg.startswith("-") or arg == "-":
            return k
        options = _grad_options(arg) if arg.startswith("--") else []
        if options:
            takes_value = len(options) == 1 and _GRAD_OPTIONS[options[0]]
            k += 2 if takes_value and "=" not in arg else 1
        elif arg == "-h":
            k += 1
        else:
            return k
    return None


def parse_grad(grad: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """grad's arguments; EXPR may start with '-', options may come between the values."""
    k = _find_expression(argv)
    if k is None:
        return grad.parse_args(argv[1:])  # argparse's own message, or --help
    expr = argv[k]
    # argparse takes an argument starting with '-' for an option, one starting with a
    # space for a positional; the text is put back after parsing.
    protected = [*argv[1:k], " " + expr, *argv[k + 1:]] if expr.startswith("-") else argv[1:]
    args = grad.parse_intermixed_args(protected)
    args.expr = expr
    return args
