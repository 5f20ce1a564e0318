"""metadata.managedFields as the recorded kube-apiserver kept them (10, 20, 21, 24, 25, 30, 31,
35, 36, 60, 62, 69, 95), on the scenario API's objects, and through kubectl."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubesim import managed
from kubesim.client import SimClient
from kubesim.server import SimServer
from tests.fixtures.kube import ADMIN_TOKEN
from tests.sim.test_protocol import expected, golden, replay

# The recordings were made by a client that sent no User-Agent: the server wrote "unknown".
ANONYMOUS_CLIENT = {"Authorization": f"Bearer {ADMIN_TOKEN}", "User-Agent": ""}
ASYNCIO_CLIENT = {**ANONYMOUS_CLIENT, "User-Agent": "OpenAPI-Generator/36.1.0/python"}


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """managedFields without the times, which are the run's own (so is their order, which
    follows them: test_entries_are_ordered_by_operation_time_and_manager)."""
    found = obj["metadata"].get("managedFields") or []
    assert all(e["time"].endswith("Z") and len(e["time"]) == 20 for e in found)
    return sorted(({k: v for k, v in e.items() if k != "time"} for e in found),
                  key=lambda e: (e["operation"], e["manager"], e.get("subresource", "")))


async def send(sim: SimServer, name: str, **kw: Any) -> dict[str, Any]:
    status, body, _ = await replay(sim, name, headers=kw.pop("headers", ANONYMOUS_CLIENT), **kw)
    assert status in (200, 201), body
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("name", [
    "10-node-create-with-status", "30-namespace-create", "60-lease-create"])
async def test_a_create_is_owned_by_its_writer_without_server_set_fields(sim: SimServer,
                                                                         name: str) -> None:
    body = await send(sim, name)
    assert entries(body) == entries(expected(name)[1])


async def test_pod_fields_defaults_included_admission_and_status_excluded(sim: SimServer) -> None:
    await send(sim, "30-namespace-create")
    body = await send(sim, "31-pod-create-bound-gpu")
    want = expected("31-pod-create-bound-gpu")[1]
    assert entries(body) == entries(want)
    # As heavy as the real pod: the recorded one is 1,798 bytes with managedFields, 1,100 without.
    size = len(json.dumps(body, separators=(",", ":")))
    assert abs(size - len(json.dumps(want, separators=(",", ":")))) < 100
    for step in ("35-pod-patch-status-running", "36-pod-patch-spec-via-status-ignored"):
        body = await send(sim, step)
        assert entries(body) == entries(expected(step)[1]), step


async def test_status_writes_have_their_own_entry(sim: SimServer) -> None:
    await send(sim, "10-node-create-with-status")
    for step in ("20-node-patch-status-merge-ready-false",
                 "21-node-patch-status-strategic-ready-true"):
        body = await send(sim, step)
        assert entries(body) == entries(expected(step)[1]), step


async def test_a_writer_takes_over_what_it_changes(sim: SimServer) -> None:
    node = golden("22-node-get-before-cordon-kubectl")["response"]["body"]
    meta = {"name": node["metadata"]["name"], "labels": node["metadata"]["labels"]}
    # as created: without the not-ready taint that admission added afterwards
    await send(sim, "10-node-create-with-status", body={**node, "metadata": meta, "spec": {}})
    path = "/api/v1/nodes/gpu-node-3"
    await send(sim, "24-node-uncordon-strategic-merge-patch", path=path,
               body={"spec": {"unschedulable": True}})
    body = await send(sim, "24-node-uncordon-strategic-merge-patch")
    assert entries(body) == entries(expected("24-node-uncordon-strategic-merge-patch")[1])
    body = await send(sim, "25-node-label-merge-patch-kubectl")
    assert entries(body) == entries(expected("25-node-label-merge-patch-kubectl")[1])
    # A PUT by another writer takes the fields it changes (69's "put" label and cordon).
    body.pop("kind")
    body["metadata"]["labels"]["put"] = "no-rv"
    body["spec"]["unschedulable"] = True
    body["metadata"].pop("resourceVersion")
    put = await send(sim, "69-node-update-put-no-rv-allowed", path=path, body=body)
    assert entries(put) == entries(expected("69-node-update-put-no-rv-allowed")[1])


async def test_lease_renewals_move_fields_between_managers(sim: SimServer) -> None:
    created = await send(sim, "60-lease-create")
    put = golden("62-lease-update-put-current-rv")["request"]["body"]
    put["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    renewed = await send(sim, "62-lease-update-put-current-rv", body=put)
    assert entries(renewed) == entries(expected("62-lease-update-put-current-rv")[1])
    # kubernetes-asyncio sends back what it read, managedFields included: they are kept.
    body = {**golden("95-asyncio-replace-namespaced-lease")["request"]["body"],
            "metadata": {**renewed["metadata"]}}
    taken = await send(sim, "95-asyncio-replace-namespaced-lease", body=body,
                       headers=ASYNCIO_CLIENT)
    assert entries(taken) == entries(expected("95-asyncio-replace-namespaced-lease")[1])
    body["metadata"] = {**taken["metadata"], "managedFields": [{}]}  # [{}] clears them
    cleared = await send(sim, "95-asyncio-replace-namespaced-lease", body=body)
    assert "managedFields" not in cleared["metadata"]


async def test_scenario_objects_carry_their_writers(sim: SimServer,
                                                    sim_client: SimClient) -> None:
    await sim_client.pool(2)
    await sim_client.set_ready("gpu002", False)
    await sim_client.start_pods([{"name": "a", "node": "gpu001", "gpus": 2}])
    await sim_client.fill_pods(3, slurm_every=2)
    nodes = {k[1]: o.data for k, o in sim.sim.store.table("nodes").items()}
    owners = {(e["manager"], e.get("subresource", "")): e["fieldsV1"]
              for e in nodes["gpu002"]["metadata"]["managedFields"]}
    assert set(owners) == {("kubelet", ""), ("kubelet", "status"),
                           ("kube-controller-manager", "")}
    assert "f:taints" in owners[("kube-controller-manager", "")]["f:spec"]
    assert set(owners[("kubelet", "status")]["f:status"]) >= {
        "f:allocatable", "f:capacity", "f:conditions", "f:nodeInfo"}
    pods = sim.sim.store.table("pods")
    for key, obj in pods.items():
        meta = obj.data["metadata"]
        by = {(e["manager"], e.get("subresource", "")) for e in meta["managedFields"]}
        assert by == {("kube-controller-manager", ""), ("kubelet", "status")}, key
        fields = managed.decode(meta["managedFields"][0]["fieldsV1"])
        assert (("f:metadata", "f:labels") in fields) == bool(meta.get("labels")), key
    # managedFields are most of what a scenario pod weighs more than before
    pod = pods[("default", "a")].data
    lean = {**pod, "metadata": {k: v for k, v in pod["metadata"].items()
                                if k != "managedFields"}}
    assert len(json.dumps(pod)) > 1.4 * len(json.dumps(lean))


def test_fields_v1_round_trips() -> None:
    tree = expected("31-pod-create-bound-gpu")[1]["metadata"]["managedFields"][0]["fieldsV1"]
    assert managed.encode(managed.decode(tree)) == tree
    assert json.dumps(managed.encode(managed.decode(tree))) == json.dumps(tree), "key order"


def test_entries_are_ordered_by_operation_time_and_manager() -> None:
    f: managed.FieldSet = {("f:spec", "f:x")}
    rows = managed.render({
        ("zeta", "Update", "v1", ""): (f, "2026-01-01T00:00:01Z"),
        ("alpha", "Update", "v1", "status"): (f, "2026-01-01T00:00:02Z"),
        ("beta", "Update", "v1", ""): (f, "2026-01-01T00:00:01Z"),
        ("applier", "Apply", "v1", ""): (f, "2026-01-01T00:00:09Z"),
        ("gone", "Update", "v1", ""): (set(), "2026-01-01T00:00:00Z"),
    })
    assert [r["manager"] for r in rows] == ["applier", "beta", "zeta", "alpha"]
    assert rows[-1]["subresource"] == "status"
    assert list(rows[0]) == ["manager", "operation", "apiVersion", "time", "fieldsType",
                             "fieldsV1"]
