"""Settings of the Kubernetes watcher and of the Kubernetes -> Slurm name mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from syncd.core.policy import Seconds

MODES = ("same", "label", "annotation", "regex", "pod")
#: Slinky's NodeSet controller labels each slurmd pod with the Slurm node name it registers
#: under (docs/slinky.md); ``spec.hostname`` and the pod name are what that label is made of.
POD_SOURCES = ("label:nodeset.slinky.slurm.net/pod-hostname", "hostname", "name")


@dataclass(frozen=True, slots=True)
class NameMapping:
    """How a Kubernetes node name becomes a Slurm node name.

    ``mode``: ``same`` (default), ``label`` or ``annotation`` (value of ``key``), ``regex``
    (``pattern`` must match the whole Kubernetes name; ``template`` uses its groups, e.g.
    ``gpu{1}`` or ``{host}``), or ``pod``: each pod matching ``slurm_pod_selector`` (a slurmd
    pod) names one Slurm node, taken from the first of ``pod_sources`` that is set, and that
    Slurm node follows the Kubernetes node the pod is bound to (``spec.nodeName``; rules in
    docs/slinky.md).
    """

    mode: str = "same"
    key: str = ""
    pattern: str = ""
    template: str = ""
    #: Pod mode: where a slurmd pod's Slurm name comes from, first set one wins:
    #: ``label:<key>``, ``annotation:<key>``, ``hostname`` (``spec.hostname``), ``name``
    #: (``metadata.name``) or ``node`` (``spec.nodeName``, for slurmd pods on the host network).
    #: The default follows Slinky's NodeSet controller (docs/slinky.md).
    pod_sources: tuple[str, ...] = POD_SOURCES

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.mode not in MODES:
            out.append(f"name_mapping.mode: must be one of {', '.join(MODES)}")
        if self.mode == "pod":
            if not self.pod_sources:
                out.append("name_mapping.pod_sources: at least one source is needed")
            for src in self.pod_sources:
                kind, _, key = src.partition(":")
                if not (src in ("hostname", "name", "node")
                        or (kind in ("label", "annotation") and key)):
                    out.append(f"name_mapping.pod_sources: {src[:60]!r} is not one of "
                               "label:<key>, annotation:<key>, hostname, name, node")
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
        if self.name_mapping.mode == "pod" and not self.slurm_pod_selector.strip():
            out.append("slurm_pod_selector: required when name_mapping.mode is pod (it picks "
                       "the slurmd pods that name the Slurm nodes)")
        if self.list_page_size < 1:
            out.append("list_page_size: must be 1 or more")
        if not 0 < self.reconnect_initial <= self.reconnect_max:
            out.append("reconnect_initial: must be above 0 and at most reconnect_max")
        return out
