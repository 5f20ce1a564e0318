"""scripts/slurm-sandbox with ghost nodes (no slurmd), the shape the scale benchmark uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.slurm import SlurmSandbox, job_state, start_sandbox, wait_for

REAL, GHOSTS = 3, 40


@pytest.fixture(scope="module")
def ghostbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("ghosts"), nodes=REAL, ghosts=GHOSTS)
    try:
        yield box
    finally:
        box.stop()


def test_slurmd_config_leaves_the_ghosts_out(ghostbox: SlurmSandbox) -> None:
    etc = ghostbox.dir / "etc"
    ctld = (etc / "slurm.conf").read_text()
    slurmd = (etc / "slurmd.conf").read_text()
    assert "gpu[004-043]" in ctld and "gpu[004-043]" not in slurmd
    assert "NodeName=gpu[001-003]" in slurmd
    # Both say the difference is deliberate, so slurmctld does not log it per registration.
    assert "DebugFlags=NO_CONF_HASH" in ctld and "DebugFlags=NO_CONF_HASH" in slurmd
    log = (ghostbox.dir / "log" / "slurmctld.log").read_text()
    assert "different slurm.conf" not in log


async def test_real_nodes_idle_ghosts_unresponsive_and_writable(ghostbox: SlurmSandbox) -> None:
    port = ScontrolPort(ghostbox.settings())
    view = await port.read()
    assert len(view.nodes) == REAL + GHOSTS
    for name in ghostbox.nodes:
        assert view.nodes[name].state.value == "IDLE", name
    # UNKNOWN from the start; NOT_RESPONDING joins once slurmctld's first ping goes unanswered.
    assert view.nodes["gpu043"].state.value == "UNKNOWN"
    ghostbox.run("scontrol", "update", "NodeName=gpu043", "AvailableFeatures=gpu,gpu_avail_5",
                 "ActiveFeatures=gpu,gpu_avail_5")
    assert "ActiveFeatures=gpu,gpu_avail_5" in ghostbox.node_line("gpu043")


def test_jobs_run_on_real_nodes(ghostbox: SlurmSandbox) -> None:
    job = ghostbox.run("sbatch", "--parsable", "-w", "gpu002", "--gres=gpu:1",
                       "--wrap", "sleep 30").stdout.strip()
    try:
        wait_for(lambda: job_state(ghostbox, job).startswith("RUNNING|gpu002"),
                 timeout=30, what="the job to run on gpu002")
    finally:
        ghostbox.run("scancel", job, check=False)


def test_status_and_stop_find_every_daemon(ghostbox: SlurmSandbox) -> None:
    # status checks each pidfile's process against this sandbox's config files.
    assert f"slurmd {REAL}/{REAL}" in ghostbox.script("status")
