"""examples/checkpoint_resume.py: a run resumed from a checkpoint in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "checkpoint_resume.py"


def test_resumed_run_equals_the_uninterrupted_one() -> None:
    res = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "identical" in res.stdout and "DIFFERENT" not in res.stdout
