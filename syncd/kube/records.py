"""Slim records parsed from raw API dicts: only the fields syncd needs, nothing else kept.

Model objects cost ~10x more than raw JSON to build (docs/facts/kubernetes.md §1), and at
100,000 pods the watcher must not keep full objects around; these records are what is left of a
node or pod after parsing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from syncd.core.model import EMPTY, Taint
from syncd.core.validate import clean_reason_text
from syncd.kube.podgpu import LabelSelector, PodHold, node_counts, pod_hold


@dataclass(frozen=True, slots=True)
class NodeRec:
    name: str
    ready: bool
    cordoned: bool
    taints: tuple[Taint, ...]
    capacity: Mapping[str, int]
    allocatable: Mapping[str, int]
    #: only the label/annotation that the name mapping reads (if any)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: (type, status, text) of the conditions the policy watches, sorted by type
    conditions: tuple[tuple[str, str, str], ...] = ()
    #: syncd's mirror condition (status, reason, message) and whether its taint key is there
    mirror: tuple[str, str, str] | None = None
    mirror_taint: bool = False


#: What of the mirror condition is kept: syncd writes at most 200 characters of message, so
#: anything longer is not its text and is rewritten; the bound keeps a record small.
_MIRROR_TEXT = 300


def _frozen(counts: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(counts) if counts else EMPTY


def parse_node(
    obj: Mapping[str, Any], resources: Sequence[str], keep_label: str, keep_annotation: str,
    conditions: frozenset[str] = frozenset(),
    mirror: tuple[str, str] = ("", ""),
) -> tuple[NodeRec, list[str]]:
    """A node record and warnings about bogus quantities (those resources are left out).

    ``mirror`` is (condition type, taint key) of ``policy.mirror``, empty when it is off: only
    that condition and that key are read for it.
    """
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ready = False
    watched: list[tuple[str, str, str]] = []
    mirror_type, mirror_key = mirror
    marked: tuple[str, str, str] | None = None
    for cond in status.get("conditions") or ():
        kind = cond.get("type")
        if kind == "Ready":
            ready = cond.get("status") == "True"
        elif mirror_type and kind == mirror_type:
            marked = (str(cond.get("status", "")), str(cond.get("reason") or "")[:_MIRROR_TEXT],
                      str(cond.get("message") or "")[:_MIRROR_TEXT])
        elif kind in conditions:
            # Free text from whoever set the condition: only reason-safe characters of it
            # ever reach a Slurm reason.
            text = " ".join(str(cond.get(k) or "") for k in ("reason", "message")).strip()
            watched.append((str(kind), str(cond.get("status", "")),
                            clean_reason_text(text)[:80]))
    taints = tuple(
        Taint(key=str(t.get("key", "")), effect=str(t.get("effect", "")),
              value=str(t.get("value") or ""))
        for t in spec.get("taints") or ()
    )
    capacity, warn_c = node_counts(status.get("capacity"), resources)
    allocatable, warn_a = node_counts(status.get("allocatable"), resources)
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    rec = NodeRec(
        name=str(meta.get("name", "")),
        ready=ready,
        cordoned=bool(spec.get("unschedulable")),
        taints=taints,
        capacity=_frozen(capacity),
        allocatable=_frozen(allocatable),
        labels={keep_label: labels[keep_label]} if keep_label in labels else {},
        annotations=(
            {keep_annotation: annotations[keep_annotation]}
            if keep_annotation in annotations else {}
        ),
        conditions=tuple(sorted(watched)),
        mirror=marked,
        mirror_taint=bool(mirror_key) and any(t.key == mirror_key for t in taints),
    )
    return rec, [f"node {rec.name}: capacity {w}" for w in warn_c] + [
        f"node {rec.name}: allocatable {w}" for w in warn_a
    ]


def pod_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


_HELD_CACHE: dict[tuple[str, tuple[tuple[str, int], ...]], PodHold] = {}


def parse_pod(
    obj: Mapping[str, Any], resources: Sequence[str], slurm_pods: LabelSelector
) -> tuple[PodHold | None, list[str]]:
    """What the pod holds (None: nothing that counts) and warnings about bogus quantities.

    Identical holds are shared, so 100,000 one-GPU pods on 10,000 nodes cost 10,000 records.
    """
    hold, warnings = pod_hold(obj, resources, slurm_pods)
    if hold is None:
        return None, [f"pod {pod_key(obj)}: {w}" for w in warnings]
    key = (hold.node, hold.held)
    shared = _HELD_CACHE.get(key)
    if shared is None:
        if len(_HELD_CACHE) > 200_000:
            _HELD_CACHE.clear()
        shared = _HELD_CACHE[key] = hold
    return shared, [f"pod {pod_key(obj)}: {w}" for w in warnings]
