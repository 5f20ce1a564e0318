"""A node condition from ``policy.conditions`` end to end: syncd as a real subprocess, the real
Slurm sandbox, the Kubernetes simulator and a real Redis. node-problem-detector's way of saying
"kernel deadlock" (a condition patched onto the Node's status subresource) drains the Slurm
node after ``drain_after`` with the condition's text, scrubbed, in the reason; once the
condition is cleared for ``resume_after`` syncd resumes the node. The events tell the story."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
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

NODE = "gpu003"
# What NPD writes; the message carries characters a Slurm reason must never get unchecked.
DEADLOCK = {"type": "KernelDeadlock", "reason": "DockerHung",
            "message": "task docker:7 blocked for more than 120 seconds; see `dmesg`"}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("conditions-slurm"), nodes=4) as b:
        yield b


def node_line(box: SlurmSandbox, node: str) -> str:
    return str(box.run("scontrol", "-o", "show", "node", node).stdout)


def drained(box: SlurmSandbox, node: str) -> bool:
    state = node_line(box, node).partition("State=")[2].split(" ")[0]
    return "DRAIN" in state


def reason(box: SlurmSandbox, node: str) -> str:
    return node_line(box, node).partition("Reason=")[2].rpartition(" [")[0]



async def set_condition(api: client.ApiClient, node: str, status: str) -> None:
    """What node-problem-detector does: a strategic merge patch of the status subresource."""
    core: Any = client.CoreV1Api(api)
    now = "2026-12-02T00:00:00Z"
    cond = {**DEADLOCK, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": now}
    if status == "False":
        cond.update(reason="KernelHasNoDeadlock", message="kernel has no deadlock")
    await core.patch_node_status(node, {"status": {"conditions": [cond]}})


def start(box: SlurmSandbox, kubeconfig: Path, redis_addr: Addr, stream: str,
          tmp: Path) -> Syncd:
    port = new_port()
    cfg = syncd_config(
        tmp / "syncd.yaml", kubeconfig=kubeconfig, slurm_conf=box.conf, state_dir=tmp / "state",
        redis_url=f"redis://{redis_addr.host}:{redis_addr.port}/0", stream=stream,
        mqtt_host="127.0.0.1", mqtt_port=1, mqtt_prefix="unused", identity="conditions",
        lease="unused", port=port,
        overrides={"policy.conditions": [{"type": "KernelDeadlock", "status": "True",
                                          "cause": "kernel deadlock"}],
                   "policy.drain_after": "3s", "policy.resume_after": "3s",
                   "policy.capacity": {"hold_jobs": False},
                   "events.mqtt.enabled": False,
                   "daemon.leader_election.enabled": False})
    return Syncd.start(cfg, port, tmp / "syncd.log", child_env(box.conf))


@asynccontextmanager
async def synced(box: SlurmSandbox, sim_client: SimClient, kubeconfig: Path, redis_addr: Addr,
                 stream: str, tmp: Path) -> AsyncIterator[Syncd]:
    """syncd running on this module's sandbox, its first pass written on every node."""
    for n in box.nodes:
        await asyncio.to_thread(box.run, "scontrol", "update", f"NodeName={n}", "State=RESUME",
                                check=False)
    await sim_client.pool(len(box.nodes))
    d = start(box, kubeconfig, redis_addr, stream, tmp)
    try:
        await eventually(lambda: d.ready_as(None), within=90, blocking=True, what="syncd ready")
        await eventually(lambda: all("gpu_avail_8" in node_line(box, n) for n in box.nodes),
                         blocking=True, within=20, what="the first pass wrote capacity")
        yield d
    finally:
        d.kill()


@pytest.mark.slow
async def test_a_listed_condition_drains_and_resumes_once_cleared(
    box: SlurmSandbox, sim_client: SimClient, sim_kubeconfig: Path, kube_api: client.ApiClient,
    redis_addr: Addr, redis_stream: str, tmp_path: Path,
) -> None:
    async with synced(box, sim_client, sim_kubeconfig, redis_addr, redis_stream,
                      tmp_path) as d:
        await set_condition(kube_api, NODE, "True")
        await eventually(lambda: drained(box, NODE), blocking=True, within=30,
                         what="the condition drained the node", every=0.2)
        text = await asyncio.to_thread(reason, box, NODE)
        assert text.startswith("syncd: ") and "k8s condition kernel deadlock" in text, text
        assert "DockerHung" in text
        assert "`" not in text and ";" not in text  # the free text was scrubbed
        assert not any(drained(box, n) for n in box.nodes if n != NODE)
        why = d.get(f"/api/v1/why/{NODE}")[1]
        assert any("kernel deadlock" in c for c in why["report"]["causes"]), why

        # Cleared: the node comes back (after resume_after), and only this node moved.
        await set_condition(kube_api, NODE, "False")
        await eventually(lambda: not drained(box, NODE), blocking=True, within=30,
                         what="resumed once the condition cleared", every=0.2)
        assert await asyncio.to_thread(reason, box, NODE) in ("", "(null)", "none")

        def actions() -> list[tuple[str, str]]:
            return [(e["data"]["action"], e["data"]["outcome"])
                    for e in stream_events(redis_addr, redis_stream)
                    if e["type"] == "io.syncd.node.action.v1" and e.get("subject") == NODE
                    and e["data"]["action"] in ("drain", "resume")]
        seen = await eventually(lambda: actions() if len(actions()) >= 2 else None,
                                within=20, what="drain and resume events")
        assert seen == [("drain", "ok"), ("resume", "ok")]
        drain = next(e for e in stream_events(redis_addr, redis_stream)
                     if e["type"] == "io.syncd.node.action.v1" and e["data"]["action"] == "drain")
        assert "kernel deadlock" in drain["data"]["why"]
        for e in stream_events(redis_addr, redis_stream):
            validate_event(e)


@pytest.mark.slow
async def test_a_feature_removed_in_slurm_is_put_back_by_the_probe(
    box: SlurmSandbox, sim_client: SimClient, sim_kubeconfig: Path, redis_addr: Addr,
    redis_stream: str, tmp_path: Path,
) -> None:
    """Slurm-side drift with nothing changing in Kubernetes: the probe (every second here)
    reads Slurm in full, sees the capacity feature gone and writes it back."""
    async with synced(box, sim_client, sim_kubeconfig, redis_addr, redis_stream,
                      tmp_path) as d:
        probes = d.metric("syncd_reconciles_total", trigger="probe")
        changes = d.metric("syncd_reconciles_total", trigger="change")
        await asyncio.to_thread(box.run, "scontrol", "update", "NodeName=gpu002",
                                "AvailableFeatures=gpu", "ActiveFeatures=gpu")
        assert "gpu_avail_8" not in node_line(box, "gpu002")
        await eventually(lambda: "gpu_avail_8" in node_line(box, "gpu002"), blocking=True,
                         within=30, what="the probe put the feature back", every=0.1)
        # The pass counts itself when it ends, after its write: on a busy machine the
        # feature can be back before the count is.
        await eventually(lambda: d.metric("syncd_reconciles_total", trigger="probe") > probes,
                         blocking=True, what="the probe's pass counted")
        assert d.metric("syncd_reconciles_total", trigger="change") == changes
        repairs = [e for e in stream_events(redis_addr, redis_stream)
                   if e["type"] == "io.syncd.node.action.v1" and e.get("subject") == "gpu002"
                   and e["data"]["action"] == "set_features"]
        assert repairs and "gpu_avail_8" in repairs[-1]["data"]["features"]
