"""Objects as a cluster's own writers leave them: GPU nodes from kubelets, bound pods from a
controller plus the kubelet's status, each with the ``managedFields`` those writers record.

The scenario API stores these directly (no HTTP round trip per object), so 100,000 pods take
seconds; objects that share a shape share one managedFields list (it is never mutated).
Node conditions and taints follow the node lifecycle controller
(https://kubernetes.io/docs/reference/labels-annotations-taints/#node-kubernetes-io-not-ready).
"""

from __future__ import annotations

import uuid
from typing import Any

from kubesim.kinds import KINDS, Kind, admit_pod, default_pod, now_text
from kubesim.writes import track

NOT_READY = "node.kubernetes.io/not-ready"
SLURMD_LABELS = {"app.kubernetes.io/name": "slurmd"}
NODES, PODS = KINDS["nodes"], KINDS["pods"]


def created_by(kind: Kind, data: dict[str, Any], *, manager: str,
               status_manager: str = "") -> None:
    """Record ``manager`` as the creator of all but the status, ``status_manager`` of that."""
    zero = kind.zero()
    if not status_manager or not kind.has_status:
        track(kind, zero, data, manager=manager)
        return
    first = {**data, "metadata": dict(data["metadata"]), "status": zero.get("status", {})}
    track(kind, zero, first, manager=manager)
    data["metadata"]["managedFields"] = first["metadata"].get("managedFields")
    track(kind, first, data, manager=status_manager, sub="status")


def changed_by(kind: Kind, old: dict[str, Any], new: dict[str, Any], *, manager: str,
               sub: str = "") -> None:
    new["metadata"] = dict(new["metadata"])
    track(kind, old, new, manager=manager, sub=sub)


def node_data(name: str, index: int, *, gpus: int, resource: str, labels: dict[str, str],
              annotations: dict[str, str], ready: bool,
              managed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Ready (or NotReady) GPU node; ``managed`` reuses the entries of a same-shaped node."""
    counts = {"cpu": "64", "memory": "512Gi", "pods": "110", resource: str(gpus)}
    meta: dict[str, Any] = {"name": name, "uid": str(uuid.uuid4()), "resourceVersion": "",
                            "creationTimestamp": now_text(),
                            "labels": {"kubernetes.io/hostname": name, **labels}}
    if annotations:
        meta["annotations"] = dict(annotations)
    data: dict[str, Any] = {
        "metadata": meta, "spec": {},
        "status": {
            "capacity": counts, "allocatable": dict(counts), "conditions": [],
            "addresses": [{"type": "InternalIP", "address": f"10.{index >> 16 & 255}."
                                                           f"{index >> 8 & 255}.{index & 255}"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "",
                         "kernelVersion": "6.8.0-sim", "osImage": "Ubuntu 24.04 LTS",
                         "containerRuntimeVersion": "containerd://1.7.0",
                         "kubeletVersion": "v1.32.0", "kubeProxyVersion": "v1.32.0",
                         "operatingSystem": "linux", "architecture": "amd64"},
        },
    }
    set_ready(data, ready)
    if managed is not None:
        meta["managedFields"] = managed
    else:
        created_by(NODES, data, manager="kubelet", status_manager="kubelet")
    return data


def set_ready(data: dict[str, Any], ready: bool, *, taint: bool = True) -> None:
    stamp = now_text()
    data["status"]["conditions"] = [{
        "type": "Ready", "status": "True" if ready else "False",
        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp,
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status" if ready else "simulated failure"}]
    taints = [t for t in data["spec"].get("taints") or () if t.get("key") != NOT_READY]
    if not ready and taint:
        taints += [{"key": NOT_READY, "effect": "NoSchedule"},
                   {"key": NOT_READY, "effect": "NoExecute", "timeAdded": stamp}]
    if taints:
        data["spec"]["taints"] = taints
    else:
        data["spec"].pop("taints", None)


def pod_data(spec: dict[str, Any]) -> dict[str, Any]:
    """A bound, defaulted pod from a short description (see SimClient.start_pods), as a
    controller creates it (its spec) and the kubelet reports it (its status)."""
    resource = spec.get("resource", "nvidia.com/gpu")
    limits: dict[str, str] = {"cpu": "1", "memory": "1Gi"}
    if spec.get("gpus", 1):
        limits[resource] = str(spec.get("gpus", 1))
    container = {"name": "main", "image": "sim/job", "resources": {
        "limits": limits, "requests": dict(limits)}, "imagePullPolicy": "IfNotPresent"}
    pod_spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never",
                                "nodeName": spec["node"], "schedulerName": "default-scheduler"}
    if spec.get("init_gpus"):
        init_limits = {resource: str(spec["init_gpus"])}
        pod_spec["initContainers"] = [{"name": "init", "image": "sim/init", "resources": {
            "limits": init_limits, "requests": dict(init_limits)}}]
    if spec.get("overhead"):
        pod_spec["overhead"] = {resource: str(spec["overhead"])}
    labels = dict(spec.get("labels") or {})
    if spec.get("slurm"):
        labels.update(SLURMD_LABELS)
    meta: dict[str, Any] = {"name": spec["name"], "namespace": spec.get("namespace", "default"),
                            "uid": str(uuid.uuid4()), "resourceVersion": "",
                            "creationTimestamp": now_text()}
    if labels:
        meta["labels"] = labels
    data: dict[str, Any] = {"metadata": meta, "spec": pod_spec, "status": {}}
    default_pod(data)
    created_by(PODS, data, manager="kube-controller-manager")
    admit_pod(data)
    old = {**data, "metadata": dict(meta)}
    data["status"] = pod_status(spec.get("phase", "Running"))
    changed_by(PODS, old, data, manager="kubelet", sub="status")
    return data


def pod_status(phase: str) -> dict[str, Any]:
    running = phase == "Running"
    return {"phase": phase, "conditions": [{"type": "Ready", "status": str(running)}],
            "containerStatuses": [{"name": "main", "ready": running, "restartCount": 0,
                                   "image": "sim/job", "imageID": "", "started": running}],
            "qosClass": "Guaranteed"}


def raw_pod(data: dict[str, Any]) -> dict[str, Any]:
    """A whole pod given by a test, stored as is; it gets managedFields when it has none."""
    if not (data.get("metadata") or {}).get("managedFields"):
        data = {**data, "metadata": dict(data.get("metadata") or {})}
        created_by(PODS, data, manager="kube-controller-manager", status_manager="kubelet")
    return data
