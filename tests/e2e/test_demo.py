"""The README's first command must keep working: run scripts/demo.sh to the end, even while
another process holds the dpkg lock (as unattended-upgrades does on a fresh machine), and say
in one line why it will not run as anyone but root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tools import missing

ROOT = Path(__file__).resolve().parents[2]
# apt and dpkg lock these with fcntl (F_SETLK), which flock(1) would not conflict with.
DPKG_LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock")
HOLD = """
import fcntl, os, sys, time
fds = [os.open(p, os.O_RDWR | os.O_CREAT, 0o640) for p in sys.argv[2:]]
for fd in fds:
    fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[1]))
"""


@pytest.mark.slow
def test_demo_runs_to_the_end_while_the_dpkg_lock_is_held_for_20s() -> None:
    if os.geteuid() != 0:
        missing("root", "the demo starts slurmd, which runs as root")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "20", *DPKG_LOCKS],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        # BOOTSTRAP_CHECK_PACKAGES: bootstrap asks apt even though everything is installed,
        # so it needs the lock the other process holds.
        p = subprocess.run([str(ROOT / "scripts" / "demo.sh")], capture_output=True, text=True,
                           timeout=300, check=False, cwd=ROOT,
                           env=dict(os.environ, BOOTSTRAP_CHECK_PACKAGES="1"))
    finally:
        holder.kill()
        holder.wait()
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert f"bootstrap: waiting for the dpkg lock, held by process {holder.pid} (python" in out
    for marker in ("export PATH=", " SYNCD_CONFIG=", "$ syncd check-config ",
                   "GPU A/H/U = allocatable in Kubernetes", "gpu_avail_8 after",
                   "Slurm features follow", "PENDING", "gpu005 drained",
                   "not by syncd; use --force", "gpu005 back in service", "started on gpu002",
                   "earlier lines not shown", "nothing to do", "syncd stopped cleanly (exit 0)",
                   "demo finished"):
        assert marker in out, f"missing {marker!r} in demo output:\n{out[-3000:]}"
    # The events read in order: what is left out is said first, and sequences only grow.
    block = out.split("-- new lines of `syncd events tail --from-start`")[1]
    lines = block.splitlines()[1:]
    assert "earlier lines not shown" in lines[0]
    seqs = [int(line.split()[1]) for line in lines[1:13] if line[:2].isdigit()]
    assert len(seqs) >= 2 and seqs == sorted(seqs)
    assert "Traceback" not in out


@pytest.mark.slow
def test_the_slinky_demo_maps_names_from_the_slurmd_pods() -> None:
    if os.geteuid() != 0:
        missing("root", "the demo starts slurmd, which runs as root")
    p = subprocess.run([str(ROOT / "scripts" / "demo.sh"), "--slinky"], capture_output=True,
                       text=True, timeout=300, check=False, cwd=ROOT)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    for marker in ("gpu_avail_8 after", "gpu005 drained", "gpu005 back in service",
                   "syncd stopped cleanly (exit 0)", "demo finished"):
        assert marker in out, f"missing {marker!r} in demo output:\n{out[-3000:]}"
    # The pods named the Slurm nodes, and why shows the Kubernetes node behind one.
    assert "slurmd pod slurm/slinky-001 on k8s-node-16: Slurm node gpu001" in out
    assert "gpu005: Kubernetes (node k8s-node-12) NotReady" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("script", ["scripts/demo.sh", "scripts/bootstrap"])
def test_not_as_root_is_one_clear_line(script: str) -> None:
    if os.geteuid() != 0:
        missing("root", "to run the script as another user")
    p = subprocess.run(["bash", str(ROOT / script)], capture_output=True, text=True, timeout=60,
                       check=False, user="nobody", env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1, p.stderr
    assert "run it as root" in p.stderr and "slurmd runs as root" in p.stderr
