"""The mirror's writer (KubeMarker) against the simulator, over real HTTP with the real
kubernetes-asyncio client: its condition is merged beside the others through nodes/status, its
taint key is the only one it touches, a Node that changed in between is a conflict (nothing
lost), and a refusal is a one-line MarkError saying what the API server said."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from kubesim.client import SimClient
from kubesim.server import SimServer
from syncd.core.model import NodeCondition, Taint
from syncd.core.policy import ConditionCause, Mirror
from syncd.core.ports import MarkConflict, MarkError
from syncd.kube.client import make_api_client
from syncd.kube.marker import KubeMarker
from syncd.settings.kube import KubeSettings
from tests.fixtures.kube import READONLY_TOKEN, eventually
from tests.kube.helpers import POLICY, running

OURS = Taint("syncd.io/slurm-unavailable", "NoSchedule")
OTHER = {"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "present"}
DOWN = NodeCondition("SlurmNodeUnavailable", "True", "SlurmDrain", "root: fan")


async def node(api: client.ApiClient, name: str) -> dict[str, Any]:
    core: Any = client.CoreV1Api(api)  # raw JSON on purpose, as syncd's adapter reads it
    resp = await core.read_node(name, _preload_content=False)
    raw: dict[str, Any] = json.loads(await resp.read())
    return raw


def conditions(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in raw["status"]["conditions"]}


def taints(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return list(raw["spec"].get("taints") or [])


async def test_the_condition_is_merged_beside_the_kubelets(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("gpu001")
    marker = KubeMarker(kube_api)
    await marker.set_condition("gpu001", DOWN)
    first = conditions(await node(kube_api, "gpu001"))
    assert first["Ready"]["status"] == "True"  # the kubelet's condition is untouched
    mine = first["SlurmNodeUnavailable"]
    assert (mine["status"], mine["reason"], mine["message"]) == ("True", "SlurmDrain", "root: fan")
    assert mine["lastTransitionTime"] == mine["lastHeartbeatTime"]
    # A new message without a status change keeps the transition time.
    await marker.set_condition("gpu001", NodeCondition(
        "SlurmNodeUnavailable", "True", "SlurmDrain", "root: PSU", transition=False))
    again = conditions(await node(kube_api, "gpu001"))["SlurmNodeUnavailable"]
    assert again["message"] == "root: PSU"
    assert again["lastTransitionTime"] == mine["lastTransitionTime"]
    await marker.set_condition("gpu001", NodeCondition(
        "SlurmNodeUnavailable", "False", "SlurmAvailable", "back"))
    last = conditions(await node(kube_api, "gpu001"))
    assert last["SlurmNodeUnavailable"]["status"] == "False" and last["Ready"]["status"] == "True"


async def test_only_its_own_taint_key_is_touched(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("gpu001")
    await sim_client.set_taints("gpu001", [OTHER])
    marker = KubeMarker(kube_api)
    assert await marker.set_taint("gpu001", OURS, True) is True
    assert taints(await node(kube_api, "gpu001")) == [
        OTHER, {"key": OURS.key, "effect": "NoSchedule"}]
    assert await marker.set_taint("gpu001", OURS, True) is False  # already there: no write
    assert await marker.set_taint("gpu001", OURS, False) is True
    assert taints(await node(kube_api, "gpu001")) == [OTHER]
    assert await marker.set_taint("gpu001", OURS, False) is False
    # A taint with syncd's key but another effect is syncd's: replaced by the one it sets.
    await sim_client.set_taints("gpu001", [OTHER, {"key": OURS.key, "effect": "NoExecute"}])
    assert await marker.set_taint("gpu001", OURS, True) is True
    assert taints(await node(kube_api, "gpu001")) == [
        OTHER, {"key": OURS.key, "effect": "NoSchedule"}]


class _Racing(KubeMarker):
    """Someone else writes the Node's taints between syncd's read and its write."""

    def __init__(self, api: client.ApiClient, sim: SimClient) -> None:
        super().__init__(api)
        self.sim = sim

    async def _read(self, node: str) -> dict[str, Any]:
        raw = await super()._read(node)
        await self.sim.set_taints(node, [OTHER, {"key": "late", "effect": "NoSchedule"}])
        return raw


async def test_a_node_changed_in_between_is_a_conflict_and_loses_nothing(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("gpu001")
    await sim_client.set_taints("gpu001", [OTHER])
    with pytest.raises(MarkConflict):
        await _Racing(kube_api, sim_client).set_taint("gpu001", OURS, True)
    assert [t["key"] for t in taints(await node(kube_api, "gpu001"))] == [OTHER["key"], "late"]
    # The next pass reads again and writes on top of what is there now.
    assert await KubeMarker(kube_api).set_taint("gpu001", OURS, True) is True
    assert [t["key"] for t in taints(await node(kube_api, "gpu001"))] == [
        OTHER["key"], "late", OURS.key]


async def test_refusals_and_missing_nodes_are_one_line_mark_errors(
    kube_api: client.ApiClient, sim_client: SimClient, sim: SimServer, tmp_path: Path
) -> None:
    marker = KubeMarker(kube_api)
    with pytest.raises(MarkError, match="HTTP 404") as err:
        await marker.set_condition("nosuch", DOWN)
    assert "\n" not in str(err.value)
    with pytest.raises(MarkError, match="HTTP 404"):
        await marker.set_taint("nosuch", OURS, True)
    await sim_client.add_node("gpu001")
    readonly = await make_api_client(KubeSettings(kubeconfig=str(
        sim.write_kubeconfig(tmp_path / "ro", token=READONLY_TOKEN))))
    try:
        ro = KubeMarker(readonly)
        with pytest.raises(MarkError, match=r"HTTP 403 .*cannot patch resource \"nodes"):
            await ro.set_condition("gpu001", DOWN)
        with pytest.raises(MarkError, match="HTTP 403"):
            await ro.set_taint("gpu001", OURS, True)
    finally:
        await readonly.close()
    assert "SlurmNodeUnavailable" not in conditions(await node(kube_api, "gpu001"))


async def test_the_watcher_sees_the_marks_and_only_as_the_mirrors_state(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    policy = replace(POLICY, mirror=Mirror(enabled=True, taint=True),
                     conditions=(ConditionCause("KernelDeadlock"),))
    await sim_client.add_node("gpu001")
    await sim_client.set_taints("gpu001", [OTHER])
    changes: list[frozenset[str]] = []
    async with running(kube_api, policy=policy, changes=changes) as w:
        await eventually(lambda: w.synced, what="synced")
        assert w.view().nodes["gpu001"].mirror is None
        marker = KubeMarker(kube_api)
        await marker.set_condition("gpu001", DOWN)
        await marker.set_taint("gpu001", OURS, True)

        def marked() -> bool:
            k = w.view().nodes["gpu001"]
            return k.mirror == ("True", "SlurmDrain", "root: fan") and k.mirror_taint
        await eventually(marked, what="the marks in the view")
        k = w.view().nodes["gpu001"]
        assert k.conditions == ()  # never one of the conditions that drain
        assert {t.key for t in k.taints} == {OTHER["key"], OURS.key}
        assert any("gpu001" in c for c in changes)  # the engine hears of its own write
