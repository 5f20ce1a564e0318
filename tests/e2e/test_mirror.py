"""The mirror end to end: syncd as a real subprocess with ``policy.mirror`` on, the real Slurm
sandbox, the Kubernetes simulator and a real Redis. An operator's ``scontrol`` drain shows on
the Kubernetes node as syncd's condition and taint within 2 s (Slurm is probed every second),
goes away with the resume, and a minute of flapping writes to the API server at most once per
flip, never to Slurm, and leaves another taint on the node in place. The simulator runs in this
test's event loop, so every blocking call goes through a thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from kubesim.client import SimClient
from syncd.events.schemas import validate_event
from tests.e2e.kit import Syncd, child_env, new_port, stream_events, syncd_config
from tests.fixtures.brokers import Addr
from tests.fixtures.slurm import SlurmSandbox, running_sandbox
from tests.fixtures.waiting import eventually

NODE = "gpu002"
CONDITION = "SlurmNodeUnavailable"
KEY = "syncd.io/slurm-unavailable"
OTHER = {"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "present"}
FLAP_FOR = 60.0  # seconds of drain/resume
FLAP_EVERY = 2.5  # seconds between flips: more than the 1 s probe, so most flips are seen


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    """A sandbox of this module's own: the daemon reconciles every node it sees."""
    with running_sandbox(tmp_path_factory.mktemp("mirror-slurm"), nodes=4) as b:
        yield b


def features(box: SlurmSandbox, node: str) -> str:
    return box.run("scontrol", "-o", "show", "node", node).stdout.partition(
        "AvailableFeatures=")[2].split(" ")[0]



async def kube_node(api: client.ApiClient, name: str) -> dict[str, Any]:
    core: Any = client.CoreV1Api(api)  # raw JSON, as syncd reads it
    resp = await core.read_node(name, _preload_content=False)
    raw: dict[str, Any] = json.loads(await resp.read())
    return raw


def marks(raw: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(status of syncd's condition or None, the keys of every taint) of a Node."""
    cond = next((c for c in raw["status"].get("conditions") or () if c["type"] == CONDITION),
                None)
    return (None if cond is None else cond["status"],
            [t["key"] for t in raw["spec"].get("taints") or ()])


async def scontrol(box: SlurmSandbox, *args: str) -> None:
    await asyncio.to_thread(box.run, "scontrol", "update", f"NodeName={NODE}", *args)


async def patches(sim_client: SimClient) -> int:
    """PATCH requests the API server got: only syncd sends them in this test (the scenario
    API that plays the cluster is not counted; leader election is off)."""
    return int((await sim_client.stats())["by_verb"].get("PATCH", 0))


def start(box: SlurmSandbox, kubeconfig: Path, redis: Addr, stream: str, tmp: Path) -> Syncd:
    port = new_port()
    cfg = syncd_config(
        tmp / "syncd.yaml", kubeconfig=kubeconfig, slurm_conf=box.conf, state_dir=tmp / "state",
        redis_url=f"redis://{redis.host}:{redis.port}/0", stream=stream, mqtt_host="127.0.0.1",
        mqtt_port=1, mqtt_prefix="unused", identity="mirror", lease="unused", port=port,
        overrides={"policy.mirror": {"enabled": True, "taint": True},
                   "policy.capacity": {"hold_jobs": False},
                   "events.mqtt.enabled": False,
                   "daemon.leader_election.enabled": False})
    return Syncd.start(cfg, port, tmp / "syncd.log", child_env(box.conf))


@pytest.mark.slow
async def test_an_operators_drain_is_mirrored_and_flapping_never_loops(
    box: SlurmSandbox, sim_client: SimClient, sim_kubeconfig: Path, kube_api: client.ApiClient,
    redis_addr: Addr, redis_stream: str, tmp_path: Path,
) -> None:
    for n in box.nodes:
        await asyncio.to_thread(box.run, "scontrol", "update", f"NodeName={n}", "State=RESUME",
                                check=False)
    await sim_client.pool(len(box.nodes))
    await sim_client.set_taints(NODE, [OTHER])
    d = start(box, sim_kubeconfig, redis_addr, redis_stream, tmp_path)
    try:
        await eventually(lambda: d.ready_as(None), within=90, blocking=True, what="syncd ready")
        await eventually(lambda: asyncio.to_thread(
            lambda: all("gpu_avail_8" in features(box, n) for n in box.nodes)),
            within=20, what="the first pass wrote capacity", every=0.2)
        assert await patches(sim_client) == 0  # nothing out of service: nothing mirrored
        slurm_writes = await asyncio.to_thread(d.writes)

        async def state() -> tuple[str | None, list[str]]:
            return marks(await kube_node(kube_api, NODE))

        async def is_marked() -> bool:
            return await state() == ("True", [OTHER["key"], KEY])

        async def is_cleared() -> bool:
            return await state() == ("False", [OTHER["key"]])

        # The operator drains the node in Slurm: syncd's condition and taint appear.
        await scontrol(box, "State=DRAIN", "Reason=fan replacement INC-7")
        await eventually(is_marked, within=2, what="the drain mirrored on the Kubernetes node")
        cond = next(c for c in (await kube_node(kube_api, NODE))["status"]["conditions"]
                    if c["type"] == CONDITION)
        assert cond["reason"] == "SlurmDrain" and "fan replacement INC-7" in cond["message"]
        ready = next(c for c in (await kube_node(kube_api, NODE))["status"]["conditions"]
                     if c["type"] == "Ready")
        assert ready["status"] == "True"  # the kubelet's condition is left alone
        # ...and resumes it: both go away, the other taint stays.
        await scontrol(box, "State=RESUME")
        await eventually(is_cleared, within=2, what="the resume mirrored on the Kubernetes node")

        # A minute of flapping: drain and resume every few seconds.
        before = await patches(sim_client)
        flips = 0
        loop = asyncio.get_running_loop()
        until = loop.time() + FLAP_FOR
        while loop.time() < until:
            drained = flips % 2 == 0
            await scontrol(box, *(("State=DRAIN", f"Reason=flap {flips}") if drained
                                  else ("State=RESUME",)))
            flips += 1
            await asyncio.sleep(FLAP_EVERY)  # pacing the operator, not an assertion
        if flips % 2:
            await scontrol(box, "State=RESUME")
            flips += 1
        await eventually(is_cleared, within=2, what="the last resume mirrored")
        # At rest: several more probes (a full Slurm read and a mirror pass each) write nothing.
        written = await patches(sim_client)
        probes = await asyncio.to_thread(d.metric, "syncd_reconciles_total", trigger="probe")
        await eventually(lambda: asyncio.to_thread(
            lambda: d.metric("syncd_reconciles_total", trigger="probe") >= probes + 5),
            within=30, what="five more probes", every=0.2)
        assert await patches(sim_client) == written, "the mirror wrote at rest"

        events = [e for e in await asyncio.to_thread(stream_events, redis_addr, redis_stream)
                  if e["type"] == "io.syncd.node.mirrored.v1"]
        seen = [(e["time"], e["data"]["slurm"]["state"], e["data"]["condition"],
                 e["data"]["taint"]) for e in events]  # for the failure message
        # Each flip is at most two writes (the condition, the taint); flips inside one probe
        # interval are not seen at all, so fewer is fine, more is a loop.
        mirror_writes = written - before
        assert 0 < mirror_writes <= 2 * flips, (mirror_writes, flips, seen)
        ok = await asyncio.to_thread(d.metric, "syncd_mirror_writes_total", outcome="ok")
        assert ok == written  # syncd's count agrees with the API server's, from the start
        # syncd never writes Slurm for someone else's drain.
        assert await asyncio.to_thread(d.writes) == slurm_writes
        assert await state() == ("False", [OTHER["key"]])
        assert await asyncio.to_thread(d.metric, "syncd_mirrored_nodes") == 0
        for e in events:
            validate_event(e)
        assert {e["subject"] for e in events} == {NODE}
        assert all(e["data"]["outcome"] == "ok" for e in events)
        assert 2 <= len(events) <= flips + 2, seen  # one per flip seen, the 2 before included
    finally:
        d.kill()
        await asyncio.to_thread(box.run, "scontrol", "update", f"NodeName={NODE}",
                                "State=RESUME", check=False)
