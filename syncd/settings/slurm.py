"""Settings of the Slurm adapters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from syncd.core.policy import Seconds

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


_API = re.compile(r"v0\.0\.(\d+)")
BACKENDS = ("auto", "scontrol", "pyslurm", "rest")
READ_FORMATS = ("auto", "text", "json")


@dataclass(frozen=True, slots=True)
class RestSettings:
    """slurmrestd for ``backend: rest`` (docs/slurm-backends.md). The JWT is read from
    ``token_file`` (read again whenever the file changes, so a rotated token is picked up),
    else from the environment variable ``token_env``."""

    url: str = ""
    token_file: str = ""
    token_env: str = "SLURM_JWT"  # noqa: S105 - the name of a variable, not a secret
    #: ``X-SLURM-USER-NAME``; empty sends the token alone (slurmrestd takes the token's user).
    user: str = ""
    #: data_parser version such as ``v0.0.42``; empty takes the newest the server offers.
    api_version: str = ""

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.url and not self.url.startswith(("http://", "https://", "unix:")):
            out.append("rest.url: must start with http://, https:// or unix:")
        if self.api_version:
            m = _API.fullmatch(self.api_version)
            if m is None or int(m.group(1)) < 40:
                out.append("rest.api_version: must be v0.0.40 or newer (e.g. v0.0.42), or empty")
        if not self.token_file and not self.token_env:
            out.append("rest: set token_file or token_env")
        return out


@dataclass(frozen=True, slots=True)
class SlurmSettings:
    """``backend``: ``auto`` (pyslurm when it imports and matches the running Slurm, else
    scontrol), ``scontrol``, ``pyslurm`` or ``rest`` (slurmrestd). ``conf`` sets SLURM_CONF
    for the commands (and for pyslurm, before it is imported)."""

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
    #: Nodes per ``scontrol update`` hostlist. ParallelCluster uses 100 (docs/facts/prior-art.md
    #: §3); a call costs ~5 ms plus ~6 µs a node (docs/facts/slurm.md §4: 64 nodes 5.1 ms,
    #: 2,000 nodes 16.9 ms), so 250 drains 1,000 nodes in 4 calls and ~26 ms of slurmctld's
    #: node lock instead of 10 calls and ~55 ms; one rejected call backs off at most 250.
    max_nodes_per_call: int = 250
    #: First wait between retries of a transient error; doubles up to 5 s.
    retry_wait: Seconds = 0.5
    #: How long the start-up self-test waits for slurmctld to answer before syncd gives up
    #: (exit 2): a sidecar starts before the slurmctld beside it.
    startup_wait: Seconds = 300.0
    #: How the scontrol backend reads nodes: ``text`` (``-o``), ``json`` (``--json``, Slurm
    #: not in 22.05) or ``auto`` (text: ``--json`` measured ~10x dearer, docs/slurm-backends.md).
    read_format: str = "auto"
    rest: RestSettings = field(default_factory=RestSettings)

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.backend not in BACKENDS:
            out.append(f"backend: must be one of {', '.join(BACKENDS)}")
        if self.read_format not in READ_FORMATS:
            out.append(f"read_format: must be one of {', '.join(READ_FORMATS)}")
        if self.backend == "rest" and not self.rest.url:
            out.append("rest.url: required with backend rest")
        out.extend(self.rest.problems())
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
