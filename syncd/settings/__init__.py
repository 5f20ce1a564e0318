"""Typed settings for every part of syncd; one module per section, aggregated here.

Each section is a frozen dataclass whose defaults are the documented defaults. A section may
define ``problems() -> list[str]`` for checks beyond types (key paths relative to the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.core.policy import CORDON_OWNERS, Policy
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
        if self.policy.cordon not in CORDON_OWNERS:
            out.append(f"policy.cordon: must be one of {', '.join(CORDON_OWNERS)}")
        if self.kubernetes.name_mapping.mode == "pod" and self.policy.causes.no_kubernetes_node:
            # Slinky's dynamic nodes leave Slurm with their pod, and a NodeSet scaling up
            # registers a Slurm node before syncd sees its pod: absence is not a fault here.
            out.append("policy.causes.no_kubernetes_node: must be false when "
                       "kubernetes.name_mapping.mode is pod (a Slurm node without a slurmd "
                       "pod is left as it is; see docs/slinky.md)")
        return out
