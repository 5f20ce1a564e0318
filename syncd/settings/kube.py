"""Settings of the Kubernetes watcher and of the Kubernetes -> Slurm name mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from syncd.core.policy import Seconds


@dataclass(frozen=True, slots=True)
class NameMapping:
    """How a Kubernetes node name becomes a Slurm node name.

    ``mode``: ``same`` (default), ``label`` or ``annotation`` (value of ``key``), or ``regex``
    (``pattern`` must match the whole Kubernetes name; ``template`` uses its groups, e.g.
    ``gpu{1}`` or ``{host}``).
    """

    mode: str = "same"
    key: str = ""
    pattern: str = ""
    template: str = ""

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.mode not in ("same", "label", "annotation", "regex"):
            out.append("name_mapping.mode: must be one of same, label, annotation, regex")
        if self.mode in ("label", "annotation") and not self.key:
            out.append(f"name_mapping.key: required when mode is {self.mode}")
        if self.mode == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                out.append(f"name_mapping.pattern: not a regular expression: {exc}")
            if not self.template:
                out.append("name_mapping.template: required when mode is regex")
        return out


@dataclass(frozen=True, slots=True)
class KubeSettings:
    kubeconfig: str = ""
    context: str = ""
    node_selector: str = ""
    slurm_pod_selector: str = "app.kubernetes.io/name=slurmd"
    name_mapping: NameMapping = field(default_factory=NameMapping)
    stale_after: Seconds = 30.0
    watch_timeout: Seconds = 300.0
    list_page_size: int = 5000
    #: Back-off after a failed list or watch: from reconnect_initial, doubling (with jitter)
    #: up to reconnect_max; it starts again from reconnect_initial after a success.
    reconnect_initial: Seconds = 0.2
    reconnect_max: Seconds = 5.0

    def problems(self) -> list[str]:
        out = list(self.name_mapping.problems())
        if self.list_page_size < 1:
            out.append("list_page_size: must be 1 or more")
        if not 0 < self.reconnect_initial <= self.reconnect_max:
            out.append("reconnect_initial: must be above 0 and at most reconnect_max")
        return out
