"""The watcher against the simulator over real HTTP, with the real kubernetes-asyncio client."""

from __future__ import annotations

import contextlib
from pathlib import Path

from kubernetes_asyncio import client

from kubesim.client import SimClient
from kubesim.server import SimServer, start_sim_process
from syncd.kube.client import make_api_client
from syncd.settings.kube import KubeSettings
from tests.fixtures.brokers import free_port
from tests.fixtures.kube import ADMIN_TOKEN, eventually
from tests.kube.helpers import running

GPU = "nvidia.com/gpu"


async def watchers_open(sim_client: SimClient, n: int) -> bool:
    return int((await sim_client.stats())["watchers"]) >= n


async def test_initial_list_then_watch_sees_every_change(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(4)
    await sim_client.start_pods([{"name": "a", "node": "gpu001", "gpus": 2}])
    changes: list[frozenset[str]] = []
    async with running(kube_api, changes=changes) as w:
        await eventually(lambda: w.synced, what="synced")
        view = w.view()
        assert sorted(view.nodes) == ["gpu001", "gpu002", "gpu003", "gpu004"]
        assert view.nodes["gpu001"].gpu_held == {GPU: 2}
        assert view.nodes["gpu001"].gpu_allocatable == {GPU: 8}
        assert view.nodes["gpu001"].ready
        assert not view.nodes["gpu001"].cordoned
        first = view

        await sim_client.set_ready("gpu002", False)
        await sim_client.cordon("gpu003")
        await sim_client.set_taints("gpu004", [{"key": "maint", "effect": "NoSchedule"}])
        await sim_client.set_allocatable("gpu001", {GPU: 6})
        await sim_client.start_pods([{"name": "b", "node": "gpu001", "gpus": 1}])
        await sim_client.finish_pod("default", "a")

        def settled() -> bool:
            v = w.view()
            return (not v.nodes["gpu002"].ready and v.nodes["gpu003"].cordoned
                    and any(t.key == "maint" for t in v.nodes["gpu004"].taints)
                    and v.nodes["gpu001"].gpu_allocatable == {GPU: 6}
                    and v.nodes["gpu001"].gpu_held == {GPU: 1})
        await eventually(settled, what="all changes seen")
        view = w.view()
        assert view.synced
        assert w.view() is view, "an unchanged view is reused"
        assert first.nodes["gpu001"].gpu_held == {GPU: 2}, "old snapshots never change"
        assert {"gpu002", "gpu003", "gpu004", "gpu001"} <= set().union(*changes)
        assert w.stats.lists == 2
        assert w.stats.relists == 0


async def test_deleted_node_is_a_tombstone_until_re_added(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(2)
    async with running(kube_api) as w:
        await eventually(lambda: w.synced, what="synced")
        await sim_client.delete_node("gpu002")
        await eventually(lambda: w.view().nodes["gpu002"].gone, what="tombstone")
        assert not w.view().nodes["gpu002"].ready
        await sim_client.add_node("gpu002", gpus=4)
        await eventually(lambda: not w.view().nodes["gpu002"].gone, what="re-added")
        assert w.view().nodes["gpu002"].gpu_capacity == {GPU: 4}


async def test_410_relists_with_nothing_lost_or_duplicated(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(3)
    await sim_client.start_pods([{"name": f"p{i}", "node": "gpu001"} for i in range(3)])
    async with running(kube_api) as w:
        await eventually(lambda: w.synced, what="synced")
        await sim_client.compact()  # open watches get ERROR 410
        # changes while the watcher relists must all land, once
        await sim_client.start_pods([{"name": "late", "node": "gpu002", "gpus": 3}])
        await sim_client.remove_pod("default", "p0")
        await sim_client.delete_node("gpu003")
        await eventually(lambda: w.stats.gone_410 >= 2, what="410 on both watches")

        def settled() -> bool:
            v = w.view()
            return (v.nodes["gpu001"].gpu_held == {GPU: 2}
                    and v.nodes["gpu002"].gpu_held == {GPU: 3} and v.nodes["gpu003"].gone)
        await eventually(settled, what="state after relist")
        assert w.stats.relists >= 2
        assert w.synced
        assert sorted(w.state.pods) == ["default/late", "default/p1", "default/p2"]


async def test_dropped_connection_resumes_from_last_version(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(2)
    async with running(kube_api) as w:
        await eventually(lambda: w.synced, what="synced")
        await eventually(lambda: watchers_open(sim_client, 2), what="two watches open")
        assert await sim_client.drop_watches() == 2
        await sim_client.cordon("gpu001")
        await eventually(lambda: w.view().nodes["gpu001"].cordoned, what="cordon after drop")
        assert w.stats.relists == 0, "a dropped stream resumes by resourceVersion"
        assert w.stats.errors >= 1
        assert w.synced


async def test_simulator_restart_resets_versions_and_watcher_relists(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(3)
    await sim_client.fill_pods(30)  # rv well above what the fresh server will reach
    async with running(kube_api) as w:
        await eventually(lambda: w.synced, what="synced")
        await sim_client.reset()
        await sim_client.pool(2, gpus=4)
        await eventually(lambda: w.stats.relists >= 1, what="relist after reset")

        def settled() -> bool:
            v = w.view()
            live = sorted(n for n, k in v.nodes.items() if not k.gone)
            return live == ["gpu001", "gpu002"] and v.nodes["gpu003"].gone and not w.state.pods
        await eventually(settled, what="fresh state")
        assert w.view().nodes["gpu001"].gpu_capacity == {GPU: 4}


async def test_api_server_restart_410s_the_stale_watch_and_the_watcher_relists(
    tmp_path: Path
) -> None:
    """The simulator process restarts on its state file, as an API server on its etcd: the pod
    watch, which saw no event since its list, comes back with a version older than the new
    watch cache and gets 410 (docs/kubesim.md); the watcher relists, nothing is lost."""
    kubeconfig = tmp_path / "kubeconfig"
    args = ("--token", ADMIN_TOKEN, "--listen", f"127.0.0.1:{free_port()}",
            "--state-file", str(tmp_path / "state.json"), "--write-kubeconfig", str(kubeconfig))
    with contextlib.ExitStack() as first:
        _, url = first.enter_context(start_sim_process(*args))
        async with SimClient(url, ADMIN_TOKEN) as sim:
            await sim.pool(3)
            await sim.start_pods([{"name": "a", "node": "gpu001", "gpus": 2}])
        api = await make_api_client(KubeSettings(kubeconfig=str(kubeconfig)))
        try:
            async with running(api) as w:
                await eventually(lambda: w.synced, what="synced")
                async with SimClient(url, ADMIN_TOKEN) as sim:
                    await sim.cordon("gpu002")  # the pod watch's version falls behind
                await eventually(lambda: w.view().nodes["gpu002"].cordoned, what="cordon")
                assert w.stats.relists == 0
                errors = w.stats.errors
                first.close()  # SIGTERM: the state file is written, every watch cut
                await eventually(lambda: w.stats.errors > errors, what="watches broken")
                with start_sim_process(*args):
                    async with SimClient(url, ADMIN_TOKEN) as sim:
                        await sim.start_pods([{"name": "b", "node": "gpu003", "gpus": 1}])
                    await eventually(lambda: w.stats.gone_410 >= 1 and w.stats.relists >= 1,
                                     what="410 and relist after the restart", within=20)

                    def settled() -> bool:
                        v = w.view()
                        return (v.synced and v.nodes["gpu003"].gpu_held == {GPU: 1}
                                and v.nodes["gpu001"].gpu_held == {GPU: 2}
                                and v.nodes["gpu002"].cordoned
                                and not any(n.gone for n in v.nodes.values()))
                    await eventually(settled, what="state after relist", within=20)
                    assert sorted(w.state.pods) == ["default/a", "default/b"]
        finally:
            await api.close()


async def test_stale_when_the_server_is_gone(sim: SimServer, kube_api: client.ApiClient,
                                             sim_client: SimClient) -> None:
    await sim_client.pool(1)
    async with running(kube_api, stale_after=0.5) as w:
        await eventually(lambda: w.synced, what="synced")
        sim.config.token = "rotated"  # every request is now 401: the watches stay broken
        sim.sim.store.drop_watches()
        await eventually(lambda: not w.synced, what="stale")
        assert not w.view().synced
        assert w.view().nodes["gpu001"].ready, "the last known state is kept"


async def test_bookmarks_advance_the_resource_version(
    sim: SimServer, kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(1)
    await sim_client.configure(bookmark_interval=0.1)
    async with running(kube_api) as w:
        await eventually(lambda: w.synced, what="synced")
        start = int(w.nodes.rv or 0)
        # pods change; the node watch only learns the new revision from a bookmark
        await sim_client.start_pods([{"name": "x", "node": "gpu001"}])
        await eventually(lambda: int(w.nodes.rv or 0) > start, what="node rv from a bookmark")
        assert w.stats.events >= 1


async def test_paginated_list_of_5000_pods_and_accounting_over_http(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    mig = "nvidia.com/mig-1g.10gb"
    await sim_client.pool(10)
    # round-robin over 10 nodes: every 10th pod (all on gpu001) is a slurmd pod
    await sim_client.fill_pods(5000, slurm_every=10)
    bogus = {"metadata": {"name": "bogus", "namespace": "default"}, "spec": {
        "nodeName": "gpu002", "containers": [
            {"name": "a", "resources": {"limits": {"nvidia.com/gpu": "1e400"}}},
            {"name": "b", "resources": {"limits": {"nvidia.com/gpu": "abc"}}}]},
        "status": {"phase": "Running"}}
    await sim_client.start_pods([
        {"name": "mig", "node": "gpu001", "gpus": 3, "resource": mig},
        {"name": "init", "node": "gpu003", "gpus": 1, "init_gpus": 4, "overhead": 1},
        {"name": "done", "node": "gpu004", "gpus": 8, "phase": "Failed"},
        {"name": "raw", "node": "gpu002", "raw": bogus},
    ])
    async with running(kube_api, list_page_size=1000) as w:
        await eventually(lambda: w.synced, what="synced")
        view = w.view()
        assert w.stats.requests >= 2 + 6, "5,000+ pods came in pages of 1,000"
        assert view.nodes["gpu001"].gpu_held == {mig: 3}, "slurmd pods are not foreign usage"
        assert view.nodes["gpu002"].gpu_held == {"nvidia.com/gpu": 500}
        assert view.nodes["gpu003"].gpu_held == {"nvidia.com/gpu": 505}, "max(1, init 4) + 1"
        assert view.nodes["gpu004"].gpu_held == {"nvidia.com/gpu": 500}, "failed pod is free"
        assert w.stats.skipped == 2, "both bogus quantities are counted, nothing crashed"


async def test_one_malformed_pod_is_skipped_and_counted_and_the_watch_goes_on(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    await sim_client.pool(2)
    async with running(kube_api) as w:
        await eventually(lambda: w.synced, what="synced")
        # Stored as is, past validation (as the audit's pod reached syncd): the watcher must
        # survive objects it cannot read, whatever let them into the store.
        bad = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "odd", "namespace": "default"},
               "spec": {"nodeName": "gpu001", "containers": ["abc"]},
               "status": {"phase": "Running"}}
        await sim_client.start_pods([{"raw": bad}])
        await eventually(lambda: w.stats.skipped >= 1, what="the malformed pod counted")
        assert any("malformed object skipped" in s for s in w.take_skips())
        await sim_client.start_pods([{"name": "real", "node": "gpu002", "gpus": 2}])
        await eventually(lambda: w.view().nodes["gpu002"].gpu_held == {GPU: 2},
                         what="a real pod after the malformed one still counts")
        assert w.stats.relists == 0  # no relist was needed to get past it


async def test_an_expired_tombstone_is_told_as_a_change(
    kube_api: client.ApiClient, sim_client: SimClient
) -> None:
    """Passes plan only the nodes the watcher names (syncd.core.planner ``only``), so a
    tombstone that expires while a view is taken is named like any other change."""
    await sim_client.pool(2)
    changes: list[frozenset[str]] = []
    async with running(kube_api, changes=changes) as w:
        await eventually(lambda: w.synced, what="synced")
        await sim_client.delete_node("gpu002")
        await eventually(lambda: w.view().nodes["gpu002"].gone, what="tombstone")
        told = len(changes)
        w.state.tombstone_ttl = 0.0
        assert "gpu002" not in w.view().nodes  # expired as the view was taken
        assert len(changes) == told + 1 and "gpu002" in changes[-1]
        w.view()
        assert len(changes) == told + 1  # nothing more changed: nothing more told
