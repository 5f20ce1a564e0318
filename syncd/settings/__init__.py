"""Typed settings for every part of syncd; one module per section, aggregated here.

Each section is a frozen dataclass whose defaults are the documented defaults. A section may
define ``problems() -> list[str]`` for checks beyond types (key paths relative to the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.core.policy import Policy
from syncd.settings.daemon import DaemonSettings, LoggingSettings
from syncd.settings.events import EventsSettings
from syncd.settings.kube import KubeSettings
from syncd.settings.slurm import SlurmSettings

__all__ = [
    "DaemonSettings",
    "EventsSettings",
    "KubeSettings",
    "LoggingSettings",
    "Settings",
    "SlurmSettings",
]


@dataclass(frozen=True, slots=True)
class Settings:
    cluster: str = "default"
    kubernetes: KubeSettings = field(default_factory=KubeSettings)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    policy: Policy = field(default_factory=Policy)
    events: EventsSettings = field(default_factory=EventsSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    def problems(self) -> list[str]:
        out: list[str] = []
        for name in ("kubernetes", "slurm", "events", "daemon", "logging"):
            section = getattr(self, name)
            out.extend(f"{name}.{p}" for p in section.problems())
        return out
