"""The start-up self-test on the real sandbox: a uid without Slurm rights and a slurm.conf the
client cannot parse each stop `syncd run` with exit 2 and one line naming the fix, before any
write; a healthy start shows the passed checks on /readyz and in `syncd status`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from syncd.slurm.parse import parse_version
from tests.e2e.kit import new_port
from tests.fixtures.asuser import OtherUser
from tests.fixtures.slurm import SlurmSandbox


def _config(dir: Path, *, conf: Path, kubeconfig: Path, state: Path, **daemon: object) -> Path:
    cfg = {
        "kubernetes": {"kubeconfig": str(kubeconfig)},
        "slurm": {"backend": "scontrol", "conf": str(conf), "retries": 0,
                  "startup_wait": "5s"},
        "events": {"redis": {"enabled": False}},
        "daemon": {"listen": f"127.0.0.1:{new_port()}", "state_dir": str(state),
                   "leader_election": {"enabled": False}, **daemon},
        "logging": {"format": "text"},
    }
    path = dir / "syncd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    path.chmod(0o644)
    return path


def _share(src: Path, dest: Path) -> Path:
    shutil.copy(src, dest)
    dest.chmod(0o644)
    return dest


def _written(box: SlurmSandbox) -> list[tuple[str, ...]]:
    """What syncd could write on each node (the load and free memory move by themselves)."""
    keys = ("State=", "Reason=", "AvailableFeatures=", "ActiveFeatures=", "Comment=")
    out = box.run("scontrol", "-o", "show", "node").stdout
    return [tuple(w for w in line.split() if w.startswith(keys)) for line in out.splitlines()]


def _failures(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("syncd: cannot start:")]


def test_a_uid_without_slurm_rights_exits_2_naming_the_fix(
    slurm: SlurmSandbox, sim_kubeconfig: Path, nobody: OtherUser
) -> None:
    work = nobody.home / "rights"
    work.mkdir()
    state = work / "state"
    state.mkdir()
    shutil.chown(state, nobody.user, nobody.group)
    cfg = _config(work, conf=_share(Path(slurm.conf), work / "slurm.conf"),
                  kubeconfig=_share(sim_kubeconfig, work / "kubeconfig"), state=state)
    before = _written(slurm)
    r = nobody.run("-m", "syncd", "run", "--config", str(cfg), env=nobody.env())
    assert r.returncode == 2, r.stderr[-3000:]
    (line,) = _failures(r.stderr)
    assert "Slurm self-test: rights: slurmctld refuses node updates from uid 65534 (nobody)" in line
    assert "Invalid user id" in line  # slurmctld's own answer
    assert "fix: run syncd as root or as SlurmUser root(0)" in line, line
    assert "Traceback" not in r.stderr
    assert _written(slurm) == before  # nothing was written


def test_a_slurm_conf_the_client_cannot_parse_exits_2_with_its_message(
    slurm: SlurmSandbox, sim_kubeconfig: Path, tmp_path: Path
) -> None:
    client = parse_version(slurm.run("scontrol", "--version").stdout) or (0, 0)
    # Slinky writes MetricsType with its metrics on, a 25.11 key (docs/slinky.md); a newer
    # client knows it, so it gets a key no release has.
    key = "MetricsType" if client < (25, 11) else "SyncdNoSuchKey"
    conf = tmp_path / "slurm.conf"
    conf.write_text(Path(slurm.conf).read_text() + f"{key}=metrics/openmetrics\n")
    state = tmp_path / "state"
    cfg = _config(tmp_path, conf=conf, kubeconfig=sim_kubeconfig, state=state)
    r = subprocess.run([sys.executable, "-m", "syncd", "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2, r.stderr[-3000:]
    (line,) = _failures(r.stderr)
    assert f"Slurm self-test: config: the Slurm client cannot use slurm.conf {conf}" in line
    assert f"Parsing error at unrecognized key: {key}" in line, line  # the client's own words
    assert "fix: give syncd a Slurm client of slurmctld's release" in line
    assert "Traceback" not in r.stderr


def test_an_unreachable_slurmctld_is_waited_for_then_named(
    slurm: SlurmSandbox, sim_kubeconfig: Path, tmp_path: Path
) -> None:
    conf = tmp_path / "slurm.conf"
    text = Path(slurm.conf).read_text()
    port = next(ln for ln in text.splitlines() if ln.startswith("SlurmctldPort="))
    conf.write_text(text.replace(port, f"SlurmctldPort={new_port()}"))  # nobody listens
    cfg = _config(tmp_path, conf=conf, kubeconfig=sim_kubeconfig, state=tmp_path / "state")
    r = subprocess.run([sys.executable, "-m", "syncd", "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2, r.stderr[-3000:]
    (line,) = _failures(r.stderr)
    assert "slurmctld did not answer within 5s (slurm.startup_wait)" in line
    assert "fix: check SlurmctldHost in slurm.conf" in line
