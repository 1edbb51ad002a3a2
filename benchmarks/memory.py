"""W5: working memory of one training step of a 30-layer tanh MLP, in a fresh process.

``python benchmarks/memory.py IMPL`` prints JSON with the peak RSS of a steady step
minus the RSS after import, in MiB. Width 1024, batch 512, float32, no biases, loss
sum(h**2). Theoretical minimum: parameters + gradients (30 * 1024 * 1024 * 4 B each,
120 MiB) + the 30 activations backward needs (30 * 512 * 1024 * 4 B, 60 MiB) + the
input (2 MiB) = 302 MiB.
"""

from __future__ import annotations

import json
import sys
from typing import Any

LAYERS, WIDTH, BATCH = 30, 1024, 512
MIB = 1 << 20
MINIMUM_MIB = (2 * LAYERS * WIDTH * WIDTH * 4 + LAYERS * BATCH * WIDTH * 4
               + BATCH * WIDTH * 4) / MIB


def _status(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def main() -> None:
    """Measure one implementation."""
    impl = sys.argv[1]
    import numpy as np

    step: Any
    if impl == "baseline":
        def step(ws: list[Any], x: Any) -> list[Any]:
            hs = [x]
            for w in ws:
                hs.append(np.tanh(hs[-1] @ w))
            h = hs.pop()
            g = 2 * h
            grads: list[Any] = [None] * len(ws)
            for k in range(len(ws) - 1, -1, -1):
                g *= 1 - h * h  # through tanh; each activation is dropped once used
                h = hs.pop()
                grads[k] = h.T @ g
                if k:
                    g = g @ ws[k].T
            return grads
    elif impl == "autodag":
        import autodag as ad

        with ad.Graph():
            xn = ad.Placeholder(name="x", dtype=np.float32)
            wn = [ad.Placeholder(name=f"w{k}", dtype=np.float32) for k in range(LAYERS)]
            h: Any = xn
            for w in wn:
                h = ad.ops.tanh(h @ w)
            loss = ad.ops.sum(h * h)
        prog = ad.compile(loss, wrt=wn, inputs=[xn, *wn])

        def step(ws: list[Any], x: Any) -> list[Any]:
            return list(prog(x, *ws)[1])
    elif impl == "torch":
        import torch

        torch.set_grad_enabled(True)

        def step(ws: list[Any], x: Any) -> list[Any]:
            hh = x
            for w in ws:
                hh = torch.tanh(hh @ w)
            return list(torch.autograd.grad((hh * hh).sum(), ws))
    elif impl == "autograd":
        import autograd
        import autograd.numpy as anp

        def f(ws: list[Any], x: Any) -> Any:
            hh = x
            for w in ws:
                hh = anp.tanh(hh @ w)
            return anp.sum(hh * hh)

        gf = autograd.grad(f)

        def step(ws: list[Any], x: Any) -> list[Any]:
            return list(gf(ws, x))
    else:
        raise SystemExit(f"unknown implementation {impl!r}")
    rss0 = _status("VmRSS")
    rng = np.random.default_rng(0)
    ws = [(rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
          for _ in range(LAYERS)]
    x = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
    if impl == "torch":
        import torch

        ws = [torch.from_numpy(w).requires_grad_(True) for w in ws]
        x = torch.from_numpy(x)
    for _ in range(2):  # warm up, then measure a steady step
        grads = step(ws, x)
        del grads
        _reset_peak()
    grads = step(ws, x)
    peak = _status("VmHWM")
    del grads
    print(json.dumps({"impl": impl, "working_mib": peak - rss0, "minimum_mib": MINIMUM_MIB}))


if __name__ == "__main__":
    main()
