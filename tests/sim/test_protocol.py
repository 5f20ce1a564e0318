"""The simulator answers the way the recorded kube-apiserver did (tests/data/k8s-golden)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubesim.client import SimClient
from kubesim.server import SimServer
from tests.fixtures.kube import ADMIN_TOKEN, READONLY_TOKEN

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "k8s-golden"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def golden(name: str) -> dict[str, Any]:
    found = json.loads((GOLDEN / f"{name}.json").read_text())
    assert isinstance(found, dict)
    return found


async def replay(sim: SimServer, name: str, *, headers: dict[str, str] | None = None,
                 body: Any = None, path: str | None = None,
                 query: str | None = None) -> tuple[int, Any, str]:
    """Send the recorded request (optionally changed); returns status, body, content type."""
    rec = golden(name)["request"]
    hdrs = {**rec["headers"], **(ADMIN if headers is None else headers)}
    q = rec["query"] if query is None else query
    url = sim.url + (path or rec["path"]) + (f"?{q}" if q else "")
    data = body if body is not None else rec["body"]
    raw = data if isinstance(data, str) else (json.dumps(data) if data is not None else None)
    async with aiohttp.ClientSession() as s, s.request(rec["method"], url, headers=hdrs,
                                                        data=raw) as resp:
        text = await resp.text()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return resp.status, parsed, resp.headers.get("Content-Type", "")


def expected(name: str) -> tuple[int, Any]:
    rec = golden(name)["response"]
    return rec["status"], rec["body"]


@pytest.mark.parametrize("name", [
    "18-node-list-fieldselector-bad-field", "74-error-node-get-missing-404",
    "75-error-node-create-invalid-422", "75b-error-node-create-bad-quantity-400",
    "75c-error-node-create-no-name-422", "76-error-unknown-resource-404",
    "79-error-invalid-label-selector-400", "45-node-list-rv-match-without-rv-422",
    "27-node-patch-merge-unsupported-type", "66-lease-get-missing-404",
])
async def test_error_bodies_match_the_recordings(sim: SimServer, name: str) -> None:
    status, body, ctype = await replay(sim, name)
    assert (status, body) == expected(name)
    assert ctype.startswith("application/json")


async def test_auth_errors(sim: SimServer) -> None:
    assert (await replay(sim, "70-error-no-token-anonymous-403", headers={}))[:2] == expected(
        "70-error-no-token-anonymous-403")
    bad = {"Authorization": "Bearer nope"}
    assert (await replay(sim, "71-error-bad-token-401", headers=bad))[:2] == expected(
        "71-error-bad-token-401")
    sim.config.anonymous = False
    assert (await replay(sim, "70b-error-no-token-anonymous-disabled-401", headers={}))[
        :2] == expected("70b-error-no-token-anonymous-disabled-401")


async def test_readonly_token_reads_but_cannot_write(sim: SimServer,
                                                     sim_client: SimClient) -> None:
    await sim_client.pool(1)
    ro = {"Authorization": f"Bearer {READONLY_TOKEN}"}
    status, _, _ = await replay(sim, "11-node-get", headers=ro, path="/api/v1/nodes/gpu001")
    assert status == 200
    status, body, _ = await replay(sim, "73-error-user-without-rbac-403-lease-update", headers=ro)
    want_status, want = expected("73-error-user-without-rbac-403-lease-update")
    assert status == want_status == 403
    assert body["details"] == want["details"]
    assert body["message"] == want["message"].replace('"nobody"', '"readonly"')


async def test_unknown_group_is_plain_text(sim: SimServer) -> None:
    status, body, ctype = await replay(sim, "77-error-unknown-group-404")
    assert (status, body) == expected("77-error-unknown-group-404")
    assert ctype.startswith("text/plain")


async def test_malformed_json_is_400(sim: SimServer) -> None:
    status, body, _ = await replay(sim, "78-error-malformed-json-400")
    assert status == 400
    assert body["reason"] == "BadRequest"


async def test_discovery(sim: SimServer) -> None:
    for name in ("02-discovery-api-aggregated-accept", "04-discovery-api-plain"):
        status, body, ctype = await replay(sim, name)
        assert status == 200
        assert body["kind"] == "APIVersions"
        assert body["versions"] == ["v1"]
        assert ctype.startswith("application/json")
    status, body, _ = await replay(sim, "03-discovery-apis-aggregated-accept")
    assert body["kind"] == "APIGroupList"
    assert "coordination.k8s.io" in [g["name"] for g in body["groups"]]
    status, body, _ = await replay(sim, "06-discovery-api-v1")
    names = {r["name"]: r for r in body["resources"]}
    want = {r["name"]: r for r in expected("06-discovery-api-v1")[1]["resources"]}
    for res in ("nodes", "nodes/status", "pods", "pods/status", "namespaces"):
        assert names[res]["namespaced"] == want[res]["namespaced"]
        assert set(names[res]["verbs"]) == set(want[res]["verbs"])
    status, body, _ = await replay(sim, "07-discovery-coordination-v1")
    assert body["resources"][0]["name"] == "leases"
    assert body["resources"][0]["namespaced"]
    status, body, _ = await replay(sim, "01-discovery-version", headers={})
    assert status == 200
    assert body["major"] == "1"


async def test_node_lifecycle_matches_recordings(sim: SimServer) -> None:
    status, body, _ = await replay(sim, "10-node-create-with-status")
    want_status, want = expected("10-node-create-with-status")
    assert status == want_status == 201
    assert body["spec"] == want["spec"], "admission adds the not-ready taint"
    assert body["status"] == want["status"]
    assert isinstance(body["metadata"]["resourceVersion"], str)
    # 20: merge patch replaces the conditions array; 21: strategic merges by type
    _, body, _ = await replay(sim, "20-node-patch-status-merge-ready-false")
    assert body["status"]["conditions"] == expected(
        "20-node-patch-status-merge-ready-false")[1]["status"]["conditions"]
    extra = {"status": {"conditions": [{"type": "DiskPressure", "status": "False"}]}}
    await replay(sim, "20-node-patch-status-merge-ready-false", body=extra)
    _, body, _ = await replay(sim, "21-node-patch-status-strategic-ready-true")
    types = {c["type"]: c["status"] for c in body["status"]["conditions"]}
    assert types == {"DiskPressure": "False", "Ready": "True"}
    # cordon (strategic), uncordon (null deletes), label (merge, fieldManager)
    path = "/api/v1/nodes/gpu-node-1"
    _, body, _ = await replay(sim, "24-node-uncordon-strategic-merge-patch", path=path,
                              body={"spec": {"unschedulable": True}})
    assert body["spec"]["unschedulable"] is True
    _, body, _ = await replay(sim, "24-node-uncordon-strategic-merge-patch", path=path)
    assert "unschedulable" not in body["spec"]
    _, body, _ = await replay(sim, "25-node-label-merge-patch-kubectl", path=path)
    assert body["metadata"]["labels"]["a"] == "b"
    # 69: PUT without resourceVersion is allowed for nodes; a stale one is 409
    body.pop("kind")
    body["metadata"]["labels"]["put"] = "no-rv"
    stale = body["metadata"].pop("resourceVersion")
    status, put, _ = await replay(sim, "69-node-update-put-no-rv-allowed", path=path, body=body)
    assert status == 200
    assert put["metadata"]["labels"]["put"] == "no-rv"
    body["metadata"]["resourceVersion"] = stale
    status, err, _ = await replay(sim, "69-node-update-put-no-rv-allowed", path=path, body=body)
    assert status == 409
    assert err["reason"] == "Conflict"
    # JSON patch
    ops = [{"op": "add", "path": "/metadata/labels/j", "value": "p"}]
    _, body, _ = await replay(sim, "24-node-uncordon-strategic-merge-patch", path=path,
                              body=ops, headers={**ADMIN,
                                                 "Content-Type": "application/json-patch+json"})
    assert body["metadata"]["labels"]["j"] == "p"
    status, body, _ = await replay(sim, "26-node-delete", path=path)
    assert status == 200
    assert body["status"] == "Success"
    assert body["details"]["kind"] == "nodes"
    assert set(body["details"]) == set(expected("26-node-delete")[1]["details"])


async def test_pod_defaults_status_subresource_and_grace(sim: SimServer,
                                                         sim_client: SimClient) -> None:
    await replay(sim, "30-namespace-create")
    status, body, _ = await replay(sim, "31-pod-create-bound-gpu")
    want = expected("31-pod-create-bound-gpu")[1]
    assert status == 201
    assert body["status"] == want["status"]
    assert body["spec"] == want["spec"]
    _, body, _ = await replay(sim, "35-pod-patch-status-running")
    assert body["status"] == expected("35-pod-patch-status-running")[1]["status"]
    _, body, _ = await replay(sim, "36-pod-patch-spec-via-status-ignored")
    assert "activeDeadlineSeconds" not in body["spec"]
    assert body["metadata"]["labels"]["x"] == "y"
    # 38/39: a bound pod without grace 0 stays, with a deletionTimestamp
    path = "/api/v1/namespaces/ml/pods/train-1"
    status, body, _ = await replay(sim, "38-pod-delete-default-grace", path=path)
    assert status == 200
    assert body["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await replay(sim, "39-pod-get-after-graceful-delete", path=path))[0] == 200
    status, body, _ = await replay(sim, "39b-pod-delete-body-deleteoptions", path=path)
    assert status == 200
    assert body["kind"] == "Pod"
    status, body, _ = await replay(sim, "39c-pod-get-missing", path=path)
    assert status == 404
    assert body == {**expected("39c-pod-get-missing")[1], "message":
                                      'pods "train-1" not found',
                                      "details": {"name": "train-1", "kind": "pods"}}


async def test_leases_optimistic_concurrency(sim: SimServer) -> None:
    status, created, _ = await replay(sim, "60-lease-create")
    assert status == 201
    assert created["spec"] == expected("60-lease-create")[1]["spec"]
    status, body, _ = await replay(sim, "60-lease-create")
    assert status == 409
    assert body["reason"] == "AlreadyExists"
    put = golden("62-lease-update-put-current-rv")["request"]["body"]
    put["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    status, body, _ = await replay(sim, "62-lease-update-put-current-rv", body=put)
    assert status == 200
    assert body["spec"]["renewTime"] == "2024-01-01T00:00:05.123456Z"
    current = body["metadata"]["resourceVersion"]
    status, body, _ = await replay(sim, "62-lease-update-put-current-rv", body=put)
    assert status == 409
    assert body["details"] == {"name": "syncd-leader",
                                                 "group": "coordination.k8s.io",
                                                 "kind": "leases"}
    assert (await replay(sim, "65-lease-update-put-no-rv-422"))[:2] == expected(
        "65-lease-update-put-no-rv-422")
    assert (await replay(sim, "68-lease-update-put-name-mismatch-400"))[:2] == expected(
        "68-lease-update-put-name-mismatch-400")
    assert (await replay(sim, "96-asyncio-replace-lease-microtime-without-fraction-400"))[
        :2] == expected("96-asyncio-replace-lease-microtime-without-fraction-400")
    status, body, _ = await replay(sim, "95-asyncio-replace-namespaced-lease", body={
        **golden("95-asyncio-replace-namespaced-lease")["request"]["body"],
        "metadata": {"name": "syncd-leader", "namespace": "default",
                     "resourceVersion": current}})
    assert status == 200
    assert body["spec"]["renewTime"] == "2024-01-01T00:01:02.345678Z"
    status, body, _ = await replay(sim, "67-lease-list")
    assert body["kind"] == "LeaseList"
    assert [i["metadata"]["name"] for i in body["items"]] == [
        "syncd-leader"]
