"""The README's first command must keep working: run scripts/demo.sh to the end."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_to_the_end() -> None:
    p = subprocess.run([str(ROOT / "scripts" / "demo.sh")], capture_output=True, text=True,
                       timeout=180, check=False, cwd=ROOT)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    for marker in ("gpu_avail_8 after", "Slurm features follow", "PENDING",
                   "gpu005 drained", "not by syncd; use --force", "gpu005 back in service",
                   "started on gpu002", "nothing to do", "syncd stopped cleanly (exit 0)",
                   "demo finished"):
        assert marker in out, f"missing {marker!r} in demo output:\n{out[-3000:]}"
