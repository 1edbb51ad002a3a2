"""The demo's checkpoint: the training saved mid-way, then resumed in a fresh process.

``python -m autodag.demo_checkpoint FILE STEPS`` loads a checkpoint written by
``write_checkpoint`` (the graph, the Adam state and the training data, in one graph
file), runs ``STEPS`` more steps and prints their losses as JSON: the demo compares them
with its own uninterrupted run, bit for bit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import AutodagError
from .execute import backward_pass, forward_pass
from .nodes import Node
from .optim import Adam
from .saving import load, save
from .traversal import topological_sort

__all__ = ["resume", "resume_in_fresh_process", "write_checkpoint"]


def write_checkpoint(path: Path, loss: Node, opt: Adam, step: int, feed: dict[str, Any]) -> None:
    """Save the training at ``step``: the loss's graph, the optimizer, the data by name."""
    save(path, loss, metadata={"step": step, "optimizer": opt.state_dict(), "feed": feed})


def resume(path: Path, steps: int) -> list[float]:
    """Load a checkpoint and train ``steps`` more steps as the demo does; their losses."""
    loaded = load(path)
    loss = loaded.outputs
    assert isinstance(loss, Node)
    opt = Adam(loaded.variables)
    opt.load_state_dict(loaded.metadata["optimizer"])
    feed = {loaded[name]: value for name, value in loaded.metadata["feed"].items()}
    order = topological_sort(loss)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        value = forward_pass(order, feed)
        backward_pass(order)
        opt.step()
        losses.append(float(value))
    return losses


def resume_in_fresh_process(path: Path, steps: int) -> list[float]:
    """``resume`` in a new Python process (nothing shared but the file); its losses."""
    res = subprocess.run([sys.executable, "-m", __name__, str(path), str(steps)],
                         capture_output=True, text=True, timeout=600, check=False)
    if res.returncode != 0:
        raise AutodagError(f"resuming from {path} failed:\n{res.stderr.strip()}")
    losses = json.loads(res.stdout)
    return [float(v) for v in losses]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m autodag.demo_checkpoint FILE STEPS``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m autodag.demo_checkpoint FILE STEPS", file=sys.stderr)
        return 2
    # repr() of a float round-trips exactly, so the parent compares bit for bit.
    print(json.dumps(resume(Path(args[0]), int(args[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
