"""Typed async client of the simulator's scenario API, for tests, the demo and the benchmark."""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict

import aiohttp


class PodSpec(TypedDict, total=False):
    """Short description of a bound pod; ``node`` and ``name`` are required.

    ``gpus`` is the app container's limit of ``resource``; ``init_gpus`` adds an init container;
    ``overhead`` sets ``spec.overhead``; ``slurm`` labels it as Slinky's slurmd pod; ``raw`` is a
    whole pod object used as is.
    """

    name: str
    node: str
    namespace: str
    gpus: int | str
    resource: str
    init_gpus: int | str
    overhead: int | str
    phase: str
    labels: dict[str, str]
    slurm: bool
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SlurmdPod:
    """A slurmd pod the simulator made for a NodeSet: its Slurm name and node (None: unbound)."""

    namespace: str
    name: str
    slurm_name: str
    node: str | None


class SimError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"simulator answered {status}: {body[:300]}")
        self.status = status


class SimClient:
    def __init__(self, url: str, token: str, *, ca_file: Path | str | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._ssl: ssl.SSLContext | bool = True
        if ca_file is not None:
            self._ssl = ssl.create_default_context(cafile=str(ca_file))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SimClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        async with self._session.request(method, self.url + path, json=body,
                                         ssl=self._ssl) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise SimError(resp.status, text)
            return await resp.json(content_type=None) if text else None

    @staticmethod
    def _rv(answer: Any) -> int:
        return int(answer["resourceVersion"])

    # -- nodes ------------------------------------------------------------------------------
    async def pool(self, count: int, *, prefix: str = "gpu", start: int = 1, digits: int = 3,
                   gpus: int = 8, resource: str = "nvidia.com/gpu",
                   labels: Mapping[str, str] | None = None,
                   annotations: Mapping[str, str] | None = None, ready: bool = True) -> list[str]:
        """Create ``count`` Ready GPU nodes ``gpu001..``; returns their names."""
        answer = await self._call("POST", "/sim/v1/pool", {
            "count": count, "prefix": prefix, "start": start, "digits": digits, "gpus": gpus,
            "resource": resource, "labels": dict(labels or {}),
            "annotations": dict(annotations or {}), "ready": ready})
        return list(answer["nodes"])

    async def add_node(self, name: str, *, gpus: int = 8, resource: str = "nvidia.com/gpu",
                       labels: Mapping[str, str] | None = None,
                       annotations: Mapping[str, str] | None = None, ready: bool = True) -> int:
        """Create (or re-add) one node; returns the write's resourceVersion."""
        return self._rv(await self._call("POST", "/sim/v1/nodes", {
            "name": name, "gpus": gpus, "resource": resource, "labels": dict(labels or {}),
            "annotations": dict(annotations or {}), "ready": ready}))

    async def delete_node(self, name: str) -> int:
        return self._rv(await self._call("DELETE", f"/sim/v1/nodes/{name}"))

    async def set_ready(self, name: str, ready: bool, *, taint: bool = True) -> int:
        """Flip the Ready condition (and the not-ready taints unless ``taint`` is false)."""
        return self._rv(await self._call("POST", f"/sim/v1/nodes/{name}/ready",
                                         {"ready": ready, "taint": taint}))

    async def cordon(self, name: str, cordoned: bool = True) -> int:
        return self._rv(await self._call("POST", f"/sim/v1/nodes/{name}/cordon",
                                         {"cordoned": cordoned}))

    async def set_taints(self, name: str, taints: Sequence[Mapping[str, str]]) -> int:
        """Replace the node's taints (the not-ready taints of set_ready are kept)."""
        return self._rv(await self._call("POST", f"/sim/v1/nodes/{name}/taints",
                                         {"taints": [dict(t) for t in taints]}))

    async def set_labels(self, name: str, labels: Mapping[str, str | None] | None = None,
                         annotations: Mapping[str, str | None] | None = None) -> int:
        """Merge labels/annotations into the node (None removes a key)."""
        return self._rv(await self._call("POST", f"/sim/v1/nodes/{name}/labels", {
            "labels": dict(labels or {}), "annotations": dict(annotations or {})}))

    async def set_allocatable(self, name: str, resources: Mapping[str, int | str | None], *,
                              capacity: bool = False) -> int:
        return self._rv(await self._call("POST", f"/sim/v1/nodes/{name}/allocatable",
                                         {"resources": dict(resources), "capacity": capacity}))

    # -- pods -------------------------------------------------------------------------------
    async def start_pods(self, pods: Sequence[PodSpec]) -> int:
        return self._rv(await self._call("POST", "/sim/v1/pods", {"pods": list(pods)}))

    async def fill_pods(self, count: int, *, gpus: int = 1, resource: str = "nvidia.com/gpu",
                        namespace: str = "jobs", slurm_every: int = 0,
                        prefix: str = "job") -> int:
        """``count`` Running pods spread round-robin over all nodes, in one call."""
        return self._rv(await self._call("POST", "/sim/v1/pods/fill", {
            "count": count, "gpus": gpus, "resource": resource, "namespace": namespace,
            "slurm_every": slurm_every, "prefix": prefix}))

    async def finish_pod(self, namespace: str, name: str, phase: str = "Succeeded") -> int:
        return self._rv(await self._call("POST", f"/sim/v1/pods/{namespace}/{name}/finish",
                                         {"phase": phase}))

    # -- SchedMD Slinky ---------------------------------------------------------------------
    async def nodeset(self, name: str, nodes: Sequence[str | None], *,
                      mode: str = "StatefulSet", namespace: str = "slurm",
                      cluster: str = "slurm", start: int = 0, padding: int = 0,
                      gpus: int = 0, resource: str = "nvidia.com/gpu", hostname: str = "",
                      hostname_overrides: Mapping[str, str] | None = None) -> list[SlurmdPod]:
        """slurmd pods of a Slinky NodeSet, labelled and named as its controller does
        (kubesim.slinky). StatefulSet: pod ``<name>-<start + i>`` bound to ``nodes[i]``
        (``None``: Pending, unscheduled), Slurm name ``<hostname><ordinal>`` when the template
        sets a ``hostname``, else the pod name. DaemonSet: one pod per node."""
        answer = await self._call("POST", "/sim/v1/nodesets", {
            "name": name, "nodes": list(nodes), "mode": mode, "namespace": namespace,
            "cluster": cluster, "start": start, "padding": padding, "gpus": gpus,
            "resource": resource, "hostname": hostname,
            "hostname_overrides": dict(hostname_overrides or {})})
        return [SlurmdPod(**p) for p in answer["pods"]]

    async def bind_pod(self, namespace: str, name: str, node: str) -> int:
        """The scheduler binds a Pending pod to ``node``, and it starts there."""
        return self._rv(await self._call("POST", f"/sim/v1/pods/{namespace}/{name}/bind",
                                         {"node": node}))

    async def terminate_pod(self, namespace: str, name: str, grace: int = 30) -> int:
        """A graceful delete the kubelet has not finished: ``deletionTimestamp`` is set and
        the pod stays (as on a node that went NotReady) until :meth:`remove_pod`."""
        return self._rv(await self._call("POST", f"/sim/v1/pods/{namespace}/{name}/terminate",
                                         {"grace": grace}))

    async def restart_pod(self, namespace: str, name: str) -> int:
        """The kubelet restarted the pod's containers (``restartCount`` + 1)."""
        return self._rv(await self._call("POST", f"/sim/v1/pods/{namespace}/{name}/restart",
                                         {}))

    async def remove_pod(self, namespace: str, name: str) -> int:
        return self._rv(await self._call("DELETE", f"/sim/v1/pods/{namespace}/{name}"))

    # -- the server -------------------------------------------------------------------------
    async def compact(self) -> int:
        """Forget history: open watches get ERROR 410, older resourceVersions are gone."""
        return self._rv(await self._call("POST", "/sim/v1/compact", {}))

    async def drop_watches(self) -> int:
        """Cut every open watch connection mid-stream; returns how many."""
        return int((await self._call("POST", "/sim/v1/drop-watches", {}))["dropped"])

    async def configure(self, *, latency: float | None = None,
                        bookmark_interval: float | None = None,
                        too_large_wait: float | None = None,
                        anonymous: bool | None = None) -> None:
        body = {k: v for k, v in {"latency": latency, "bookmark_interval": bookmark_interval,
                                  "too_large_wait": too_large_wait,
                                  "anonymous": anonymous}.items() if v is not None}
        await self._call("POST", "/sim/v1/config", body)

    async def reset(self, start_rv: int = 1) -> int:
        """Forget every object and restart resourceVersions, like a new apiserver and etcd."""
        return self._rv(await self._call("POST", "/sim/v1/reset", {"start_rv": start_rv}))

    async def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", "/sim/v1/stats")
        return answer
