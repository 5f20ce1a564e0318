"""List and watch semantics of the simulator, through the real kubernetes-asyncio client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from kubernetes_asyncio import client, watch

from kubesim.client import SimClient
from kubesim.server import SimServer
from tests.fixtures.kube import ADMIN_TOKEN
from tests.sim.test_protocol import expected, golden

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: Far above timeoutSeconds (at most 3 s here), far below the 1,800 s a stuck watch would run.
SERVER_ENDS_WITHIN = 120.0


async def get(sim: SimServer, path: str, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(sim.url + path,
                                                   headers={**ADMIN, **headers}) as r:
        return r.status, await r.json(content_type=None)


async def watch_lines(sim: SimServer, query: str, **headers: str) -> list[dict[str, Any]]:
    """Every event line of one watch, which the server must end by itself.

    The bound is no measurement: the watches here end after at most timeoutSeconds=3, and one
    the server failed to end would run to the simulator's default of 1,800 s.
    """
    async with aiohttp.ClientSession() as s, s.get(
            f"{sim.url}/api/v1/nodes?{query}", headers={**ADMIN, **headers}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers.get("Transfer-Encoding") == "chunked"
        return await asyncio.wait_for(_lines(r), SERVER_ENDS_WITHIN)


async def _lines(r: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    return [json.loads(line) async for line in r.content if line.strip()]


async def test_watch_events_then_bookmarks_then_clean_end(sim: SimServer,
                                                          sim_client: SimClient) -> None:
    rv = await sim_client.pool(1) and (await sim_client.stats())["resourceVersion"]
    await sim_client.configure(bookmark_interval=60)
    await sim_client.cordon("gpu001")
    await sim_client.delete_node("gpu001")
    lines = await watch_lines(sim, f"allowWatchBookmarks=true&resourceVersion={rv}"
                                   "&timeoutSeconds=3&watch=1")
    assert [e["type"] for e in lines[:2]] == ["MODIFIED", "DELETED"]
    assert all(e["object"]["kind"] == "Node" for e in lines)
    # Bookmarks are sent shortly before the deadline: that they came shows the watch stayed
    # open until then instead of ending after the changes.
    assert {e["type"] for e in lines[2:]} == {"BOOKMARK"}, "bookmarks come before the deadline"
    recorded = json.loads(golden("40-node-watch-bookmarks-timeout5")["response"]["body"][4])
    bookmark = lines[-1]["object"]
    assert bookmark == {**recorded["object"], "metadata": {
        "resourceVersion": bookmark["metadata"]["resourceVersion"], "creationTimestamp": None}}


async def test_watch_without_changes_ends_cleanly_at_the_timeout(sim: SimServer) -> None:
    lines = await watch_lines(sim, "timeoutSeconds=1&watch=1&resourceVersion=1")
    assert lines == []


async def test_watch_from_zero_sends_synthetic_added_and_old_rv_replays(
    sim: SimServer, sim_client: SimClient
) -> None:
    await sim_client.pool(3)
    lines = await watch_lines(sim, "resourceVersion=0&timeoutSeconds=1&watch=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [
        ("ADDED", "gpu001"), ("ADDED", "gpu002"), ("ADDED", "gpu003")]
    await sim_client.cordon("gpu002")
    lines = await watch_lines(sim, "resourceVersion=1&timeoutSeconds=1&watch=1")
    assert [e["type"] for e in lines] == ["ADDED", "ADDED", "ADDED", "MODIFIED"]


async def test_too_old_watch_is_an_error_event_and_list_exact_is_http_410(
    sim: SimServer, sim_client: SimClient
) -> None:
    await sim_client.pool(2)
    await sim_client.compact()
    # No timeoutSeconds: the ERROR itself must end the watch (watch_lines fails on one that
    # stays open towards the 1,800 s default).
    lines = await watch_lines(sim, "resourceVersion=2&watch=true")
    assert len(lines) == 1
    assert lines[0]["type"] == "ERROR"
    assert lines[0]["object"]["code"] == 410
    assert lines[0]["object"]["reason"] == "Expired"
    status, body = await get(sim, "/api/v1/nodes?resourceVersion=2&resourceVersionMatch=Exact")
    assert (status, body) == expected("43-node-list-rv-too-old-exact-410")
    status, body = await get(sim, "/api/v1/nodes?resourceVersion=2"
                                  "&resourceVersionMatch=NotOlderThan")
    assert status == 200
    assert len(body["items"]) == 2


async def test_future_rv_is_504_and_rv0_ignores_limit(sim: SimServer,
                                                      sim_client: SimClient) -> None:
    await sim_client.pool(3)
    status, body = await get(sim, "/api/v1/nodes?resourceVersion=999999999")
    want = expected("48-node-list-rv-future-504")[1]
    assert status == 504
    assert body["details"] == want["details"]
    assert body["message"].startswith("Timeout: Too large resource version: 999999999, current:")
    status, body = await get(sim, "/api/v1/nodes?resourceVersion=0&limit=2")
    assert len(body["items"]) == 3
    assert "continue" not in body["metadata"]


async def test_pagination_is_a_consistent_snapshot(sim: SimServer, sim_client: SimClient,
                                                   kube_api: client.ApiClient) -> None:
    await sim_client.pool(10)
    await sim_client.fill_pods(5000)
    core: Any = client.CoreV1Api(kube_api)  # raw responses: _preload_content=False
    names: list[str] = []
    token: str | None = None
    versions = set()
    while True:
        resp = await core.list_pod_for_all_namespaces(limit=1200, _continue=token,
                                                      _preload_content=False)
        page = json.loads(await resp.read())
        names += [i["metadata"]["name"] for i in page["items"]]
        versions.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 5000 - len(names)
        await sim_client.start_pods([{"name": f"late{len(names)}", "node": "gpu001",
                                      "namespace": "jobs"}])
    assert len(names) == 5000
    assert names == sorted(names)
    assert len(versions) == 1
    # a token whose snapshot was compacted: 410 with a fresh token (46)
    first = await core.list_node(limit=3, _preload_content=False)
    token = json.loads(await first.read())["metadata"]["continue"]
    await sim_client.compact()
    status, body = await get(sim, f"/api/v1/nodes?limit=3&continue={token}")
    want = expected("46-node-list-continue-expired-410")[1]
    assert status == 410
    assert body["message"] == want["message"]
    assert body["metadata"]["continue"]
    status, body = await get(sim, f"/api/v1/nodes?limit=3&continue={body['metadata']['continue']}")
    assert status == 200
    assert body["items"][0]["metadata"]["name"] == "gpu004"


async def test_selectors_as_kubernetes_asyncio_sends_them(
    sim: SimServer, sim_client: SimClient, kube_api: client.ApiClient
) -> None:
    await sim_client.pool(3, labels={"pool": "train"})
    await sim_client.cordon("gpu002")
    await sim_client.start_pods([{"name": "a", "node": "gpu001", "labels": {"app": "train"}},
                                 {"name": "b", "node": "gpu001", "phase": "Succeeded"},
                                 {"name": "c", "node": "gpu002", "labels": {"app": "train"}}])
    core = client.CoreV1Api(kube_api)
    pods = await core.list_pod_for_all_namespaces(
        field_selector="spec.nodeName=gpu001,status.phase!=Succeeded,status.phase!=Failed",
        label_selector="app=train", limit=500, resource_version="0",
        resource_version_match="NotOlderThan")
    assert [p.metadata.name for p in pods.items] == ["a"]
    nodes = await core.list_node(field_selector="spec.unschedulable=false",
                                 label_selector="pool==train")
    assert [n.metadata.name for n in nodes.items] == ["gpu001", "gpu003"]
    nodes = await core.list_node(field_selector="metadata.name=gpu003")
    assert [n.metadata.name for n in nodes.items] == ["gpu003"]


async def test_kubernetes_asyncio_watch_stream(sim: SimServer, sim_client: SimClient,
                                               kube_api: client.ApiClient) -> None:
    await sim_client.pool(1)
    await sim_client.configure(bookmark_interval=0.2)
    core = client.CoreV1Api(kube_api)
    rv = (await core.list_node()).metadata.resource_version
    await sim_client.cordon("gpu001")
    seen = []
    async with watch.Watch() as w:
        async for event in w.stream(core.list_node, resource_version=rv,
                                    allow_watch_bookmarks=True, timeout_seconds=1):
            seen.append(event["type"])
            if event["type"] == "BOOKMARK":
                assert isinstance(event["object"], dict), "docs/facts/kubernetes.md §1"
            else:
                assert event["object"].spec.unschedulable is True
    assert seen[0] == "MODIFIED"
    assert "BOOKMARK" in seen


async def test_table_output(sim: SimServer, sim_client: SimClient) -> None:
    await sim_client.pool(2)
    await sim_client.cordon("gpu002")
    accept = golden("17-node-list-as-table-kubectl-get")["request"]["headers"]["Accept"]
    _, body = await get(sim, "/api/v1/nodes?limit=500", Accept=accept)
    want = expected("17-node-list-as-table-kubectl-get")[1]
    assert body["kind"] == "Table"
    assert body["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in body["columnDefinitions"]] == [
        c["name"] for c in want["columnDefinitions"]]
    assert [r["cells"][:2] for r in body["rows"]] == [["gpu001", "Ready"],
                                                      ["gpu002", "Ready,SchedulingDisabled"]]
    assert body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
