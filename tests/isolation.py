"""The plugins the suite means to see: the first-party ones and its throwaway ``tplug-*``."""

from __future__ import annotations

import fnmatch

FIRST_PARTY = ("autodag-math", "autodag-array", "autodag-nn", "autodag-linalg")
MEANT = (*FIRST_PARTY, "tplug-*")


def meant(distribution: str | None) -> bool:
    """Whether the suite means to see plugins of this distribution."""
    return any(fnmatch.fnmatchcase(distribution or "", p) for p in MEANT)
