"""The scenario API (``/sim/v1/...``): what kubelets and controllers would do, on demand.

Tests, the demo and the benchmark drive the cluster through these calls instead of faking
kubelets: create a GPU node pool, flip Ready (with the taints the node lifecycle controller
adds, https://kubernetes.io/docs/reference/labels-annotations-taints/#node-kubernetes-io-not-ready),
cordon, taint, delete and re-add nodes, change allocatable, start and finish GPU pods, compact
history, cut watches, add latency, and reset (a restarted apiserver on a fresh etcd).
Objects are built here fully defaulted and stored directly, so 100,000 pods take seconds.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from aiohttp import web

from syncd.sim import errors
from syncd.sim.kinds import now_text
from syncd.sim.rest import json_response
from syncd.sim.state import SIM_KEY, Sim
from syncd.sim.store import Stored

_NOT_READY = "node.kubernetes.io/not-ready"
SLURMD_LABELS = {"app.kubernetes.io/name": "slurmd"}


def node_data(name: str, index: int, *, gpus: int, resource: str, labels: dict[str, str],
              annotations: dict[str, str], ready: bool) -> dict[str, Any]:
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
    _set_ready(data, ready)
    return data


def _set_ready(data: dict[str, Any], ready: bool, *, taint: bool = True) -> None:
    stamp = now_text()
    data["status"]["conditions"] = [{
        "type": "Ready", "status": "True" if ready else "False",
        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp,
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status" if ready else "simulated failure"}]
    taints = [t for t in data["spec"].get("taints") or () if t.get("key") != _NOT_READY]
    if not ready and taint:
        taints += [{"key": _NOT_READY, "effect": "NoSchedule"},
                   {"key": _NOT_READY, "effect": "NoExecute", "timeAdded": stamp}]
    if taints:
        data["spec"]["taints"] = taints
    else:
        data["spec"].pop("taints", None)


def pod_data(spec: dict[str, Any]) -> dict[str, Any]:
    """A bound, defaulted pod from a short description (see SimClient.start_pods)."""
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
    phase = spec.get("phase", "Running")
    labels = dict(spec.get("labels") or {})
    if spec.get("slurm"):
        labels.update(SLURMD_LABELS)
    meta: dict[str, Any] = {"name": spec["name"], "namespace": spec.get("namespace", "default"),
                            "uid": str(uuid.uuid4()), "resourceVersion": "",
                            "creationTimestamp": now_text()}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta, "spec": pod_spec, "status": _pod_status(phase)}


def _pod_status(phase: str) -> dict[str, Any]:
    running = phase == "Running"
    return {"phase": phase, "conditions": [{"type": "Ready", "status": str(running)}],
            "containerStatuses": [{"name": "main", "ready": running, "restartCount": 0,
                                   "image": "sim/job", "imageID": "", "started": running}],
            "qosClass": "Guaranteed"}


def _sim(request: web.Request) -> Sim:
    return request.app[SIM_KEY]


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise errors.bad_request("scenario body must be a JSON object")
    return body


def _ensure_namespace(sim: Sim, ns: str) -> None:
    if sim.store.get("namespaces", ("", ns)) is None:
        sim.store.put("namespaces", ("", ns), {
            "metadata": {"name": ns, "uid": str(uuid.uuid4()), "creationTimestamp": now_text(),
                         "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})


def _node(sim: Sim, name: str) -> Stored:
    obj = sim.store.get("nodes", ("", name))
    if obj is None:
        raise errors.not_found("nodes", "", name)
    return obj


def _change_node(sim: Sim, name: str, data: dict[str, Any]) -> web.Response:
    obj = sim.store.put("nodes", ("", name), data)
    return json_response({"name": name, "resourceVersion": str(obj.rv)})


async def pool(request: web.Request) -> web.Response:
    sim, body = _sim(request), await _body(request)
    prefix, start = body.get("prefix", "gpu"), int(body.get("start", 1))
    digits, count = int(body.get("digits", 3)), int(body.get("count", 1))
    names = []
    for i in range(start, start + count):
        name = f"{prefix}{i:0{digits}d}"
        sim.store.put("nodes", ("", name), node_data(
            name, i, gpus=int(body.get("gpus", 8)), resource=body.get("resource", "nvidia.com/gpu"),
            labels=body.get("labels") or {}, annotations=body.get("annotations") or {},
            ready=bool(body.get("ready", True))))
        names.append(name)
    return json_response({"nodes": names, "resourceVersion": str(sim.store.rv)})


async def add_node(request: web.Request) -> web.Response:
    sim, body = _sim(request), await _body(request)
    name = str(body["name"])
    data = node_data(name, len(sim.store.table("nodes")) + 1, gpus=int(body.get("gpus", 8)),
                     resource=body.get("resource", "nvidia.com/gpu"),
                     labels=body.get("labels") or {}, annotations=body.get("annotations") or {},
                     ready=bool(body.get("ready", True)))
    return _change_node(sim, name, data)


async def node_action(request: web.Request) -> web.Response:
    sim, body = _sim(request), await _body(request)
    name, action = request.match_info["name"], request.match_info["action"]
    data = copy.deepcopy(_node(sim, name).data)
    if action == "ready":
        _set_ready(data, bool(body.get("ready", True)), taint=bool(body.get("taint", True)))
    elif action == "cordon":
        if body.get("cordoned", True):
            data["spec"]["unschedulable"] = True
        else:
            data["spec"].pop("unschedulable", None)
    elif action == "taints":
        keep = [t for t in data["spec"].get("taints") or () if t.get("key") == _NOT_READY]
        data["spec"]["taints"] = keep + list(body.get("taints") or [])
        if not data["spec"]["taints"]:
            data["spec"].pop("taints")
    elif action == "labels":
        meta = data["metadata"]
        for field in ("labels", "annotations"):
            current = dict(meta.get(field) or {})
            for k, v in (body.get(field) or {}).items():
                if v is None:
                    current.pop(k, None)
                else:
                    current[k] = v
            meta[field] = current
    elif action == "allocatable":
        for section in ("allocatable", "capacity") if body.get("capacity") else ("allocatable",):
            counts = dict(data["status"].get(section) or {})
            for k, v in (body.get("resources") or {}).items():
                if v is None:
                    counts.pop(k, None)
                else:
                    counts[k] = str(v)
            data["status"][section] = counts
    else:
        raise errors.NOT_FOUND_RESOURCE
    return _change_node(sim, name, data)


async def delete_node(request: web.Request) -> web.Response:
    sim = _sim(request)
    name = request.match_info["name"]
    _node(sim, name)
    obj = sim.store.remove("nodes", ("", name))
    return json_response({"name": name, "resourceVersion": str(obj.rv)})


async def start_pods(request: web.Request) -> web.Response:
    sim, body = _sim(request), await _body(request)
    for spec in body.get("pods") or ():
        _ensure_namespace(sim, spec.get("namespace", "default"))
        data = spec["raw"] if "raw" in spec else pod_data(spec)
        ns = data["metadata"].get("namespace", "default")
        sim.store.put("pods", (ns, data["metadata"]["name"]), data)
    return json_response({"resourceVersion": str(sim.store.rv)})


async def fill_pods(request: web.Request) -> web.Response:
    """``count`` GPU pods spread round-robin over all nodes (every ``slurm_every``-th is slurmd)."""
    sim, body = _sim(request), await _body(request)
    ns = body.get("namespace", "jobs")
    _ensure_namespace(sim, ns)
    nodes = [k[1] for k in sim.store.sorted_keys("nodes")]
    if not nodes:
        raise errors.bad_request("no nodes to place pods on")
    slurm_every = int(body.get("slurm_every", 0))
    prefix = body.get("prefix", "job")
    template = pod_data({"name": "x", "node": "x", "gpus": body.get("gpus", 1),
                         "resource": body.get("resource", "nvidia.com/gpu"), "namespace": ns})
    for i in range(int(body.get("count", 0))):
        data = {"metadata": dict(template["metadata"]), "spec": dict(template["spec"]),
                "status": template["status"]}
        name = f"{prefix}-{i:06d}"
        data["metadata"]["name"] = name
        data["metadata"]["uid"] = str(uuid.uuid4())
        data["spec"]["nodeName"] = nodes[i % len(nodes)]
        if slurm_every and i % slurm_every == 0:
            data["metadata"]["labels"] = SLURMD_LABELS
        sim.store.put("pods", (ns, name), data)
    return json_response({"resourceVersion": str(sim.store.rv)})


async def pod_action(request: web.Request) -> web.Response:
    sim, body = _sim(request), await _body(request)
    key = (request.match_info["ns"], request.match_info["name"])
    obj = sim.store.get("pods", key)
    if obj is None:
        raise errors.not_found("pods", "", key[1])
    if request.method == "DELETE":
        done = sim.store.remove("pods", key)
    else:
        data = dict(obj.data)
        data["status"] = _pod_status(str(body.get("phase", "Succeeded")))
        done = sim.store.put("pods", key, data)
    return json_response({"resourceVersion": str(done.rv)})


async def control(request: web.Request) -> web.Response:
    sim, body = _sim(request), await _body(request)
    action = request.match_info["action"]
    out: dict[str, Any] = {}
    if action == "compact":
        sim.store.compact()
    elif action == "drop-watches":
        out["dropped"] = sim.store.drop_watches()
    elif action == "reset":
        from syncd.sim.app import seed

        sim.store.reset(int(body.get("start_rv", 1)))
        sim.generation += 1
        seed(sim)
    elif action == "config":
        for field in ("latency", "bookmark_interval", "too_large_wait"):
            if field in body:
                setattr(sim.config, field, float(body[field]))
        if "anonymous" in body:
            sim.config.anonymous = bool(body["anonymous"])
    else:
        raise errors.NOT_FOUND_RESOURCE
    out["resourceVersion"] = str(sim.store.rv)
    return json_response(out)


async def stats(request: web.Request) -> web.Response:
    sim = _sim(request)
    c = sim.counters
    return json_response({
        "resourceVersion": str(sim.store.rv), "floor": str(sim.store.floor),
        "objects": {k: len(v) for k, v in sim.store.objects.items()},
        "watchers": len(sim.store.watchers), "requests": c.requests,
        "watches_opened": c.watches_opened, "watch_events": c.watch_events,
        "by_verb": c.by_verb, "generation": sim.generation})


def add_scenario_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/sim/v1/pool", pool)
    r.add_post("/sim/v1/nodes", add_node)
    r.add_delete("/sim/v1/nodes/{name}", delete_node)
    r.add_post("/sim/v1/nodes/{name}/{action}", node_action)
    r.add_post("/sim/v1/pods", start_pods)
    r.add_post("/sim/v1/pods/fill", fill_pods)
    r.add_post("/sim/v1/pods/{ns}/{name}/finish", pod_action)
    r.add_delete("/sim/v1/pods/{ns}/{name}", pod_action)
    r.add_get("/sim/v1/stats", stats)
    r.add_post("/sim/v1/{action}", control)
