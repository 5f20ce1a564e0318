"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`` and prints the
cells as they come (https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables);
``-o wide`` shows the priority-1 columns. Rows carry a PartialObjectMetadata (recording 17), and
in a watch every event carries a one-row Table with the columns repeated (recording 50).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Column = tuple[str, str, str, int]  # name, type, description, priority

_NODE_COLUMNS: list[Column] = [
    ("Name", "string", "Name must be unique within a namespace.", 0),
    ("Status", "string", "The status of the node", 0),
    ("Roles", "string", "The roles of the node", 0),
    ("Age", "string", "CreationTimestamp is a timestamp representing the server time when this "
     "object was created.", 0),
    ("Version", "string", "Kubelet Version reported by the node.", 0),
    ("Internal-IP", "string", "List of addresses reachable to the node.", 1),
    ("External-IP", "string", "List of addresses reachable to the node.", 1),
    ("OS-Image", "string", "OS Image reported by the node from /etc/os-release.", 1),
    ("Kernel-Version", "string", "Kernel Version reported by the node.", 1),
    ("Container-Runtime", "string", "Container Runtime Version reported by the node.", 1),
]
_POD_COLUMNS: list[Column] = [
    ("Name", "string", "Name must be unique within a namespace.", 0),
    ("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", 0),
    ("Status", "string", "The aggregate status of the containers in this pod.", 0),
    ("Restarts", "string", "The number of times the containers in this pod have been restarted "
     "and when the last container in this pod has restarted.", 0),
    ("Age", "string", "CreationTimestamp is a timestamp representing the server time when this "
     "object was created.", 0),
    ("IP", "string", "IP address allocated to the pod. Routable at least within the cluster.", 1),
    ("Node", "string", "Name of the Node this pod is running on.", 1),
    ("Nominated Node", "string", "Name of the node this pod has been nominated to.", 1),
    ("Readiness Gates", "string", "Readiness gates of this pod.", 1),
]
_DEFAULT_COLUMNS: list[Column] = [
    ("Name", "string", "Name must be unique within a namespace.", 0),
    ("Created At", "date", "CreationTimestamp is a timestamp representing the server time when "
     "this object was created.", 0),
]


def _age(stamp: str | None, now: datetime) -> str:
    """kubectl's HumanDuration, short form (k8s.io/apimachinery/pkg/util/duration)."""
    if not stamp:
        return "<unknown>"
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    secs = max(0, int((now - then).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _node_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    ready = "Unknown"
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            ready = "Ready" if cond.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        ready += ",SchedulingDisabled"
    roles = sorted(
        k.split("/", 1)[1] for k in (meta.get("labels") or {})
        if k.startswith("node-role.kubernetes.io/")
    )
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or ()}
    info = status.get("nodeInfo") or {}
    return [
        meta.get("name", ""), ready, ",".join(roles) or "<none>",
        _age(meta.get("creationTimestamp"), now), info.get("kubeletVersion", ""),
        addrs.get("InternalIP") or "<none>", addrs.get("ExternalIP") or "<none>",
        info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _pod_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    containers = spec.get("containers") or []
    ready = sum(1 for c in status.get("containerStatuses") or () if c.get("ready"))
    phase = status.get("reason") or status.get("phase") or "Unknown"
    if meta.get("deletionTimestamp"):
        phase = "Terminating"
    return [
        meta.get("name", ""), f"{ready}/{len(containers)}", phase, "0",
        _age(meta.get("creationTimestamp"), now), status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", "<none>",
    ]


def _columns(plural: str) -> list[Column]:
    return {"nodes": _NODE_COLUMNS, "pods": _POD_COLUMNS}.get(plural, _DEFAULT_COLUMNS)


def _row(plural: str, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    if plural == "nodes":
        cells = _node_cells(obj, now)
    elif plural == "pods":
        cells = _pod_cells(obj, now)
    else:
        meta = obj.get("metadata", {})
        cells = [meta.get("name", ""), meta.get("creationTimestamp")]
    partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
               "metadata": obj.get("metadata", {})}
    return {"cells": cells, "object": partial}


def table(plural: str, objs: Iterable[dict[str, Any]], rv: str,
          continue_token: str = "") -> dict[str, Any]:
    now = datetime.now(UTC)
    meta: dict[str, Any] = {"resourceVersion": rv}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": [
            {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": d,
             "priority": p}
            for n, t, d, p in _columns(plural)
        ],
        "rows": [_row(plural, o, now) for o in objs],
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept
