"""The resource types the simulator serves, with their server-side defaulting and validation.

Only what syncd and kubectl touch: nodes, pods, namespaces (core/v1) and leases
(coordination.k8s.io/v1). Defaults follow the recorded responses in tests/data/k8s-golden
(a pod POST drops status and becomes Pending with a qosClass; a node POST keeps its status and
gets the ``node.kubernetes.io/not-ready:NoSchedule`` taint from admission).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubesim import errors
from kubesim.names import SUBDOMAIN_ERROR, subdomain_errors

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_MICROTIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})(Z|[+-]\d\d:\d\d)")
_MICROTIME_FIELDS = ("acquireTime", "renewTime")

NODE_BOOKMARK_STATUS: dict[str, Any] = {
    "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
    "nodeInfo": {k: "" for k in (
        "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
        "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion", "operatingSystem",
        "architecture")},
}


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Kind:
    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    fields: dict[str, Callable[[dict[str, Any]], str]]
    bookmark_body: dict[str, Any] = field(default_factory=dict)
    has_status: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def prefix(self) -> bytes:
        """JSON text spliced in front of a stored object's body to add kind/apiVersion."""
        return f'{{"kind":"{self.kind}","apiVersion":"{self.api_version}",'.encode()

    def zero(self) -> dict[str, Any]:
        """The kind's empty object as the server serialises it (``spec``/``status`` present)."""
        return {"metadata": {"creationTimestamp": None}, **self.bookmark_body}

    def reset_fields(self, sub: str) -> tuple[tuple[str, ...], ...]:
        """What a write through ``sub`` may not change, so its writer never owns it."""
        if not self.has_status:
            return ()
        return (("f:spec",),) if sub == "status" else (("f:status",),)

    def bookmark(self, rv: int) -> dict[str, Any]:
        meta = {"resourceVersion": str(rv), "creationTimestamp": None}
        return {"kind": self.kind, "apiVersion": self.api_version, "metadata": meta,
                **self.bookmark_body}


def _meta(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda o: _str(o.get("metadata", {}).get(key))


def _path(*keys: str) -> Callable[[dict[str, Any]], str]:
    def get(o: dict[str, Any]) -> str:
        cur: Any = o
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        if keys[-1] == "unschedulable":
            return "true" if cur else "false"
        return _str(cur)
    return get


_COMMON = {"metadata.name": _meta("name"), "metadata.namespace": _meta("namespace")}

KINDS: dict[str, Kind] = {
    "nodes": Kind("nodes", "Node", "", "v1", False,
                  {**_COMMON, "spec.unschedulable": _path("spec", "unschedulable")},
                  {"spec": {}, "status": NODE_BOOKMARK_STATUS}, short_names=("no",)),
    "pods": Kind("pods", "Pod", "", "v1", True,
                 {**_COMMON, **{f: _path(*f.split(".")) for f in (
                     "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                     "spec.serviceAccountName", "status.phase", "status.podIP",
                     "status.nominatedNodeName")}},
                 {"spec": {"containers": None}, "status": {}}, short_names=("po",)),
    "namespaces": Kind("namespaces", "Namespace", "", "v1", False,
                       {**_COMMON, "status.phase": _path("status", "phase")},
                       {"spec": {}, "status": {}}, short_names=("ns",)),
    "leases": Kind("leases", "Lease", "coordination.k8s.io", "v1", True, dict(_COMMON),
                   {"spec": {}}, has_status=False),
}


def new_metadata(meta: dict[str, Any], *, namespace: str | None) -> dict[str, Any]:
    """Server-set metadata in the order the API server writes it."""
    out: dict[str, Any] = {"name": meta["name"]}
    if namespace is not None:
        out["namespace"] = namespace
    out["uid"] = str(uuid.uuid4())
    out["resourceVersion"] = ""
    out["creationTimestamp"] = now_text()
    for key in ("labels", "annotations", "ownerReferences", "finalizers"):
        if meta.get(key):
            out[key] = meta[key]
    return out


def validate_name(kind: Kind, body: dict[str, Any]) -> str:
    meta = body.get("metadata") or {}
    name = meta.get("name") or ""
    if not name and meta.get("generateName"):
        name = meta["generateName"] + uuid.uuid4().hex[:5]
        meta["name"] = name
    if not name:
        raise errors.invalid(kind.kind, "", [{
            "reason": "FieldValueRequired", "field": "metadata.name",
            "message": "Required value: name or generateName is required"}])
    if subdomain_errors(name):
        raise errors.invalid(kind.kind, name, [{
            "reason": "FieldValueInvalid", "field": "metadata.name",
            "message": f'Invalid value: "{name}": {SUBDOMAIN_ERROR}'}])
    return str(name)


def check_decodable(kind: Kind, body: dict[str, Any]) -> None:
    """Errors the real server raises while decoding JSON (400), before validation (422)."""
    if kind.plural == "nodes":
        status = body.get("status") or {}
        for section in ("capacity", "allocatable"):
            for value in (status.get(section) or {}).values():
                if not isinstance(value, int | float) and not _QUANTITY.match(str(value)):
                    raise errors.bad_request(
                        f'{kind.kind} in version "v1" cannot be handled as a {kind.kind}: '
                        "quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    if kind.plural == "leases":
        spec = body.get("spec") or {}
        for key in _MICROTIME_FIELDS:
            value = spec.get(key)
            if value is None:
                continue
            match = _MICROTIME.fullmatch(str(value))
            if match is None:
                raise errors.bad_request(
                    f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}" '
                    'as "2006-01-02T15:04:05.000000Z07:00": cannot parse '
                    f'"{str(value)[19:]}" as ".000000"')
            stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
            spec[key] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_pod(body: dict[str, Any]) -> None:
    """Pod defaulting while decoding, as recorded in 31-pod-create-bound-gpu (requests from
    limits, container and spec defaults); the writer owns these fields."""
    spec = body.setdefault("spec", {})
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or ():
            res = c.setdefault("resources", {})
            limits, requests = res.get("limits") or {}, res.get("requests") or {}
            if limits:
                res["requests"] = {**limits, **requests}
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", "IfNotPresent")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)


def qos_class(spec: dict[str, Any]) -> str:
    """https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/ (cpu and memory only)."""
    guaranteed, any_request = True, False
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or ():
            res = c.get("resources") or {}
            limits, requests = res.get("limits") or {}, res.get("requests") or {}
            any_request = any_request or bool(requests) or bool(limits)
            guaranteed = guaranteed and {"cpu", "memory"} <= set(limits) and all(
                limits.get(k) == v for k, v in requests.items())
    if not any_request:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def admit_pod(body: dict[str, Any]) -> None:
    """What admission (DefaultTolerationSeconds, Priority) and the create strategy add.

    They act after field management, so no manager owns these fields (recording 31).
    """
    spec = body["spec"]
    spec.setdefault("tolerations", [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}])
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    body["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


def default_node(body: dict[str, Any]) -> None:
    status = body.setdefault("status", {})
    status.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
    status.setdefault("nodeInfo", dict(NODE_BOOKMARK_STATUS["nodeInfo"]))


def admit_node(body: dict[str, Any]) -> None:
    """The not-ready taint of NodeRestriction/TaintNodesByCondition admission (recording 10)."""
    taints = body.setdefault("spec", {}).setdefault("taints", [])
    if not any(t.get("key") == "node.kubernetes.io/not-ready" for t in taints):
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})


def default_namespace(body: dict[str, Any]) -> None:
    """The name label is a decoding default (the writer owns it, recording 30)."""
    meta = body["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta["name"]}


def admit_namespace(body: dict[str, Any]) -> None:
    body["spec"] = {"finalizers": ["kubernetes"]}
    body["status"] = {"phase": "Active"}
