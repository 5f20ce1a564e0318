"""A restarted simulator process with ``--state-file`` behaves like an API server restarted on its
etcd: objects kept, resourceVersions rising on, an old watch answered ``ERROR 410 "too old
resource version: 241 (247)"`` (docs/kubesim.md), so clients relist instead of reading an
unrelated history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim.client import SimClient
from kubesim.server import start_sim_process
from syncd.kube.client import make_api_client
from syncd.settings.kube import KubeSettings
from tests.fixtures.brokers import free_port
from tests.fixtures.kube import ADMIN_TOKEN


@pytest.fixture
def sim_args(tmp_path: Path) -> tuple[str, ...]:
    return ("--token", ADMIN_TOKEN, "--listen", f"127.0.0.1:{free_port()}",
            "--state-file", str(tmp_path / "state.json"),
            "--write-kubeconfig", str(tmp_path / "kubeconfig"))


async def raw_list(core: Any, **kw: Any) -> dict[str, Any]:
    resp = await core.list_node(_preload_content=False, **kw)
    doc: dict[str, Any] = json.loads(await resp.read())
    return doc


async def watch_to_the_end(core: Any, rv: str) -> None:
    async with watch.Watch() as w:
        async for _ in w.stream(core.list_node, resource_version=rv, timeout_seconds=5):
            pass


async def test_restart_keeps_revisions_and_answers_old_watches_410(
        sim_args: tuple[str, ...], tmp_path: Path) -> None:
    with start_sim_process(*sim_args) as (_, url):
        async with SimClient(url, ADMIN_TOKEN) as sim:
            await sim.pool(2)
            api = await make_api_client(KubeSettings(kubeconfig=str(tmp_path / "kubeconfig")))
            try:
                listed = await raw_list(client.CoreV1Api(api))
            finally:
                await api.close()
            seen = int(listed["metadata"]["resourceVersion"])
            await sim.cordon("gpu001")
            last = await sim.set_labels("gpu002", {"rack": "r7"})
    assert last > seen
    with start_sim_process(*sim_args) as (_, url):
        api = await make_api_client(KubeSettings(kubeconfig=str(tmp_path / "kubeconfig")))
        try:
            core: Any = client.CoreV1Api(api)
            after = await raw_list(core)
            assert int(after["metadata"]["resourceVersion"]) >= last, "revisions never go back"
            nodes = {i["metadata"]["name"]: i for i in after["items"]}
            assert sorted(nodes) == ["gpu001", "gpu002"]
            assert nodes["gpu001"]["spec"]["unschedulable"] is True
            assert nodes["gpu002"]["metadata"]["labels"]["rack"] == "r7"
            assert nodes["gpu002"]["metadata"]["resourceVersion"] == str(last)
            # the watch from before the restart: history is gone, relist
            with pytest.raises(ApiException) as err:
                await watch_to_the_end(core, str(seen))
            assert err.value.status == 410
            assert err.value.reason == f"Expired: too old resource version: {seen} ({last})"
            with pytest.raises(ApiException) as err:
                await core.list_node(resource_version=str(seen),
                                     resource_version_match="Exact")
            assert err.value.status == 410
            # a watch from the newest version works and sees what follows
            async with SimClient(url, ADMIN_TOKEN) as sim:
                cordoned = await sim.cordon("gpu002")
            assert cordoned == last + 1
            async with watch.Watch() as w:
                async for event in w.stream(core.list_node, resource_version=str(last),
                                            timeout_seconds=5):
                    assert event["type"] == "MODIFIED"
                    assert event["object"].metadata.name == "gpu002"
                    assert event["object"].spec.unschedulable is True
                    w.stop()
        finally:
            await api.close()


async def test_a_first_start_and_a_bad_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with start_sim_process("--token", ADMIN_TOKEN, "--state-file", str(state)) as (_, url):
        async with SimClient(url, ADMIN_TOKEN) as sim:
            assert (await sim.stats())["objects"]["namespaces"] == 4, "a new cluster"
    saved = json.loads(state.read_text())
    assert saved["format"] == "kubesim-state/v1"
    assert {o["metadata"]["name"] for o in saved["objects"]["namespaces"]} >= {"default"}
    state.write_text("{not json")
    with pytest.raises(RuntimeError, match="simulator did not start"), start_sim_process(
            "--state-file", str(state), log=tmp_path / "err.log"):
        pass
    assert f"kubesim: cannot read state file {state}" in (tmp_path / "err.log").read_text()
