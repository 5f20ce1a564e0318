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
    debounce_max: Seconds = 2.0
    resync_every: Seconds = 300.0
    slurm_probe_every: Seconds = 15.0
    dry_run: bool = False
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    #: The operator's Unix socket (every route, writes included); empty: <state_dir>/operator.sock.
    operator_socket: str = ""
    #: Its file mode (octal text); 0660 lets the socket's group connect, 0600 only its owner.
    operator_socket_mode: str = "0660"
    #: Its group (name or gid); empty: syncd's own group.
    operator_socket_group: str = ""
    #: uids allowed to change Slurm through the socket, besides root and syncd's own uid.
    operator_uids: tuple[int, ...] = ()
    #: A file holding a bearer token that also allows changes over TCP (empty: none do).
    operator_token_file: str = ""

    def socket_path(self) -> str:
        return self.operator_socket or f"{self.state_dir.rstrip('/')}/operator.sock"

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
        mode = self.operator_socket_mode
        if not (len(mode) in (3, 4) and all(c in "01234567" for c in mode)):
            out.append("operator_socket_mode: must be an octal mode such as 0660 or 0600")
        elif int(mode, 8) & 0o007:
            out.append("operator_socket_mode: others may not have access (use 0660 or 0600)")
        if any(u < 0 for u in self.operator_uids):
            out.append("operator_uids: uids are 0 or more")
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
