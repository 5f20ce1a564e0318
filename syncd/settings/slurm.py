"""Settings of the Slurm adapters."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.core.policy import Seconds


@dataclass(frozen=True, slots=True)
class SlurmSettings:
    """``backend``: ``auto`` (pyslurm when it imports and matches the running Slurm, else
    scontrol), ``scontrol`` or ``pyslurm``. ``conf`` sets SLURM_CONF for the commands."""

    backend: str = "auto"
    bin_dir: str = ""
    conf: str = ""
    timeout: Seconds = Seconds(10.0)
    calls_per_second: float = 20.0
    burst: int = 10
    retries: int = 3
    hold_partition: str = ""
    hold_job_name: str = "syncd-hold"

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.backend not in ("auto", "scontrol", "pyslurm"):
            out.append("backend: must be one of auto, scontrol, pyslurm")
        if self.calls_per_second <= 0:
            out.append("calls_per_second: must be above 0")
        if self.burst < 1:
            out.append("burst: must be 1 or more")
        if self.retries < 0:
            out.append("retries: must be 0 or more")
        return out
