"""The pod name mapping against the simulator's Slinky-shaped slurmd pods: every rule of
docs/slinky.md ("Which Slurm node follows which Kubernetes node"), through a real Watcher."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from kubesim.client import SimClient
from syncd.core.model import KubeView
from syncd.kube.slurmd import slurmd_pod
from syncd.settings.kube import POD_SOURCES, NameMapping
from tests.fixtures.kube import eventually
from tests.kube.helpers import running

POD = NameMapping(mode="pod")
GPU = "nvidia.com/gpu"


async def _until(w: Any, check: Any, what: str) -> KubeView:
    await eventually(lambda: w.synced and check(w.view()), what=what)
    view: KubeView = w.view()
    return view


async def test_statefulset_pods_name_slurm_nodes_after_their_hostnames(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(3, prefix="node-", digits=1)
    pods = await sim_client.nodeset("slinky", ["node-1", "node-2", "node-3"])
    assert [p.slurm_name for p in pods] == ["slinky-0", "slinky-1", "slinky-2"]
    # GPU usage on a node still counts every pod that is not Slurm's own.
    await sim_client.start_pods([{"name": "train", "node": "node-2", "gpus": 3,
                                  "namespace": "ml"}])
    async with running(kube_api, name_mapping=POD) as w:
        view = await _until(w, lambda v: len(v.nodes) == 3, "three Slurm nodes")
        assert {s: k.name for s, k in view.nodes.items()} == {
            "slinky-0": "node-1", "slinky-1": "node-2", "slinky-2": "node-3"}
        assert dict(view.nodes["slinky-1"].gpu_held) == {GPU: 3}
        assert view.problems == () and view.notes == {}
        assert "slurmd pods (app.kubernetes.io/name=slurmd)" in view.mapping
        # A NotReady Kubernetes node is the state of exactly the Slurm node of its pod.
        await sim_client.set_ready("node-3", False)
        view = await _until(w, lambda v: not v.nodes["slinky-2"].ready, "slinky-2 NotReady")
        assert view.nodes["slinky-0"].ready and view.nodes["slinky-1"].ready


async def test_daemonset_pods_take_the_short_node_name_or_the_override(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("gpu-a.dc1.example")
    await sim_client.add_node("gpu-b.dc1.example")
    await sim_client.nodeset("ds", ["gpu-a.dc1.example", "gpu-b.dc1.example"],
                             mode="DaemonSet",
                             hostname_overrides={"gpu-b.dc1.example": "rack7-gpu-b"})
    async with running(kube_api, name_mapping=POD) as w:
        view = await _until(w, lambda v: len(v.nodes) == 2, "two Slurm nodes")
        assert {s: k.name for s, k in view.nodes.items()} == {
            "gpu-a": "gpu-a.dc1.example", "rack7-gpu-b": "gpu-b.dc1.example"}


async def test_pending_restarting_terminating_and_moving_pods(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(3, prefix="node-", digits=1)
    await sim_client.nodeset("slinky", ["node-1", None])
    async with running(kube_api, name_mapping=POD) as w:
        # Pending and unscheduled: nothing to compare, and why says so.
        view = await _until(w, lambda v: "slinky-1" in v.notes, "the Pending pod's note")
        assert "slinky-1" not in view.nodes
        assert view.notes["slinky-1"] == ("slurmd pod slurm/slinky-1 is Pending, not "
                                          "scheduled to a node yet")
        # Bound by the scheduler: it follows that node from then on.
        await sim_client.bind_pod("slurm", "slinky-1", "node-2")
        view = await _until(w, lambda v: "slinky-1" in v.nodes, "slinky-1 bound")
        assert view.nodes["slinky-1"].name == "node-2" and "slinky-1" not in view.notes
        # A restarting container changes nothing: the same object comes back.
        before = view.nodes["slinky-0"]
        await sim_client.restart_pod("slurm", "slinky-0")
        await sim_client.cordon("node-3")  # a later change, to know the restart was seen
        await eventually(lambda: w.state.nodes["node-3"].cordoned, what="cordon seen")
        assert w.view().nodes["slinky-0"] is before
        # Terminating on a NotReady node: it still follows that node until the pod is gone.
        await sim_client.set_ready("node-1", False)
        await sim_client.terminate_pod("slurm", "slinky-0")
        view = await _until(w, lambda v: "terminating" in v.notes.get("slinky-0", ""),
                            "terminating note")
        assert view.nodes["slinky-0"].name == "node-1" and not view.nodes["slinky-0"].ready
        # Gone, then re-created on another node (Slinky keeps the name): follows the new one.
        await sim_client.remove_pod("slurm", "slinky-0")
        view = await _until(w, lambda v: "slinky-0" not in v.nodes, "slinky-0 gone")
        assert "slinky-0" not in view.notes
        await sim_client.nodeset("slinky", ["node-3"], start=0)
        view = await _until(w, lambda v: "slinky-0" in v.nodes, "slinky-0 back")
        assert view.nodes["slinky-0"].name == "node-3" and view.nodes["slinky-0"].cordoned


async def test_several_slurmd_pods_on_one_node_share_its_state_not_its_gpus(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(2, prefix="node-", digits=1)
    await sim_client.nodeset("a", ["node-1", "node-2"])
    await sim_client.nodeset("b", ["node-1"])
    async with running(kube_api, name_mapping=POD) as w:
        view = await _until(w, lambda v: len(v.nodes) == 3, "three Slurm nodes")
        assert view.nodes["a-0"].shares_node_with == ("b-0",)
        assert view.nodes["b-0"].shares_node_with == ("a-0",)
        assert view.nodes["a-1"].shares_node_with == ()
        await sim_client.set_ready("node-1", False)
        view = await _until(w, lambda v: not v.nodes["b-0"].ready, "both follow node-1")
        assert not view.nodes["a-0"].ready and view.nodes["a-1"].ready
        await sim_client.remove_pod("slurm", "b-0")
        view = await _until(w, lambda v: "b-0" not in v.nodes, "b-0 gone")
        assert view.nodes["a-0"].shares_node_with == ()


async def test_one_slurm_name_on_two_nodes_is_contested(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(2, prefix="node-", digits=1)
    await sim_client.nodeset("slinky", ["node-1"], namespace="team-a")
    await sim_client.nodeset("slinky", ["node-2"], namespace="team-b")
    async with running(kube_api, name_mapping=POD) as w:
        view = await _until(w, lambda v: "slinky-0" in v.contested, "contested")
        assert "slinky-0" not in view.nodes
        assert any("slinky-0 claimed by slurmd pods on several nodes: team-a/slinky-0 on "
                   "node-1, team-b/slinky-0 on node-2" in p for p in view.problems)
        assert w.state.collisions_total == 1


async def test_a_pod_on_a_node_syncd_does_not_watch_is_noted(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("gpu-1", labels={"pool": "gpu"})
    await sim_client.add_node("cpu-1")
    await sim_client.nodeset("slinky", ["gpu-1", "cpu-1"])
    async with running(kube_api, name_mapping=POD, node_selector="pool=gpu") as w:
        view = await _until(w, lambda v: "slinky-1" in v.notes, "the unwatched node's note")
        assert sorted(view.nodes) == ["slinky-0"]
        assert "on node cpu-1, which syncd does not watch" in view.notes["slinky-1"]


def _pod(labels: dict[str, str], **spec: str) -> dict[str, Any]:
    return {"metadata": {"name": "p-0", "namespace": "slurm", "labels": labels},
            "spec": dict(spec), "status": {"phase": "Running"}}


@pytest.mark.parametrize(("labels", "spec", "want"), [
    ({"nodeset.slinky.slurm.net/pod-hostname": "h7"}, {"hostname": "x"}, "h7"),
    ({"nodeset.slinky.slurm.net/pod-hostname": ""}, {"hostname": "host-3"}, "host-3"),
    ({}, {}, "p-0"),  # neither label nor hostname: the pod name
])
def test_sources_in_order(labels: dict[str, str], spec: dict[str, str], want: str) -> None:
    assert slurmd_pod(_pod(labels, **spec), "slurm/p-0", POD_SOURCES).slurm_name == want


@pytest.mark.parametrize("value", ["gpu1 State=DOWN", "-x", "a;b", "n\n", "é"])
def test_an_unsafe_name_is_refused_never_replaced_by_the_next_source(value: str) -> None:
    got = slurmd_pod(_pod({"nodeset.slinky.slurm.net/pod-hostname": value}, hostname="ok"),
                     "slurm/p-0", POD_SOURCES)
    assert got.slurm_name is None and "rejected" in got.problem and "\n" not in got.problem


async def test_refused_names_are_counted_problems(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("node-1")
    await sim_client.start_pods([{"name": "bad", "node": "node-1", "namespace": "slurm",
                                  "gpus": 0, "slurm": True, "labels": {
                                      "nodeset.slinky.slurm.net/pod-hostname": "x State=DOWN"}}])
    async with running(kube_api, name_mapping=POD) as w:
        view = await _until(w, lambda v: bool(v.problems), "the refusal")
        assert view.nodes == {} and "slurmd pod slurm/bad: Slurm name" in view.problems[0]
        assert w.state.misses_total == 1


async def test_a_template_hostname_plus_the_padded_ordinal_names_the_slurm_node(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(2, prefix="k8s-", digits=1)
    pods = await sim_client.nodeset("slinky", ["k8s-2", "k8s-1"], hostname="gpu", padding=3,
                                    start=1)
    assert [(p.name, p.slurm_name) for p in pods] == [("slinky-001", "gpu001"),
                                                      ("slinky-002", "gpu002")]
    async with running(kube_api, name_mapping=POD) as w:
        view = await _until(w, lambda v: len(v.nodes) == 2, "two Slurm nodes")
        assert {s: k.name for s, k in view.nodes.items()} == {"gpu001": "k8s-2",
                                                              "gpu002": "k8s-1"}
