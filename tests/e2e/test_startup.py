"""`syncd run` refuses to start with one clear line and exit 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.slurm import SlurmSandbox


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncd", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("kubernetes:\n  kubeconfig: /nonexistent/kc\n", "kubernetes.kubeconfig: /nonexistent/kc"),
        ("daemon:\n  state_dir: /proc/nope/state\n", "state directory /proc/nope/state"),
        ("policy:\n  drain_aftr: 3s\n", "policy.drain_aftr: unknown key"),
    ],
)
def test_startup_problems_are_one_line(tmp_path: Path, body: str, needle: str) -> None:
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(body)
    r = _run(cfg)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


def test_a_port_in_use_is_a_clear_startup_error(
    tmp_path: Path, slurm: SlurmSandbox, sim_kubeconfig: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "syncd.yaml"
        cfg.write_text(
            f"kubernetes:\n  kubeconfig: {sim_kubeconfig}\n"
            f"slurm:\n  backend: scontrol\n  conf: {slurm.conf}\n"
            f"events:\n  redis:\n    enabled: false\n"
            f"daemon:\n  listen: 127.0.0.1:{port}\n  state_dir: {tmp_path / 'state'}\n"
            f"  leader_election:\n    enabled: false\n")
        r = _run(cfg)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"HTTP listener 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
    # The Kubernetes client opened before the failing step is closed: no aiohttp warnings.
    assert "Unclosed" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
