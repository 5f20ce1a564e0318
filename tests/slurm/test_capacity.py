"""Scheduling against real capacity: the deadlock scenario on the real slurmctld.

Kubernetes pods hold 7 of node X's 8 GPUs. A plain ``sbatch --gres=gpu:2`` (no constraint)
must not start on X while syncd's hold jobs exist, and must start once the pods are gone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.core.model import ActionKind
from syncd.slurm.scontrol import ScontrolPort
from tests.fixtures.slurm import SlurmSandbox, job_state, submit
from tests.fixtures.waiting import eventually
from tests.slurm.kit import kube, policy_for, read_when, reconcile

JOB = ["--gres=gpu:2", "--cpus-per-task=1", "--mem=1", "--output=/dev/null",
       "--chdir=/", "--wrap", "sleep 300"]


@pytest.fixture
def jobs(slurm: SlurmSandbox) -> Iterator[list[str]]:
    """Job ids a test submitted; cancelled afterwards (only these, never the holds' jobs)."""
    ids: list[str] = []
    yield ids
    if ids:
        slurm.run("scancel", *ids, check=False)


def _pending_for_resources(slurm: SlurmSandbox, job: str) -> bool:
    # Reason "Resources": the scheduler looked at the job and found the GPUs taken.
    return job_state(slurm, job) == "PENDING|" and slurm.run(
        "squeue", "-h", "-j", job, "-o", "%r").stdout.strip() == "Resources"


async def test_plain_gpu_job_waits_for_pods_then_runs(
    slurm: SlurmSandbox, jobs: list[str]
) -> None:
    x = slurm.nodes[7]
    port = ScontrolPort(slurm.settings())
    policy = policy_for(x)

    p = await reconcile(port, kube({x: 7}), policy)
    assert {(a.kind, a.hold_gpus) for a in p.actions if a.kind is ActionKind.SET_HOLD} == {
        (ActionKind.SET_HOLD, 7)}
    await eventually(read_when(port, lambda v: v.nodes[x].gres_used_gpus == 7
                               and v.nodes[x].hold_gpus == 7), what="7 GPUs held on X")

    job = submit(slurm, ["--nodelist", x, *JOB])
    jobs.append(job)
    await eventually(lambda: _pending_for_resources(slurm, job),
                     what="the gpu:2 job to be refused for lack of GPUs on X")
    view = await port.read()
    assert view.nodes[x].gres_used_gpus == 7  # nothing of the job runs on X

    # Pods gone: the next reconcile releases the holds and the job starts on X.
    p = await reconcile(port, kube({x: 0}), policy, p.memory)
    assert (ActionKind.SET_HOLD, 0) in {(a.kind, a.hold_gpus) for a in p.actions}
    # The backfill scheduler starts it on its next pass, which is not at once.
    await eventually(lambda: job_state(slurm, job) == f"RUNNING|{x}", within=60,
                     what="the gpu:2 job to start on X")
    view = await port.read()
    assert view.nodes[x].hold_gpus == 0


async def test_holds_win_over_an_older_pending_job(
    slurm: SlurmSandbox, jobs: list[str]
) -> None:
    """Priority TOP: holds submitted after an ordinary pending job still get the GPUs first.

    Without it (hold_priority="") Slurm's FIFO priority hands 2 freed GPUs to the older ordinary
    job first and only 6 holds can run: this test then fails at "holds running on Y" (measured).
    """
    y = slurm.nodes[5]
    port = ScontrolPort(slurm.settings())
    policy = policy_for(y)
    blocker = submit(slurm, ["--nodelist", y, "--gres=gpu:8", "--cpus-per-task=1", "--mem=1",
                             "--output=/dev/null", "--chdir=/", "--wrap", "sleep 300"])
    jobs.append(blocker)
    await eventually(lambda: job_state(slurm, blocker) == f"RUNNING|{y}", what="blocker running")
    older = submit(slurm, ["--nodelist", y, *JOB])
    jobs.append(older)

    p = await reconcile(port, kube({y: 7}), policy)
    slurm.run("scancel", blocker)
    await eventually(read_when(port, lambda v: v.nodes[y].gres_used_gpus == 7),
                     what="holds running on Y")
    await eventually(lambda: _pending_for_resources(slurm, older), what="older job left pending")
    await reconcile(port, kube({y: 0}), policy, p.memory)
    # As above: the scheduler's next pass, not at once.
    await eventually(lambda: job_state(slurm, older) == f"RUNNING|{y}", within=60,
                     what="older job runs once the pods are gone")
