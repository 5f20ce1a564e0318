"""Settings of the daemon: loops, HTTP port, leader election, state, logging."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.core.policy import Seconds


@dataclass(frozen=True, slots=True)
class LeaderElection:
    enabled: bool = True
    lease_name: str = "syncd"
    lease_namespace: str = "default"
    identity: str = ""
    lease_duration: Seconds = 15.0
    renew_every: Seconds = 5.0

    def problems(self) -> list[str]:
        if self.renew_every >= self.lease_duration:
            return ["leader_election.renew_every: must be shorter than lease_duration"]
        return []


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    listen: str = "127.0.0.1:8080"
    state_dir: str = "/var/lib/syncd"
    debounce: Seconds = 0.05
    debounce_max: Seconds = 0.5
    resync_every: Seconds = 300.0
    slurm_probe_every: Seconds = 15.0
    dry_run: bool = False
    leader_election: LeaderElection = field(default_factory=LeaderElection)

    def problems(self) -> list[str]:
        out = list(self.leader_election.problems())
        _, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            out.append("listen: must be host:port")
        if self.debounce_max < self.debounce:
            out.append("debounce_max: must be at least debounce")
        if self.resync_every <= 0:
            out.append("resync_every: must be above 0")
        if self.slurm_probe_every <= 0:
            out.append("slurm_probe_every: must be above 0")
        return out


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: str = "json"
    level: str = "info"

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.format not in ("json", "text"):
            out.append("format: must be json or text")
        if self.level.lower() not in ("debug", "info", "warning", "error"):
            out.append("level: must be one of debug, info, warning, error")
        return out
