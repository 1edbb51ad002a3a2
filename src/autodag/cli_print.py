"""``autodag grad``'s printed result: the value and the derivatives, as text or as the
one JSON object ``--json`` documents."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["print_result"]


def _jsonable(value: Any) -> Any:
    """Floats and nested lists of floats, with non-finite numbers as strings."""
    def fix(x: Any) -> Any:
        if isinstance(x, list):
            return [fix(v) for v in x]
        f = float(x)
        if math.isfinite(f):
            return f
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")

    return fix(np.asarray(value, dtype=np.float64).tolist())


def _number(x: Any) -> str:
    return f"{float(x):.10g}"


def _text(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return _number(arr)
    return np.array2string(arr, separator=", ", max_line_width=100,
                           formatter={"all": _number})


def print_result(expression: str, value: Any, grads: Mapping[str, Any], *,
                 as_json: bool) -> None:
    """Print ``value`` and its derivatives ``grads`` (by name) to standard output."""
    scalar = np.ndim(value) == 0
    if as_json:
        doc = {
            "version": 1,
            "expression": expression,
            "value": _jsonable(value),
            "shape": list(np.shape(value)),
            "dtype": np.result_type(value).name,
            "differentiated": "value" if scalar else "sum(value)",
            "wrt": list(grads),
            "gradients": {n: _jsonable(g) for n, g in grads.items()},
        }
        print(json.dumps(doc))
    else:
        shape = "" if scalar else f" (shape {np.shape(value)}; derivatives are of its sum)"
        print(f"value{shape} = {_text(value)}")
        for n, g in grads.items():
            print(f"d/d{n} = {_text(g)}")
