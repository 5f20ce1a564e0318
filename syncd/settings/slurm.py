"""Settings of the Slurm adapters."""

from __future__ import annotations

import re
from dataclasses import dataclass

from syncd.core.policy import Seconds

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class SlurmSettings:
    """``backend``: ``auto`` (pyslurm when it imports and matches the running Slurm, else
    scontrol), ``scontrol`` or ``pyslurm``. ``conf`` sets SLURM_CONF for the commands."""

    backend: str = "auto"
    bin_dir: str = ""
    conf: str = ""
    timeout: Seconds = 10.0
    calls_per_second: float = 50.0
    burst: int = 20
    retries: int = 3
    hold_partition: str = ""
    hold_job_name: str = "syncd-hold"
    #: ``--priority`` of hold jobs; ``TOP`` (needs operator/admin) runs them before any
    #: ordinary pending job. Empty leaves Slurm's own priority (see docs/capacity.md).
    hold_priority: str = "TOP"
    #: Nodes per ``scontrol update`` hostlist (ParallelCluster's 100; docs/facts/prior-art.md §3).
    max_nodes_per_call: int = 100
    #: First wait between retries of a transient error; doubles up to 5 s.
    retry_wait: Seconds = 0.5
    #: How long the start-up self-test waits for slurmctld to answer before syncd gives up
    #: (exit 2): a sidecar starts before the slurmctld beside it.
    startup_wait: Seconds = 300.0

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.backend not in ("auto", "scontrol", "pyslurm"):
            out.append("backend: must be one of auto, scontrol, pyslurm")
        if self.calls_per_second <= 0:
            out.append("calls_per_second: must be above 0")
        if self.burst < 1:
            out.append("burst: must be 1 or more")
        if self.startup_wait < 0:
            out.append("startup_wait: must be 0 or more")
        if self.retries < 0:
            out.append("retries: must be 0 or more")
        if not 1 <= self.max_nodes_per_call <= 10000:
            out.append("max_nodes_per_call: must be between 1 and 10000")
        if not _NAME.fullmatch(self.hold_job_name):
            out.append("hold_job_name: must match [A-Za-z0-9_.-]{1,64}")
        if self.hold_priority not in ("", "TOP") and not self.hold_priority.isdigit():
            out.append("hold_priority: must be TOP, a number, or empty")
        return out
