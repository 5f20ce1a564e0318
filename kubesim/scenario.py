"""The scenario API (``/sim/v1/...``): what kubelets and controllers would do, on demand.

Tests, the demo and the benchmark drive the cluster through these calls instead of faking
kubelets: create a GPU node pool, flip Ready (with the not-ready taints), cordon, taint,
delete and re-add nodes, change allocatable, start and finish GPU pods, compact history, cut
watches, add latency, and reset (a new apiserver on a fresh etcd). The objects come from
:mod:`kubesim.cluster`; each change is recorded for the writer that would make it.
"""

from __future__ import annotations

import copy
import gc
import uuid
from typing import Any

from aiohttp import web

from kubesim import errors
from kubesim.cluster import (
    NODES,
    NOT_READY,
    PODS,
    changed_by,
    created_by,
    node_data,
    pod_data,
    pod_status,
    raw_pod,
    set_ready,
)
from kubesim.kinds import KINDS, now_text
from kubesim.rest import json_response
from kubesim.slinky import HOSTNAME_LABEL, nodeset_pods
from kubesim.state import SIM_KEY, Sim
from kubesim.store import Stored

#: Who makes each node change in a real cluster, and through which endpoint.
_NODE_WRITERS = {"ready": ("kubelet", "status"), "allocatable": ("kubelet", "status"),
                 "cordon": ("kubectl-cordon", ""), "taints": ("kubectl-taint", ""),
                 "labels": ("kubectl-label", "")}


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
        data: dict[str, Any] = {
            "metadata": {"name": ns, "uid": str(uuid.uuid4()), "creationTimestamp": now_text(),
                         "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {}, "status": {}}
        created_by(KINDS["namespaces"], data, manager="kubectl-create")
        data["spec"], data["status"] = {"finalizers": ["kubernetes"]}, {"phase": "Active"}
        sim.store.put("namespaces", ("", ns), data)


def _node(sim: Sim, name: str) -> Stored:
    obj = sim.store.get("nodes", ("", name))
    if obj is None:
        raise errors.not_found("nodes", "", name)
    return obj


def _change_node(sim: Sim, name: str, data: dict[str, Any]) -> web.Response:
    obj = sim.store.put("nodes", ("", name), data)
    return json_response({"name": name, "resourceVersion": str(obj.rv)})


def _settle_heap() -> None:
    """After a bulk load, move the store's objects out of the collector's generations: a full
    collection of 100,000 pods' dicts stops this process for 100-200 ms, stalling every watch
    stream, where a real kube-apiserver's (Go's concurrent) collector pauses for well under a
    millisecond. Without it a benchmark's latency tail was the simulator's, not the client's."""
    gc.collect()
    gc.freeze()


async def pool(request: web.Request) -> web.Response:
    sim, body = _sim(request), await _body(request)
    prefix, start = body.get("prefix", "gpu"), int(body.get("start", 1))
    digits, count = int(body.get("digits", 3)), int(body.get("count", 1))
    names: list[str] = []
    managed = None  # the pool's nodes differ in values only: one managedFields list for all
    for i in range(start, start + count):
        name = f"{prefix}{i:0{digits}d}"
        data = node_data(
            name, i, gpus=int(body.get("gpus", 8)), resource=body.get("resource", "nvidia.com/gpu"),
            labels=body.get("labels") or {}, annotations=body.get("annotations") or {},
            ready=bool(body.get("ready", True)), managed=managed)
        managed = data["metadata"].get("managedFields")
        sim.store.put("nodes", ("", name), data)
        names.append(name)
    _settle_heap()
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
    if action not in _NODE_WRITERS:
        raise errors.NOT_FOUND_RESOURCE
    old = _node(sim, name).data
    data = copy.deepcopy(old)
    if action == "ready":
        set_ready(data, bool(body.get("ready", True)), taint=bool(body.get("taint", True)))
    elif action == "cordon":
        if body.get("cordoned", True):
            data["spec"]["unschedulable"] = True
        else:
            data["spec"].pop("unschedulable", None)
    elif action == "taints":
        keep = [t for t in data["spec"].get("taints") or () if t.get("key") == NOT_READY]
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
    manager, sub = _NODE_WRITERS[action]
    if action == "ready":  # the kubelet reports; the lifecycle controller sets the taints
        reported = {**old, "status": data["status"]}
        changed_by(NODES, old, reported, manager=manager, sub=sub)
        changed_by(NODES, reported, data, manager="kube-controller-manager")
    else:
        changed_by(NODES, old, data, manager=manager, sub=sub)
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
        data = raw_pod(spec["raw"]) if "raw" in spec else pod_data(spec)
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
    # Two shapes (plain and slurmd-labelled), each built and field-managed once.
    shape = {"name": "x", "node": "x", "gpus": body.get("gpus", 1),
             "resource": body.get("resource", "nvidia.com/gpu"), "namespace": ns}
    plain, slurmd = pod_data(shape), pod_data({**shape, "slurm": True})
    for i in range(int(body.get("count", 0))):
        template = slurmd if slurm_every and i % slurm_every == 0 else plain
        data = {"metadata": dict(template["metadata"]), "spec": dict(template["spec"]),
                "status": template["status"]}
        name = f"{prefix}-{i:06d}"
        data["metadata"]["name"] = name
        data["metadata"]["uid"] = str(uuid.uuid4())
        data["spec"]["nodeName"] = nodes[i % len(nodes)]
        sim.store.put("pods", (ns, name), data)
    _settle_heap()
    return json_response({"resourceVersion": str(sim.store.rv)})


async def nodeset(request: web.Request) -> web.Response:
    """The pods of a Slinky NodeSet (kubesim.slinky), as its controller and the scheduler
    leave them; returns each pod's name, Slurm name and node."""
    sim, body = _sim(request), await _body(request)
    try:
        pods = nodeset_pods(body)
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None
    out = []
    for data in pods:
        meta = data["metadata"]
        _ensure_namespace(sim, meta["namespace"])
        sim.store.put("pods", (meta["namespace"], meta["name"]), data)
        out.append({"namespace": meta["namespace"], "name": meta["name"],
                    "slurm_name": meta["labels"][HOSTNAME_LABEL],
                    "node": data["spec"].get("nodeName")})
    return json_response({"pods": out, "resourceVersion": str(sim.store.rv)})


def _pod_lifecycle(action: str, data: dict[str, Any], body: dict[str, Any]) -> str:
    """Change ``data`` as the writer of ``action`` would; returns that writer's name."""
    status = dict(data["status"])
    if action == "finish":
        data["status"] = pod_status(str(body.get("phase", "Succeeded")))
        return "kubelet"
    if action == "restart":  # the kubelet restarted a crashed container
        statuses = [dict(c) for c in status.get("containerStatuses") or ()]
        for c in statuses:
            c["restartCount"] = int(c.get("restartCount", 0)) + 1
        status["containerStatuses"] = statuses
        data["status"] = status
        return "kubelet"
    if action == "bind":  # the scheduler's binding, then the kubelet starts it
        data["spec"] = {**data["spec"], "nodeName": str(body["node"])}
        data["status"] = pod_status("Running")
        return "kube-scheduler"
    if action == "terminate":  # a graceful delete the kubelet has not finished
        meta = dict(data["metadata"])
        meta["deletionTimestamp"] = now_text()
        meta["deletionGracePeriodSeconds"] = int(body.get("grace", 30))
        data["metadata"] = meta
        return "kube-apiserver"
    raise errors.NOT_FOUND_RESOURCE


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
        manager = _pod_lifecycle(request.match_info["action"], data, body)
        sub = "status" if manager == "kubelet" else ""
        changed_by(PODS, obj.data, data, manager=manager, sub=sub)
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
        from kubesim.app import seed

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
    r.add_post("/sim/v1/nodesets", nodeset)
    r.add_post("/sim/v1/pods/{ns}/{name}/{action}", pod_action)
    r.add_delete("/sim/v1/pods/{ns}/{name}", pod_action)
    r.add_get("/sim/v1/stats", stats)
    r.add_post("/sim/v1/{action}", control)
