"""Placeholder "hold" jobs: how Slurm learns which GPUs Kubernetes pods use.

Slurm cannot lower a node's Gres count at run time (docs/facts/slurm.md §3), and a feature does
not stop a job that asks for no constraint. A running job, however, is counted by slurmctld's own
scheduler. So for every GPU Kubernetes holds, syncd keeps one single-GPU job pinned to the node
(``-w node``), named ``settings.hold_job_name`` and marked with ``--comment=<name>:<node>``.
Growing submits more (one ``sbatch --array`` call), shrinking cancels some: there is never a
moment in which the held GPUs look free. ``--priority=TOP`` puts holds ahead of every ordinary
pending job (measured on 22.05.8, docs/capacity.md). A job is only ever cancelled when its name,
comment, user and requested node all say it is syncd's hold for that node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from syncd.slurm.parse import parse_gpus
from syncd.slurm.runner import Runner

# Job states in which a hold counts (squeue(1) JOB STATE CODES); a COMPLETING job is leaving.
_LIVE = "PENDING,RUNNING,CONFIGURING,SUSPENDED,REQUEUED,RESIZING"
LIVE_STATES = frozenset(_LIVE.split(","))
#: ``--priority=TOP`` as a number: sbatch sends NO_VAL - 1 (squeue shows 4294967293 for such a
#: job); the REST API takes the number (docs/slurm-backends.md).
TOP_PRIORITY = 0xFFFFFFFD
_FORMAT = "%i|%T|%n|%b|%k"


@dataclass(frozen=True, slots=True)
class HoldJob:
    job_id: str
    node: str
    state: str
    gpus: int


def marker(job_name: str, node: str) -> str:
    return f"{job_name}:{node}"


def parse_holds(text: str, job_name: str) -> list[HoldJob]:
    """syncd's own hold jobs from ``squeue -o '%i|%T|%n|%b|%k'``; anything else is ignored."""
    jobs: list[HoldJob] = []
    for line in text.splitlines():
        parts = line.strip().split("|", 4)
        if len(parts) != 5:
            continue
        job_id, state, node, tres, comment = parts
        if not node or comment != marker(job_name, node):
            continue
        spec = tres.removeprefix("gres:").removeprefix("gres/").replace("gres/", "")
        jobs.append(HoldJob(job_id, node, state, parse_gpus(spec) or 1))
    return jobs


def per_node(jobs: Iterable[HoldJob]) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in jobs:
        out[j.node] = out.get(j.node, 0) + j.gpus
    return out


def _cancel_order(job: HoldJob) -> tuple[int, int, str]:
    # Pending holds go first (they hold nothing yet), then the newest running ones.
    num = job.job_id.replace("_", "").replace("[", "").replace("]", "")
    return (0 if job.state == "PENDING" else 1, -int(num) if num.isdigit() else 0, job.job_id)


class HoldJobs(Protocol):
    """The three job calls holds need; the CLI and slurmrestd each implement them."""

    async def list(self) -> list[HoldJob]:
        """syncd's live hold jobs (one per array task)."""
        ...

    async def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel these jobs (at most 100 ids per call)."""
        ...

    async def submit(self, node: str, count: int) -> None:
        """One job array of ``count`` single-GPU holds pinned to ``node``."""
        ...


class CliJobs:
    """Hold jobs through squeue, sbatch and scancel."""

    def __init__(
        self, runner: Runner, *, job_name: str, partition: str = "", priority: str = "TOP"
    ) -> None:
        self._runner = runner
        self._name = job_name
        self._partition = partition
        self._priority = priority

    async def list(self) -> list[HoldJob]:
        # -r lists every array task on its own line, so each can be counted and cancelled.
        out = await self._runner.run("squeue", [
            "squeue", "--me", "-h", "-r", "-n", self._name, "-t", _LIVE, "-o", _FORMAT,
        ])
        return parse_holds(out, self._name)

    async def cancel(self, job_ids: Sequence[str]) -> None:
        await self._runner.run("scancel", ["scancel", *job_ids])

    async def submit(self, node: str, count: int) -> None:
        argv = [
            "sbatch", "--parsable", "--job-name", self._name,
            f"--comment={marker(self._name, node)}", f"--nodelist={node}",
            "--gres=gpu:1", "--cpus-per-task=1", "--mem=1", f"--array=0-{count - 1}",
            "--output=/dev/null", "--error=/dev/null", "--chdir=/", "--no-requeue",
            # The daemon's environment (tokens, config) must not be copied into the job.
            "--export=NONE",
        ]
        if self._priority:
            argv.append(f"--priority={self._priority}")
        if self._partition:
            argv.append(f"--partition={self._partition}")
        argv += ["--wrap", "exec /bin/sleep infinity"]
        await self._runner.run("sbatch", argv, idempotent=False)


class Holds:
    """Reads and sets syncd's hold jobs through one :class:`HoldJobs`."""

    def __init__(self, jobs: HoldJobs) -> None:
        self.jobs = jobs

    async def list(self) -> list[HoldJob]:
        return await self.jobs.list()

    async def set(self, nodes: Sequence[str], want: int) -> None:
        """Make each node end with exactly ``want`` held GPUs (node names already checked)."""
        current: Mapping[str, list[HoldJob]] = _group(await self.list())
        cancel: list[str] = []
        grow: list[tuple[str, int]] = []
        for node in nodes:
            jobs = sorted(current.get(node, []), key=_cancel_order)
            have = sum(j.gpus for j in jobs)
            while have > want and jobs:
                job = jobs.pop(0)
                cancel.append(job.job_id)
                have -= job.gpus
            if have < want:
                grow.append((node, want - have))
        for i in range(0, len(cancel), 100):
            await self.jobs.cancel(cancel[i : i + 100])
        for node, count in grow:
            await self.jobs.submit(node, count)


def _group(jobs: Iterable[HoldJob]) -> dict[str, list[HoldJob]]:
    out: dict[str, list[HoldJob]] = {}
    for j in jobs:
        out.setdefault(j.node, []).append(j)
    return out
