"""syncd in a Slinky-shaped world, end to end: a real syncd process in pod mode, the real Slurm
sandbox, and the simulator serving slurmd pods named the way Slinky's NodeSet controller names
them (StatefulSet, template hostname ``gpu`` and ordinal padding 3, so pod ``slinky-001`` is
Slurm node ``gpu001``), bound to Kubernetes nodes whose names have nothing to do with Slurm's.

Bar (issue 11): capacity lands on the right Slurm nodes; a NotReady Kubernetes node drains
exactly the Slurm node of its slurmd pod; no Slinky node is drained at start; the cordon switch
works both ways."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import hostlist
import pytest

from kubesim.client import SimClient
from kubesim.server import SimServer
from tests.e2e.kit import Syncd, child_env, cli, new_port, syncd_config
from tests.e2e.test_daemon import drained, features, holds, node_fields, until
from tests.fixtures.brokers import Addr
from tests.fixtures.kube import ADMIN_TOKEN, sim_config
from tests.fixtures.slurm import SlurmSandbox, running_sandbox
from tests.fixtures.waiting import eventually

NODES = 8
# gpu001 on k8s-8, gpu002 on k8s-7, ... : Slurm and Kubernetes order disagree on purpose.
K8S = {f"gpu{i:03d}": f"k8s-{NODES + 1 - i}" for i in range(1, NODES)}
PENDING = "gpu008"  # its slurmd pod is not scheduled yet


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("slinky-slurm"), nodes=NODES) as b:
        yield b


@pytest.fixture
async def world(box: SlurmSandbox, tmp_path: Path) -> AsyncIterator[tuple[SimClient, Path]]:
    await asyncio.to_thread(_reset, box)
    server = SimServer(sim_config())
    await server.start()
    async with SimClient(server.url, ADMIN_TOKEN) as sim:
        await sim.pool(NODES, prefix="k8s-", digits=1)
        pods = await sim.nodeset("slinky", [*K8S.values(), None], hostname="gpu", padding=3,
                                 start=1)
        assert [p.slurm_name for p in pods] == [*K8S, PENDING]
        yield sim, server.write_kubeconfig(tmp_path / "kubeconfig")
    await server.stop()


def _reset(box: SlurmSandbox) -> None:
    box.run("scancel", "-n", "syncd-hold", check=False)
    for n in box.nodes:
        box.run("scontrol", "update", f"NodeName={n}", "AvailableFeatures=gpu",
                "ActiveFeatures=gpu", check=False)
        if drained(box, n):
            box.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)


def _start(box: SlurmSandbox, kubeconfig: Path, tmp: Path, redis: Addr, stream: str,
           mqtt: Addr, prefix: str, name: str, **policy: Any) -> Syncd:
    port = new_port()
    cfg = syncd_config(
        tmp / f"{name}.yaml", kubeconfig=kubeconfig, slurm_conf=box.conf,
        state_dir=tmp / f"state-{name}", redis_url=f"redis://{redis.host}:{redis.port}/0",
        stream=stream, mqtt_host=mqtt.host, mqtt_port=mqtt.port, mqtt_prefix=prefix,
        identity=name, lease=name, port=port, overrides={
            "kubernetes.name_mapping": {"mode": "pod"},
            "policy.breaker": {"max_drain_percent": 50.0},  # 4 of 8 per window
            "daemon.leader_election.enabled": False,
            **{f"policy.{k}": v for k, v in policy.items()}})
    return Syncd.start(cfg, port, tmp / f"{name}.log", child_env(box.conf))


def _drains(d: Syncd) -> list[str]:
    """Nodes syncd drained since it started, from its own log of the writes it made."""
    return sorted({n for r in d.logs() if r.get("action") in ("drain", "down")
                   and r.get("outcome") and "node" in r
                   for n in hostlist.expand_hostlist(str(r["node"]))})


def _why(d: Syncd, node: str) -> dict[str, Any]:
    r = cli("why", node, "--output", "json", env=dict(d.env, SYNCD_URL=d.operator_url))
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


@pytest.mark.slow
async def test_syncd_in_pod_mode_on_a_slinky_cluster(
    box: SlurmSandbox, world: tuple[SimClient, Path], tmp_path: Path, redis_addr: Addr,
    redis_stream: str, mqtt_addr: Addr, mqtt_prefix: str,
) -> None:
    sim, kubeconfig = world
    d = _start(box, kubeconfig, tmp_path, redis_addr, redis_stream, mqtt_addr, mqtt_prefix,
               "slinky")
    try:
        ready = await eventually(d.ready_as, within=60, blocking=True, what="syncd ready")
        assert ready["selftest_ok"] is True
        assert "slurmctld accepts node updates from uid 0" in ready["checks"]["selftest"]

        # Capacity on the right Slurm nodes: every mapped one, none for the Pending pod.
        await until(lambda: all("gpu_avail_8" in features(box, n) for n in K8S), within=20,
                    what="gpu_avail_8 on every Slurm node with a bound slurmd pod")
        await sim.start_pods([{"name": f"train-{i}", "node": K8S["gpu001"], "gpus": 1,
                               "namespace": "ml"} for i in range(3)])
        await until(lambda: "gpu_avail_5" in features(box, "gpu001"), within=15,
                    what="gpu_avail_5 on gpu001 (pods on k8s-8)")
        await until(lambda: holds(box, "gpu001") == 3, within=15, what="3 holds on gpu001")
        assert all("gpu_avail_8" in features(box, n) for n in K8S if n != "gpu001")
        assert features(box, PENDING) == {"gpu"} and holds(box, "gpu008") == 0

        # No drain at start, not even for the Slurm node whose slurmd pod is Pending, and
        # why says what syncd sees instead.
        assert not any(drained(box, n) for n in box.nodes) and _drains(d) == []
        pending = _why(d, PENDING)["report"]
        assert pending["kubernetes"] == "missing" and pending["causes"] == []
        assert any("leaves it as it is" in n for n in pending["notes"])
        assert "slurmd pod slurm/slinky-008 is Pending, not scheduled to a node yet" in (
            pending["notes"])

        # A NotReady Kubernetes node drains exactly the Slurm node of its slurmd pod.
        await sim.set_ready(K8S["gpu003"], False)
        await until(lambda: drained(box, "gpu003"), within=15, what="gpu003 drained")
        assert "syncd: k8s node NotReady #" in node_fields(box, "gpu003")["_line"]
        assert [n for n in box.nodes if drained(box, n)] == ["gpu003"]
        await sim.set_ready(K8S["gpu003"], True)
        await until(lambda: not drained(box, "gpu003"), within=20, what="gpu003 resumed")

        # The cordon is syncd's by default: drained on cordon, resumed on uncordon.
        await sim.cordon(K8S["gpu002"])
        await until(lambda: drained(box, "gpu002"), within=15, what="gpu002 drained")
        assert "syncd: k8s node cordoned #" in node_fields(box, "gpu002")["_line"]
        await sim.cordon(K8S["gpu002"], False)
        await until(lambda: not drained(box, "gpu002"), within=20, what="gpu002 resumed")
        assert _drains(d) == ["gpu002", "gpu003"]

        status = cli("status", env=dict(d.env, SYNCD_URL=d.operator_url))
        assert "selftest: ok: slurmctld" in status.stdout, status.stdout
        d.signal(signal.SIGTERM)
        assert await asyncio.to_thread(d.wait, 30.0) == 0, d.tail()
    finally:
        d.kill()


async def test_the_cordon_left_to_slurm_operator(
    box: SlurmSandbox, world: tuple[SimClient, Path], tmp_path: Path, redis_addr: Addr,
    redis_stream: str, mqtt_addr: Addr, mqtt_prefix: str,
) -> None:
    sim, kubeconfig = world
    d = _start(box, kubeconfig, tmp_path, redis_addr, redis_stream, mqtt_addr, mqtt_prefix,
               "operator", cordon="slurm-operator")
    try:
        await eventually(d.ready_as, within=60, blocking=True, what="syncd ready")
        await until(lambda: "gpu_avail_8" in features(box, "gpu004"), within=20,
                    what="first pass done")
        # Cordoned: syncd plans nothing for it, and says why.
        await sim.cordon(K8S["gpu004"])
        await until(lambda: "SchedulingDisabled" in _why(d, "gpu004")["report"]["kubernetes"],
                    within=15, what="syncd sees the cordon")
        why = _why(d, "gpu004")
        assert why["planned"] == [] and why["withheld"] == []
        assert any("the cordon is slurm-operator's" in n for n in why["report"]["notes"])
        # slurm-operator drains it (its prefix), and later undrains it: syncd touches neither.
        box.run("scontrol", "update", "NodeName=gpu004", "State=DRAIN",
                "Reason=slurm-operator: Node (k8s-5) was cordoned, Pod (slurm/slinky-004) "
                "must be cordoned")
        await until(lambda: _why(d, "gpu004")["report"]["owner"].startswith("slurm-operator"),
                    within=15, what="slurm-operator's drain recognised")
        await sim.cordon(K8S["gpu004"], False)
        await until(lambda: "SchedulingDisabled" not in
                    _why(d, "gpu004")["report"]["kubernetes"], within=15, what="uncordon seen")
        assert _why(d, "gpu004")["planned"] == [] and drained(box, "gpu004")
        box.run("scontrol", "update", "NodeName=gpu004", "State=UNDRAIN")

        # syncd's own drain (NotReady) on a node that stays cordoned is not resumed...
        await sim.cordon(K8S["gpu005"])
        await sim.set_ready(K8S["gpu005"], False)
        await until(lambda: drained(box, "gpu005"), within=15, what="gpu005 drained")
        assert "syncd: k8s node NotReady #" in node_fields(box, "gpu005")["_line"]
        await sim.set_ready(K8S["gpu005"], True)
        await until(lambda: _why(d, "gpu005")["report"]["kubernetes"] ==
                    "Ready,SchedulingDisabled", within=15, what="Ready again, still cordoned")
        why = _why(d, "gpu005")
        assert why["planned"] == [] and why["report"]["timers"] == [] and drained(box, "gpu005")
        # ... until the cordon is lifted.
        await sim.cordon(K8S["gpu005"], False)
        await until(lambda: not drained(box, "gpu005"), within=20, what="gpu005 resumed")
        assert _drains(d) == ["gpu005"]
    finally:
        d.kill()
