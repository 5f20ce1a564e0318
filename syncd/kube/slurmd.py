"""A slurmd pod as the pod name mapping sees it: which Slurm node it names, and where it runs.

Under SchedMD Slinky each Slurm node is a slurmd pod; the NodeSet controller labels it with the
Slurm name it registers under (``nodeset.slinky.slurm.net/pod-hostname``, made of the pod's
``spec.hostname`` or its name) and the scheduler binds it to a Kubernetes node
(``spec.nodeName``); docs/slinky.md. Every value read here comes from a pod manifest anyone
with pod-create rights in that namespace can write, so the Slurm name passes the same
allow-list as every other name (syncd.core.validate) before it can reach a Slurm command.

This module is pure: it reads raw API dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.core.validate import describe_node_name, is_node_name


@dataclass(frozen=True, slots=True)
class SlurmdPod:
    """One slurmd pod: the Slurm node it names (None, with ``problem``, when it names none
    usable) and the Kubernetes node it is bound to (empty while unscheduled)."""

    key: str
    slurm_name: str | None
    node: str = ""
    phase: str = ""
    terminating: bool = False
    problem: str = ""

    def state(self) -> str:
        """The pod's state in words, for ``syncd why``."""
        if self.terminating:
            return "terminating"
        if not self.node:
            return "Pending, not scheduled to a node yet"
        return self.phase or "phase unknown"


def _source(obj: Mapping[str, Any], src: str) -> str:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    kind, _, key = src.partition(":")
    if kind == "label":
        value = (meta.get("labels") or {}).get(key)
    elif kind == "annotation":
        value = (meta.get("annotations") or {}).get(key)
    elif src == "hostname":
        value = spec.get("hostname")
    elif src == "node":
        value = spec.get("nodeName")
    else:  # "name"
        value = meta.get("name")
    return value if isinstance(value, str) else ""


def slurmd_pod(obj: Mapping[str, Any], key: str, sources: Sequence[str]) -> SlurmdPod:
    """The claim of one pod that matched the slurmd selector."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    node = spec.get("nodeName")
    node = node if isinstance(node, str) else ""
    phase = (obj.get("status") or {}).get("phase")
    phase = phase if isinstance(phase, str) else ""
    terminating = bool(meta.get("deletionTimestamp"))
    for src in sources:
        value = _source(obj, src)
        if not value:
            continue  # not set: the next source
        if not is_node_name(value):
            # A set but unusable name is refused, never replaced by the next source: that
            # would drive a Slurm node the pod does not register as.
            shown = value.encode("unicode_escape").decode("ascii")[:80]
            return SlurmdPod(key, None, node, phase, terminating,
                             f"slurmd pod {key}: Slurm name {shown!r} (from {src}) rejected: "
                             f"{describe_node_name(value)}")
        return SlurmdPod(key, value, node, phase, terminating)
    return SlurmdPod(key, None, node, phase, terminating,
                     f"slurmd pod {key}: none of {', '.join(sources)} is set")
