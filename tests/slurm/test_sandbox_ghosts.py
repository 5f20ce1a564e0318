"""scripts/slurm-sandbox with ghost nodes (no slurmd), the shape the scale benchmark uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.slurm import SlurmSandbox, job_state, running_sandbox
from tests.fixtures.waiting import eventually

REAL, GHOSTS = 3, 40


@pytest.fixture(scope="module")
def ghostbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("ghosts"), nodes=REAL, ghosts=GHOSTS) as box:
        yield box


def test_slurmd_config_leaves_the_ghosts_out(ghostbox: SlurmSandbox) -> None:
    etc = ghostbox.dir / "etc"
    ctld = (etc / "slurm.conf").read_text()
    slurmd = (etc / "slurmd.conf").read_text()
    assert "gpu[004-043]" in ctld and "gpu[004-043]" not in slurmd
    assert "NodeName=gpu[001-003]" in slurmd
    # Ghosts sit at an address no connection reaches, so slurmctld's pings fail at once
    # instead of being retried on a thread per ghost (docs/slurm-releases.md).
    assert "NodeName=gpu[004-043] NodeAddr=224.0.0.1 " in ctld
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


async def test_jobs_run_on_real_nodes(ghostbox: SlurmSandbox) -> None:
    job = ghostbox.run("sbatch", "--parsable", "-w", "gpu002", "--gres=gpu:1",
                       "--wrap", "sleep 30").stdout.strip()
    try:
        await eventually(lambda: job_state(ghostbox, job).startswith("RUNNING|gpu002"),
                         what="the job to run on gpu002")
    finally:
        ghostbox.run("scancel", job, check=False)


def test_status_and_stop_find_every_daemon(ghostbox: SlurmSandbox) -> None:
    # status checks each pidfile's process against this sandbox's config files.
    assert f"slurmd {REAL}/{REAL}" in ghostbox.script("status")


@pytest.mark.slow
async def test_unresponsive_nodes_are_drained_and_come_back_drained(
    ghostbox: SlurmSandbox,
) -> None:
    """On real Slurm: a node out only because its slurmd is silent (a killed slurmd, a ghost
    that never registered) takes syncd's drain, returns as IDLE+DRAIN when slurmd answers
    again, and is resumed once Kubernetes says Ready."""
    from syncd.core.memory import Memory
    from syncd.core.ownership import is_syncd_reason
    from syncd.core.planner import plan
    from syncd.core.policy import Breaker, Capacity, Policy
    from tests.unit.planner_kit import knode, kview

    # Two drains of two nodes would trip the breaker; it is not what this test is about.
    policy = Policy(capacity=Capacity(hold_jobs=False, features=False), drain_after=0.0,
                    resume_after=0.0, breaker=Breaker(enabled=False))
    real, ghost = "gpu003", "gpu042"
    pidfile = ghostbox.dir / "run" / f"slurmd-{real}.pid"
    ghostbox.run("kill", pidfile.read_text().strip())
    port = ScontrolPort(ghostbox.settings())

    async def silent(name: str) -> bool:
        return (await port.read()).nodes[name].not_responding

    # slurmctld pings every SlurmdTimeout/3 = 20 s: a node is seen silent 20-40 s after its
    # slurmd stops, later on a loaded machine; 120 s bounds a sandbox that never pings.
    deadline = 120.0
    await eventually(lambda: silent(real), within=deadline, what=f"{real} silent", every=0.5)
    await eventually(lambda: silent(ghost), within=deadline, what=f"{ghost} silent", every=0.5)
    healthy = [knode(n) for n in (await port.read()).nodes if n not in (real, ghost)]
    p = plan(kview(*healthy, knode(real, ready=False), knode(ghost, cordoned=True)),
             await port.read(), policy, Memory(), 1000.0)
    assert sorted((a.kind.value, a.nodes) for a in p.actions) == [
        ("drain", (real,)), ("drain", (ghost,))]  # two causes, two reasons
    for action in p.actions:
        await port.apply(action)
    view = await port.read()
    for name in (real, ghost):
        node = view.nodes[name]
        assert node.drained and node.not_responding, node
        assert is_syncd_reason(policy, name, node.reason), node.reason

    # slurmd is back: slurmctld marks it responding, and our drain holds it out.
    ghostbox.run("slurmd", "-f", str(ghostbox.dir / "etc" / "slurmd.conf"), "-N", real)

    async def back() -> bool:
        n = (await port.read()).nodes[real]
        return not n.not_responding and n.drained and n.state.value == "IDLE"

    # slurmd registers at start; slurmctld answers on its next ping round (SlurmdTimeout/3).
    await eventually(back, within=60, what=f"{real} IDLE+DRAIN", every=0.5)
    mem = p.memory
    k = kview(*healthy, knode(real), knode(ghost, cordoned=True))
    for now in (1001.0, 1002.0):
        p = plan(k, await port.read(), policy, mem, now)
        mem = p.memory
        for action in p.actions:
            await port.apply(action)
    node = (await port.read()).nodes[real]
    assert node.state.value == "IDLE" and not node.drained, node
