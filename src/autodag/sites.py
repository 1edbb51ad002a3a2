"""Where a node was created: the first caller outside autodag and its plugins."""

from __future__ import annotations

import sys
from types import CodeType, FrameType
from typing import Final

__all__ = ["creation_site", "user_stacklevel"]

_PACKAGE_PREFIXES: Final = ("autodag", "autodag_")


def creation_site() -> tuple[str, int] | None:
    """File and line of the first caller frame outside autodag and its plugins.

    The search starts at the caller of the function that asks (a node's constructor).
    """
    f: FrameType | None = sys._getframe(2)
    while f is not None:
        code = f.f_code
        internal = _INTERNAL_CODE.get(code)
        if internal is None:
            mod = f.f_globals.get("__name__", "")
            internal = _INTERNAL_CODE[code] = mod.startswith(_PACKAGE_PREFIXES)
        if not internal:
            return code.co_filename, f.f_lineno
        f = f.f_back
    return None


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside autodag.

    For the function that calls ``warnings.warn``: 2 would be its own caller.
    """
    level = 2
    f: FrameType | None = sys._getframe(2)
    while f is not None and f.f_globals.get("__name__", "").startswith(_PACKAGE_PREFIXES):
        f = f.f_back
        level += 1
    return level


# Whether a code object belongs to autodag or a plugin: asked for every node built, so
# remembered (bounded by the amount of code in the process).
_INTERNAL_CODE: dict[CodeType, bool] = {}
