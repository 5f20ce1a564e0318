"""Kubernetes -> Slurm name mapping: never guessed, collisions and misses reported."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from kubesim.client import SimClient
from syncd.core.naming import NameMapper
from syncd.settings.kube import NameMapping
from tests.fixtures.kube import eventually
from tests.kube.helpers import running


def test_same_name_by_default() -> None:
    assert NameMapper(NameMapping()).map("gpu001", {}, {}).slurm_name == "gpu001"


def test_from_label_or_annotation() -> None:
    by_label = NameMapper(NameMapping(mode="label", key="slurm/name"))
    assert by_label.map("k-1", {"slurm/name": "gpu7"}, {}).slurm_name == "gpu7"
    missing = by_label.map("k-1", {}, {})
    assert missing.slurm_name is None
    assert "no label slurm/name" in missing.problem
    by_annotation = NameMapper(NameMapping(mode="annotation", key="slurm/name"))
    assert by_annotation.map("k-1", {}, {"slurm/name": "gpu8"}).slurm_name == "gpu8"


def test_regex_and_template() -> None:
    rule = NameMapping(mode="regex", pattern=r"gpu-node-(\d+)\.(?P<dc>\w+)", template="{dc}gpu{1}")
    mapper = NameMapper(rule)
    assert mapper.map("gpu-node-017.dc1", {}, {}).slurm_name == "dc1gpu017"
    assert mapper.map("cpu-node-1.dc1", {}, {}).slurm_name is None


@pytest.mark.parametrize("value", ["gpu1 State=DOWN", "gpu1\n", "-gpu", "", "a" * 65, "gpu;rm"])
def test_unsafe_label_values_are_rejected(value: str) -> None:
    mapped = NameMapper(NameMapping(mode="label", key="n")).map("k", {"n": value}, {})
    assert mapped.slurm_name is None
    assert "\n" not in mapped.problem


async def test_watcher_reports_collisions_and_misses(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(1, labels={"slurm/name": "gpu1"})
    await sim_client.add_node("k-2", labels={"slurm/name": "gpu1"})
    await sim_client.add_node("k-3", labels={"slurm/name": "gpu1 State=DOWN"})
    await sim_client.add_node("k-4")
    await sim_client.add_node("k-5", labels={"slurm/name": "gpu5"})
    rule = NameMapping(mode="label", key="slurm/name")
    async with running(kube_api, name_mapping=rule) as w:
        await eventually(lambda: w.synced, what="synced")
        view = w.view()
        assert sorted(view.nodes) == ["gpu5"], "colliding and unmapped nodes are left out"
        assert view.nodes["gpu5"].name == "k-5"
        text = "\n".join(view.problems)
        assert "gpu1 claimed by several nodes: gpu001, k-2" in text
        assert "k-3" in text
        assert "k-4" in text
        assert w.state.misses_total == 2
        assert w.state.collisions_total == 1
        # fixing the label resolves the collision
        await sim_client.set_labels("k-2", {"slurm/name": "gpu2"})
        await eventually(lambda: sorted(w.view().nodes) == ["gpu1", "gpu2", "gpu5"],
                         what="collision resolved")


async def test_a_contested_name_is_driven_by_neither_and_freed_when_one_goes(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("k-a", labels={"slurm/name": "gpu1"})
    await sim_client.add_node("k-b", labels={"slurm/name": "gpu1"})
    rule = NameMapping(mode="label", key="slurm/name")
    async with running(kube_api, name_mapping=rule) as w:
        await eventually(lambda: w.synced, what="synced")
        view = w.view()
        assert "gpu1" not in view.nodes and view.contested == frozenset({"gpu1"})
        await sim_client.delete_node("k-b")  # the duplicate goes: its tombstone lets go
        await eventually(lambda: "gpu1" in w.view().nodes, what="gpu1 mapped again")
        view = w.view()
        assert view.nodes["gpu1"].name == "k-a" and not view.nodes["gpu1"].gone
        assert view.contested == frozenset() and view.problems == ()


async def test_a_node_replaced_under_a_new_name_is_live_not_a_tombstone(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.add_node("k-old", labels={"slurm/name": "gpu9"})
    rule = NameMapping(mode="label", key="slurm/name")
    async with running(kube_api, name_mapping=rule) as w:
        await eventually(lambda: "gpu9" in w.view().nodes, what="mapped")
        await sim_client.delete_node("k-old")
        await eventually(lambda: w.view().nodes["gpu9"].gone, what="tombstone")
        await sim_client.add_node("k-new", labels={"slurm/name": "gpu9"})
        await eventually(lambda: w.view().nodes.get("gpu9") is not None
                         and w.view().nodes["gpu9"].name == "k-new", what="replacement")
        assert not w.view().nodes["gpu9"].gone and w.view().contested == frozenset()
        assert "k-old" not in w.state.tombstones
