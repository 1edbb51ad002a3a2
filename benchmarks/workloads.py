"""Workloads W1-W4: each builds a hand-written baseline and the contenders on one input.

``python benchmarks/workloads.py W3 --dtype float32`` times one case in this process
and prints a JSON line; ``run.py`` starts one process per case. Every contender is
checked against the baseline (values and gradients) before it is timed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import autodag as ad

Case = dict[str, Callable[[], Any]]


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# --- W1: z = (x*y + c)*c + x on Python floats ----------------------------------------
def w1() -> tuple[Case, Callable[[], Any], dict[str, Any]]:
    """The seed graph; Python floats in and out, new values every call."""
    c = 1.3
    pick = itertools.cycle([(0.9 + 0.001 * k, 0.4 - 0.001 * k) for k in range(64)]).__next__

    def baseline() -> Any:
        x, y = pick()
        a = x * y
        b = a + c
        z = b * c + x
        return z, [c * y + 1.0, c * x, b + c]

    with ad.Graph():
        xn, yn = ad.Placeholder(name="x"), ad.Placeholder(name="y")
        cn = ad.Constant(c, name="c")
        zn = (xn * yn + cn) * cn + xn
    prog = ad.compile(zn, wrt=[xn, yn, cn], inputs=[xn, yn])

    def compiled() -> Any:
        x, y = pick()
        return prog(x, y)

    def plain_grad() -> Any:
        x, y = pick()
        value = ad.evaluate(zn, {xn: x, yn: y})
        return value, ad.grad(zn, [xn, yn, cn], {xn: x, yn: y})

    case: Case = {"autodag compiled": compiled, "autodag grad": plain_grad}
    if _has("torch"):
        import torch

        ct = torch.tensor(c, dtype=torch.float64, requires_grad=True)

        def torch_eager() -> Any:
            x, y = pick()
            xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
            z = (xt * yt + ct) * ct + xt
            gx, gy, gc = torch.autograd.grad(z, [xt, yt, ct])
            return z.item(), [gx.item(), gy.item(), gc.item()]

        case["torch eager"] = torch_eager
    if _has("autograd"):
        import autograd

        f = autograd.value_and_grad(lambda x, y, cc: (x * y + cc) * cc + x, argnum=[0, 1, 2])

        def hips() -> Any:
            x, y = pick()
            v, g = f(x, y, c)
            return v, list(g)

        case["autograd"] = hips
    return case, baseline, {"ops": 4, "unit": "eval"}


# --- W2: x = (x*a + b) / (1 + x**2), N ops --------------------------------------------
def w2(n_ops: int) -> tuple[Case, Callable[[], Any], dict[str, Any]]:
    """A chain of scalar ops; gradients for x0, a and b."""
    steps = n_ops // 5
    pick = itertools.cycle([(0.5 + 0.001 * k, 0.9, 0.1) for k in range(16)]).__next__

    def baseline() -> Any:
        x0, a, b = pick()
        xs = []
        x = x0
        for _ in range(steps):
            xs.append(x)
            x = (x * a + b) / (1 + x**2)
        gx, ga, gb = 1.0, 0.0, 0.0
        for xi in reversed(xs):
            num = xi * a + b
            den = 1 + xi**2
            gn = gx / den
            ga += gn * xi
            gb += gn
            gx = gn * a - gx * num / (den * den) * 2 * xi
        return x, [gx, ga, gb]

    t0 = time.perf_counter()
    with ad.Graph():
        x0n, an, bn = (ad.Placeholder(name=s) for s in ("x0", "a", "b"))
        xn: Any = x0n
        for _ in range(steps):
            xn = (xn * an + bn) / (1 + xn**2)
    t1 = time.perf_counter()
    prog = ad.compile(xn, wrt=[x0n, an, bn], inputs=[x0n, an, bn])
    t2 = time.perf_counter()

    def compiled() -> Any:
        return prog(*pick())

    case: Case = {"autodag compiled": compiled}
    info: dict[str, Any] = {"ops": 5 * steps, "unit": "op", "build_s": t1 - t0,
                            "compile_s": t2 - t1}
    if _has("torch") and n_ops <= 1000:
        import torch

        def torch_eager() -> Any:
            x0, a, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True)
                        for v in pick())
            x = x0
            for _ in range(steps):
                x = (x * a + b) / (1 + x**2)
            g = torch.autograd.grad(x, [x0, a, b])
            return x.item(), [t.item() for t in g]

        case["torch eager"] = torch_eager
    if _has("autograd") and n_ops <= 1000:
        import autograd

        def chain(x: Any, a: Any, b: Any) -> Any:
            for _ in range(steps):
                x = (x * a + b) / (1 + x**2)
            return x

        f = autograd.value_and_grad(chain, argnum=[0, 1, 2])

        def hips() -> Any:
            v, g = f(*pick())
            return v, list(g)

        case["autograd"] = hips
    return case, baseline, info


# --- W3: MLP 784-256-256-10, tanh, softmax cross-entropy ------------------------------
def w3(dtype: str) -> tuple[Case, Callable[[], Any], dict[str, Any]]:
    """One training step's loss and the gradients of all six parameters."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    batch, sizes = 256, (784, 256, 256, 10)
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        params.append((rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dt))
        params.append((0.1 * rng.standard_normal(fan_out)).astype(dt))
    xs = [rng.standard_normal((batch, 784)).astype(dt) for _ in range(2)]
    ys = [rng.integers(0, 10, batch) for _ in range(2)]
    it = iter(range(1 << 62))

    def pick() -> tuple[Any, Any]:
        k = next(it) & 1
        return xs[k], ys[k]

    def baseline() -> Any:
        x, y = pick()
        w1_, b1, w2_, b2, w3_, b3 = params
        h1 = np.tanh(x @ w1_ + b1)
        h2 = np.tanh(h1 @ w2_ + b2)
        z = h2 @ w3_ + b3
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(batch)
        loss = np.mean(np.log(s[:, 0]) + m[:, 0] - z[rows, y])
        dz = e / s
        dz[rows, y] -= 1
        dz /= batch
        dh2 = dz @ w3_.T
        dh2 *= 1 - h2 * h2
        dh1 = dh2 @ w2_.T
        dh1 *= 1 - h1 * h1
        return loss, [x.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0)]

    with ad.Graph():
        xn = ad.Placeholder(name="x", dtype=dt, shape=(None, 784))
        yn = ad.Placeholder(name="labels", dtype=int, shape=(None,))
        pn = [ad.Placeholder(name=f"p{k}", dtype=dt) for k in range(6)]
        h = xn
        for k in range(3):
            h = h @ pn[2 * k] + pn[2 * k + 1]
            if k < 2:
                h = ad.ops.tanh(h)
        loss = ad.ops.mean(ad.ops.softmax_cross_entropy(h, yn))
    prog = ad.compile(loss, wrt=pn, inputs=[xn, yn, *pn])

    def compiled() -> Any:
        x, y = pick()
        return prog(x, y, *params)

    case: Case = {"autodag compiled": compiled}
    if _has("torch"):
        import torch

        tdt = torch.float32 if dt == np.float32 else torch.float64
        tp = [torch.tensor(p, dtype=tdt, requires_grad=True) for p in params]
        txs = [torch.tensor(x) for x in xs]
        tys = [torch.tensor(y) for y in ys]

        def torch_eager() -> Any:
            k = next(it) & 1
            hh = torch.tanh(txs[k] @ tp[0] + tp[1])
            hh = torch.tanh(hh @ tp[2] + tp[3])
            lo = torch.nn.functional.cross_entropy(hh @ tp[4] + tp[5], tys[k])
            g = torch.autograd.grad(lo, tp)
            return lo.item(), [t.numpy() for t in g]

        case["torch eager"] = torch_eager
    if _has("autograd"):
        import autograd
        import autograd.numpy as anp

        def logsumexp(z: Any, axis: int) -> Any:
            m = anp.max(z, axis=axis, keepdims=True)
            return anp.log(anp.sum(anp.exp(z - m), axis=axis)) + m[:, 0]

        def mlp(ps: Any, x: Any, y: Any) -> Any:
            hh = anp.tanh(x @ ps[0] + ps[1])
            hh = anp.tanh(hh @ ps[2] + ps[3])
            z = hh @ ps[4] + ps[5]
            return anp.mean(logsumexp(z, axis=1) - z[np.arange(batch), y])

        f = autograd.value_and_grad(mlp)

        def hips() -> Any:
            x, y = pick()
            v, g = f(params, x, y)
            return v, list(g)

        case["autograd"] = hips
    return case, baseline, {"ops": 9, "unit": "eval", "dtype": dtype}


# --- W4: sum(x**3 + 3*x/(x**2 + 1)) ----------------------------------------------------
def w4(n: int) -> tuple[Case, Callable[[], Any], dict[str, Any]]:
    """An elementwise expression reduced by sum; float64."""
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(n) for _ in range(2)]
    it = iter(range(1 << 62))

    def pick() -> Any:
        return xs[next(it) & 1]

    def baseline() -> Any:
        # In place, as a careful NumPy user writes it: x**3 as x2 * x (NumPy's pow is
        # many times slower), 14 passes over x-sized arrays, 5 of them fresh.
        x = pick()
        x2 = x * x
        d = x2 + 1.0
        t = x2 * x
        q = 3.0 * x
        q /= d
        t += q
        value = t.sum()
        g = 3.0 / d
        d *= d
        np.divide(x2, d, out=d)
        d *= 6.0
        g -= d
        x2 *= 3.0
        g += x2
        return value, [g]

    with ad.Graph():
        xn = ad.Placeholder(name="x", shape=(n,))
        out = ad.ops.sum(xn**3 + 3 * xn / (xn**2 + 1))
    prog = ad.compile(out, wrt=[xn], inputs=[xn])

    def compiled() -> Any:
        return prog(pick())

    case: Case = {"autodag compiled": compiled}
    if _has("numba"):
        plain = ad.compile(out, wrt=[xn], inputs=[xn], fuse=False)
        case["autodag compiled, unfused"] = lambda: plain(pick())
    if _has("torch"):
        import torch

        txs = [torch.tensor(x) for x in xs]

        def torch_eager() -> Any:
            x = txs[next(it) & 1].requires_grad_(True)
            v = torch.sum(x**3 + 3 * x / (x**2 + 1))
            (g,) = torch.autograd.grad(v, [x])
            return v.item(), [g.numpy()]

        case["torch eager"] = torch_eager
    if _has("autograd"):
        import autograd
        import autograd.numpy as anp

        f = autograd.value_and_grad(lambda x: anp.sum(x**3 + 3 * x / (x**2 + 1)))

        def hips() -> Any:
            v, g = f(pick())
            return v, [g]

        case["autograd"] = hips
    return case, baseline, {"ops": 8, "unit": "eval", "n": n}


def _close(a: Any, b: Any, rtol: float) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                            rtol=rtol, atol=rtol * 1e-3))


def check(case: Case, baseline: Callable[[], Any], rtol: float) -> None:
    """Every contender's value and gradients equal the baseline's on the same inputs."""
    for name, fn in case.items():
        # The workloads cycle through their inputs; realign by calling both from step 0.
        ref_v, ref_g = baseline()
        for _ in range(63):
            baseline()
        v, g = fn()
        for _ in range(63):
            fn()
        if not _close(v, ref_v, rtol) or len(g) != len(ref_g) or not all(
            _close(a, b, rtol) for a, b in zip(g, ref_g, strict=True)
        ):
            raise AssertionError(f"{name} disagrees with the baseline: {v} vs {ref_v}")


def time_interleaved(case: Case, baseline: Callable[[], Any], budget: float,
                     repeats: int) -> dict[str, float]:
    """Median seconds per call of each contender, timed in turns with the baseline."""
    fns = {"baseline": baseline, **case}
    number: dict[str, int] = {}
    for name, fn in fns.items():
        n, t = 1, 0.0
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            t = time.perf_counter() - t0
            if t > budget / (repeats * len(fns)) or n > 1 << 20:
                break
            n *= 2
        number[name] = n
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            n = number[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: float(np.median(s)) for name, s in samples.items()}


def main() -> None:
    """Run one workload case and print its timings as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["W1", "W2", "W3", "W4"])
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--budget", type=float, default=4.0, help="seconds of timing per case")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    if args.workload == "W1":
        case, base, info = w1()
        rtol = 1e-12
    elif args.workload == "W2":
        case, base, info = w2(args.n or 1000)
        rtol = 1e-9
    elif args.workload == "W3":
        case, base, info = w3(args.dtype)
        rtol = 1e-3 if args.dtype == "float32" else 1e-9
    else:
        case, base, info = w4(args.n or 10)
        rtol = 1e-9
    check(case, base, rtol)
    times = time_interleaved(case, base, args.budget, args.repeats)
    print(json.dumps({"workload": args.workload, "n": args.n, "dtype": args.dtype,
                      "info": info, "times": times}))


if __name__ == "__main__":
    main()
