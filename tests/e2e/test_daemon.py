"""syncd end to end: a real subprocess, the real Slurm sandbox, the Kubernetes simulator, real
Redis and Mosquitto. The simulator runs in this test's event loop, so every blocking call here
goes through a thread."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import aiomqtt
import pytest

from kubesim.client import SimClient
from kubesim.server import SimServer
from syncd.events.schemas import validate_event
from tests.e2e.kit import (
    Syncd,
    child_env,
    cli,
    new_port,
    outside_address,
    post,
    stream_events,
    syncd_config,
)
from tests.fixtures.brokers import Addr
from tests.fixtures.kube import ADMIN_TOKEN, sim_config
from tests.fixtures.slurm import REST_SINCE, SlurmSandbox, running_sandbox
from tests.fixtures.waiting import WITHIN, eventually

T = TypeVar("T")

NODES = 8


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSandbox]:
    """A sandbox of this module's own: the daemon reconciles every node it sees."""
    with running_sandbox(tmp_path_factory.mktemp("e2e-slurm"), nodes=NODES, rest=True) as b:
        yield b


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[SimServer, SimClient, Path]]:
    server = SimServer(sim_config())
    await server.start()
    async with SimClient(server.url, ADMIN_TOKEN) as c:
        await c.pool(NODES)
        yield server, c, server.write_kubeconfig(tmp_path / "kubeconfig")
    await server.stop()


async def until(check: Callable[[], T | None], *, what: str, within: float = WITHIN) -> T:
    """``eventually`` for a check that runs Slurm's CLI or HTTP: off the loop the simulator
    serves. One reconcile (debounce, then a few scontrol calls) takes well under a second idle;
    the default deadline covers a loaded machine."""
    return await eventually(check, within=within, what=what, blocking=True, every=0.1)


async def ready(d: Syncd, role: str) -> dict[str, Any]:
    # 90 s: a cold start imports syncd, lists Kubernetes, reads Slurm and takes (or waits on)
    # the lease; with every core busy the interpreter start alone can take tens of seconds.
    return await until(lambda: d.ready_as(role), within=90, what=f"syncd ready as {role}")


async def lease(server: SimServer, name: str) -> dict[str, Any]:
    """The spec of Lease ``name`` (namespace default), read through the Kubernetes API."""
    url = f"{server.url}/apis/coordination.k8s.io/v1/namespaces/default/leases/{name}"
    async with aiohttp.ClientSession() as s, s.get(
            url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
        assert r.status == 200, await r.text()
        spec: dict[str, Any] = (await r.json())["spec"]
    return spec


def micro(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def node_fields(box: SlurmSandbox, node: str) -> dict[str, str]:
    line = box.run("scontrol", "-o", "show", "node", node).stdout
    fields: dict[str, str] = {}
    for part in line.split():
        k, sep, v = part.partition("=")
        if sep:
            fields[k] = v
    fields["_line"] = line
    return fields


def features(box: SlurmSandbox, node: str) -> set[str]:
    return set(node_fields(box, node).get("AvailableFeatures", "").split(","))


def drained(box: SlurmSandbox, node: str) -> bool:
    return "DRAIN" in node_fields(box, node).get("State", "")


def holds(box: SlurmSandbox, node: str) -> int:
    out = box.run("squeue", "-h", "-w", node, "-n", "syncd-hold", "-o", "%i").stdout
    return len(out.split())


def reset_nodes(box: SlurmSandbox) -> None:
    """Undo what an earlier test left (drains, holds) so each test starts clean."""
    box.run("scancel", "-n", "syncd-hold", check=False)
    for n in box.nodes:
        if drained(box, n):
            box.run("scontrol", "update", f"NodeName={n}", "State=RESUME", check=False)



def _runbook_cli(d: Syncd, box: SlurmSandbox) -> None:
    env = dict(d.env, SYNCD_URL=d.operator_url)
    st = cli("status", "--output", "json", env=env)
    assert st.returncode in (0, 1), st.stderr
    text = cli("status", env=env)
    assert f"Slurm {box.release}." in text.stdout and " via scontrol" in text.stdout
    rows = {r["name"]: r for r in json.loads(st.stdout)["nodes"]}
    assert rows["gpu001"]["syncd_features"] == ["gpu_avail_5"]
    why = cli("why", "gpu003", env=env)
    assert why.returncode == 0 and "operator: fan replacement" in why.stdout
    assert cli("why", "nosuchnode", env=env).returncode == 1
    refused = cli("resume", "gpu003", env=env)
    assert refused.returncode == 1 and "not by syncd" in refused.stderr
    drained = cli("drain", "gpu007", "--reason", "PSU swap INC-9", "--output", "json", env=env)
    assert drained.returncode == 0, drained.stderr
    assert "syncd: manual, PSU swap INC-9 #" in node_fields(box, "gpu007")["_line"]
    plan = cli("plan", "--output", "json", env=env)
    assert plan.returncode in (0, 1) and "changes" in json.loads(plan.stdout)
    resumed = cli("resume", "gpu007", env=env)
    assert resumed.returncode == 0, resumed.stderr
    br = cli("breaker", "status", "--output", "json", env=env)
    assert br.returncode == 0 and json.loads(br.stdout)["open"] is False
    # The Prolog helper: gpu001 has 5 usable GPUs in Kubernetes.
    assert cli("prolog-check", "--node", "gpu001", "--gpus", "4", env=env).returncode == 0
    short = cli("prolog-check", "--node", "gpu001", "--gpus", "6", env=env)
    assert short.returncode == 1 and "5 GPUs free" in short.stderr
    # Unreachable daemon: exit 3 (prolog fails open unless told otherwise).
    tcp = dict(env, SYNCD_URL=d.url)  # the Prolog's way in: reads over TCP
    assert cli("prolog-check", "--node", "gpu001", "--gpus", "4", env=tcp).returncode == 0
    gone = dict(env, SYNCD_URL="http://127.0.0.1:9")
    assert cli("status", env=gone).returncode == 3
    assert cli("prolog-check", "--node", "gpu001", env=gone).returncode == 0
    assert cli("prolog-check", "--node", "gpu001", "--fail-closed", env=gone).returncode == 1
    # Changes over TCP are refused, from loopback too (no token configured); reads are not.
    for base in (d.url, f"http://{outside_address()}:{d.port}"):
        code, body = post(base + "/api/v1/drain", {"node": "gpu008", "reason": "x"})
        assert code == 403 and "operator socket" in body["error"], (base, body)
    outside = f"http://{outside_address()}:{d.port}"
    assert "DRAIN" not in node_fields(box, "gpu008").get("State", "")
    with urllib.request.urlopen(outside + "/readyz", timeout=5) as r:
        assert r.status == 200


@dataclass
class World:
    """Everything one syncd process needs, shared by the tests of this module."""

    box: SlurmSandbox
    server: SimServer
    sim: SimClient
    kubeconfig: Path
    redis: Addr
    stream: str
    mqtt: Addr
    mqtt_prefix: str
    tmp: Path

    def start(self, identity: str, lease: str,
              overrides: dict[str, Any] | None = None) -> Syncd:
        port = new_port()
        cfg = syncd_config(
            self.tmp / f"syncd-{identity}.yaml", kubeconfig=self.kubeconfig,
            slurm_conf=self.box.conf, state_dir=self.tmp / f"state-{identity}",
            redis_url=f"redis://{self.redis.host}:{self.redis.port}/0", stream=self.stream,
            mqtt_host=self.mqtt.host, mqtt_port=self.mqtt.port, mqtt_prefix=self.mqtt_prefix,
            identity=identity, lease=lease, port=port, overrides=overrides)
        return Syncd.start(cfg, port, self.tmp / f"{identity}.log", child_env(self.box.conf))

    def events(self) -> list[dict[str, Any]]:
        return stream_events(self.redis, self.stream)


@pytest.fixture
async def world(
    box: SlurmSandbox,
    cluster: tuple[SimServer, SimClient, Path],
    redis_addr: Addr,
    redis_stream: str,
    mqtt_addr: Addr,
    mqtt_prefix: str,
    tmp_path: Path,
) -> World:
    server, sim, kubeconfig = cluster
    await asyncio.to_thread(reset_nodes, box)
    return World(box, server, sim, kubeconfig, redis_addr, redis_stream, mqtt_addr, mqtt_prefix,
                 tmp_path)


async def test_a_taken_http_port_is_one_clear_error(world: World) -> None:
    """syncd exits 2 with one line naming the listener when its port is taken (what a port
    picked free and taken meanwhile by another test process looks like); the test kit then
    starts it again on a new port."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        d = world.start("taken", "e2e-taken", {"daemon.listen": f"0.0.0.0:{taken}"})
        try:
            await ready(d, "leader")
            assert d.rebinds == 1 and d.port != taken
            said = [line for line in d.log.read_text().splitlines() if "cannot start" in line]
            assert said == [f"syncd: cannot start: HTTP listener 0.0.0.0:{taken}: [Errno 98] "
                            f"error while attempting to bind on address ('0.0.0.0', {taken}): "
                            "address already in use"]
        finally:
            d.kill()


@pytest.mark.slow
async def test_syncd_reconciles_end_to_end_and_stops_cleanly(world: World) -> None:
    box, sim = world.box, world.sim
    d = world.start("e2e-a", "e2e-single")
    try:
        body = await ready(d, "leader")
        # It says which Slurm it talks to: /readyz, status and the metrics agree.
        version = str(body["slurm_version"])
        assert version.startswith(f"{box.release}.") and body["slurm_backend"] == "scontrol"
        assert await asyncio.to_thread(d.metric, "syncd_slurm_info", version=version,
                                       backend="scontrol") == 1
        await until(lambda: "gpu_avail_8" in features(box, "gpu008"),
                    what="initial capacity features")

        # An operator drains gpu003 by hand: syncd must leave it alone throughout.
        box.run("scontrol", "update", "NodeName=gpu003", "State=DRAIN",
                "Reason=operator: fan replacement")

        # Pods take 3 GPUs on gpu001: features and placeholder holds follow.
        await sim.start_pods([{"name": f"train-{i}", "node": "gpu001", "gpus": 1,
                               "namespace": "ml"} for i in range(3)])
        await until(lambda: "gpu_avail_5" in features(box, "gpu001"), what="gpu_avail_5 on gpu001")
        await until(lambda: holds(box, "gpu001") == 3, what="3 holds on gpu001")

        # gpu002 goes NotReady: drained once drain_after (2 s) has passed. That it waits exactly
        # drain_after is the planner's promise, tested on a fake clock in tests/unit.
        await sim.set_ready("gpu002", False)
        await until(lambda: drained(box, "gpu002"), what="gpu002 drained")
        reason = node_fields(box, "gpu002")["_line"]
        assert "syncd: k8s node NotReady #" in reason

        # It recovers: resumed after resume_after (2 s).
        await sim.set_ready("gpu002", True)
        await until(lambda: not drained(box, "gpu002"), what="gpu002 resumed")

        # The operator's drain is untouched.
        f3 = await asyncio.to_thread(node_fields, box, "gpu003")
        assert "DRAIN" in f3["State"] and "operator: fan replacement" in f3["_line"]

        # The runbook API sees the same picture.
        status, st = await asyncio.to_thread(d.get, "/api/v1/status")
        assert status == 200
        rows = {r["name"]: r for r in st["nodes"]}
        assert st["summary"]["slurm_version"] == version
        assert rows["gpu001"]["gpus"] == {"allocatable": 8, "held": 3, "usable": 5}
        assert rows["gpu003"]["owner"] not in ("", "syncd")

        # The runbook CLI, as on-call runs it.
        await asyncio.to_thread(_runbook_cli, d, box)

        # Events: on the Redis stream in order, each valid against the schema.
        def have_resume() -> list[dict[str, Any]] | None:
            evs = world.events()
            ok = any(e["type"] == "io.syncd.node.action.v1" and e["subject"] == "gpu002"
                     and e["data"]["action"] == "resume" for e in evs)
            return evs if ok else None

        events = await until(have_resume, what="resume event on Redis")
        for e in events:
            validate_event(e)
        seqs = [int(e["sequence"]) for e in events]
        assert seqs == sorted(seqs)
        kinds = [(e["subject"], e["data"].get("action")) for e in events
                 if e["type"] == "io.syncd.node.action.v1"]
        assert kinds.index(("gpu002", "drain")) < kinds.index(("gpu002", "resume"))
        assert not any(s == "gpu003" and a in ("drain", "resume") for s, a in kinds)

        # MQTT carries the retained per-node state.
        async with aiomqtt.Client(world.mqtt.host, world.mqtt.port) as m:
            await m.subscribe(f"{world.mqtt_prefix}/nodes/gpu002")
            msg = await asyncio.wait_for(anext(aiter(m.messages)), 30)  # retained: at once
            assert msg.retain and json.loads(bytes(msg.payload))["subject"] == "gpu002"

        # The counters the components keep are exported, without node names as labels.
        assert await asyncio.to_thread(d.metric, "syncd_outbox_delivered", sink="redis") > 0
        assert await asyncio.to_thread(d.metric, "syncd_outbox_dropped", sink="mqtt") == 0
        assert await asyncio.to_thread(d.metric, "syncd_actions_total", kind="drain") >= 1
        _, metrics_text = await asyncio.to_thread(d.get, "/metrics")
        assert "gpu00" not in str(metrics_text)

        # slurmctld restarts and resets features to slurm.conf: syncd notices and re-asserts.
        await asyncio.to_thread(box.ctld_stop)
        await asyncio.to_thread(box.ctld_start)
        await until(lambda: "gpu_avail_5" in features(box, "gpu001"),
                    what="features re-asserted after a slurmctld restart")

        # SIGTERM: clean exit, the spool flushed, the lease released.
        d.signal(signal.SIGTERM)
        code = await asyncio.to_thread(d.wait, 60.0)  # flushes the spool, releases the lease
        assert code == 0, d.tail()
        stopped = [r for r in d.logs() if r.get("msg") == "stopped"]
        assert stopped and stopped[-1]["outbox_flushed"] is True, d.tail()
        assert all(v == 0 for v in stopped[-1]["backlog"].values())
    finally:
        d.kill()


async def test_the_daemon_on_slurmrestd(world: World) -> None:
    """``slurm.backend: rest``: features, holds (submitted and cancelled through REST) and the
    release it names; 22.05's slurmrestd (v0.0.38, no node update) is refused in one line."""
    box, sim = world.box, world.sim
    rest = {"url": box.rest_url, "token_file": box.rest_token_file(), "user": "root"}

    async def refused(rest: dict[str, str]) -> str:
        """syncd's stderr when it refuses to start (exit 2): one clean line, nothing left open."""
        cfg = syncd_config(
            world.tmp / "rest.yaml", kubeconfig=world.kubeconfig, slurm_conf=box.conf,
            state_dir=world.tmp / "state-rest", redis_url=f"redis://{world.redis.host}:"
            f"{world.redis.port}/0", stream=world.stream, mqtt_host=world.mqtt.host,
            mqtt_port=world.mqtt.port, mqtt_prefix=world.mqtt_prefix, identity="rest",
            lease="e2e-rest", port=new_port(),
            overrides={"slurm.backend": "rest", "slurm.rest": rest,
                       "slurm.startup_wait": "5s"})
        r = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "syncd", "run", "--config", str(cfg)],
            capture_output=True, text=True, timeout=120, check=False,
            env=child_env(box.conf))
        assert r.returncode == 2, r.stderr[-2000:]
        assert "Traceback" not in r.stderr and "Unclosed" not in r.stderr, r.stderr[-2000:]
        return r.stderr

    if box.version < REST_SINCE:
        assert "Slurm backend: slurmrestd offers only v0.0.38" in await refused(rest)
        return
    # A token for a user slurmctld does not let update nodes: the self-test stops syncd.
    nobody = world.tmp / "nobody.jwt"
    nobody.write_text(box.run("scontrol", "token", "username=nobody").stdout)
    err = await refused({**rest, "token_file": str(nobody), "user": ""})
    assert "Slurm self-test: rights: slurmctld refuses node updates from token user nobody" \
        in err, err
    # No Slurm client and no slurm.conf: every call goes through slurmrestd.
    d = world.start("e2e-rest", "e2e-rest", {"slurm.backend": "rest", "slurm.rest": rest,
                                             "slurm.bin_dir": "/nonexistent",
                                             "slurm.conf": "/nonexistent/slurm.conf"})
    try:
        body = await ready(d, "leader")
        assert body["slurm_backend"] == "rest"
        version = str(body["slurm_version"])
        assert version.startswith(f"{box.release}.")
        assert body["selftest_ok"], body["checks"]
        assert await asyncio.to_thread(d.metric, "syncd_slurm_info", version=version,
                                       backend="rest") == 1
        env = dict(d.env, SYNCD_URL=d.operator_url)
        text = await asyncio.to_thread(cli, "status", env=env)
        assert f"Slurm {version} via rest" in text.stdout, text.stdout + text.stderr
        # NotReady: drained through REST, resumed, and the reason blanked (24.11 keeps it).
        await sim.set_ready("gpu006", False)
        await until(lambda: drained(box, "gpu006"), what="gpu006 drained through REST")
        assert "syncd: k8s node NotReady #" in node_fields(box, "gpu006")["_line"]
        await sim.set_ready("gpu006", True)
        await until(lambda: not drained(box, "gpu006"), what="gpu006 resumed through REST")
        await until(lambda: "syncd" not in node_fields(box, "gpu006")["_line"],
                    what="gpu006's reason blanked")
        await sim.start_pods([{"name": f"infer-{i}", "node": "gpu004", "gpus": 1,
                               "namespace": "ml"} for i in range(2)])
        await until(lambda: "gpu_avail_6" in features(box, "gpu004"),
                    what="gpu_avail_6 on gpu004 through REST")
        await until(lambda: holds(box, "gpu004") == 2, what="2 holds via REST")
        await sim.remove_pod("ml", "infer-0")
        await until(lambda: holds(box, "gpu004") == 1, what="a hold cancelled")
        await sim.remove_pod("ml", "infer-1")
        await until(lambda: holds(box, "gpu004") == 0, what="no holds left")

        d.signal(signal.SIGTERM)  # clean stop: the HTTP session to slurmrestd closed too
        code = await asyncio.to_thread(d.wait, 60.0)
        assert code == 0, d.tail()
        assert "Unclosed" not in d.tail(400), d.tail()
    finally:
        d.kill()


@pytest.mark.slow
async def test_leader_election_single_writer_and_takeover(world: World) -> None:
    box, sim = world.box, world.sim
    a = world.start("replica-a", "e2e-ha")
    b: Syncd | None = None
    try:
        await ready(a, "leader")
        b = world.start("replica-b", "e2e-ha")
        await ready(b, "standby")

        refused = await asyncio.to_thread(
            cli, "drain", "gpu004", "--reason", "x", env=dict(b.env, SYNCD_URL=b.operator_url))
        assert refused.returncode == 1 and "the leader is replica-a" in refused.stderr

        standby = b
        planned = await asyncio.to_thread(standby.metric, "syncd_reconciles_total",
                                          trigger="change")
        await sim.start_pods([{"name": "p4", "node": "gpu004", "gpus": 2, "namespace": "ml"}])
        await until(lambda: "gpu_avail_6" in features(box, "gpu004"), what="leader writes gpu004")
        # The standby plans every change too (its timers must be current at a takeover): once
        # it has planned the pod's change, a standby that wrote would have written by now.
        await until(lambda: standby.metric("syncd_reconciles_total", trigger="change") > planned,
                    what="the standby to plan the change")
        assert await asyncio.to_thread(a.writes) > 0
        assert await asyncio.to_thread(b.writes) == 0, "the standby wrote to Slurm"

        a.kill()  # SIGKILL: no lease release, the standby must wait for expiry
        left = await lease(world.server, "e2e-ha")
        assert left["holderIdentity"] == "replica-a"
        await ready(b, "leader")
        taken = await lease(world.server, "e2e-ha")
        assert taken["holderIdentity"] == "replica-b"
        assert taken["leaseTransitions"] == left["leaseTransitions"] + 1
        # Taken only after the lease expired (renewTime + leaseDurationSeconds of a's last
        # renewal); both times are written by the replicas, on this machine's clock.
        assert micro(taken["acquireTime"]) >= (micro(left["renewTime"])
                                               + left["leaseDurationSeconds"]), (left, taken)

        await sim.start_pods([{"name": "p5", "node": "gpu005", "gpus": 3, "namespace": "ml"}])
        await until(lambda: "gpu_avail_5" in features(box, "gpu005"),
                    what="new leader writes gpu005")
        assert await asyncio.to_thread(b.writes) > 0
        def sources() -> set[str]:
            return {e["source"] for e in world.events()
                    if e["type"] == "io.syncd.node.action.v1" and e["subject"] == "gpu005"
                    and "gpu_avail_5" in e["data"]["features"]}
        # the event reaches Redis after the write reaches Slurm (the outbox delivers it)
        assert await until(sources, what="the new leader's event on Redis") == {
            "syncd://e2e/replica-b"}
    finally:
        a.kill()
        if b is not None:
            b.kill()


# Runs as another user with the system Python (the test venv lives under /root): one POST
# to the operator socket, printing the status and the body.
_AS_OTHER = """
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sys.argv[1])
c = C("localhost", timeout=10)
c.request("POST", sys.argv[2], body=sys.argv[3], headers={"Content-Type": "application/json"})
r = c.getresponse(); print(r.status, r.read().decode())
"""


def _reachable_dir() -> Path:
    """A directory other users can pass through: outside pytest's tmp tree, since another
    pytest session on the host resets /tmp/pytest-of-root to 0700 when it starts."""
    run_dir = Path(tempfile.mkdtemp(prefix="syncd-auth-", dir="/tmp"))
    run_dir.chmod(0o711)
    return run_dir


async def test_operator_api_lets_in_root_only_and_refuses_web_pages(
    world: World, tmp_path: Path
) -> None:
    run_dir = _reachable_dir()
    sock = run_dir / "operator.sock"
    d = world.start("auth", "e2e-auth", {"daemon.operator_socket": str(sock),
                                          "daemon.operator_socket_group": "nogroup",
                                          "daemon.leader_election.enabled": False})
    try:
        await until(lambda: d.ready_as(None), within=90, what="syncd ready")
        box = world.box
        for path, body in (("/api/v1/drain", {"node": "gpu006", "reason": "x"}),
                           ("/api/v1/resume", {"node": "gpu005", "force": True}),
                           ("/api/v1/breaker/reset", {})):
            if path.endswith("resume"):
                box.run("scontrol", "update", "NodeName=gpu005", "State=DRAIN",
                        "Reason=bad HBM, do not resume")
            out = await asyncio.to_thread(
                subprocess.run, ["/usr/bin/python3", "-c", _AS_OTHER, str(sock), path,
                                 json.dumps(body)],
                user="nobody", group="nogroup", capture_output=True, text=True, timeout=30)
            assert out.stdout.startswith("403 ") and "uid 65534 may not" in out.stdout, out
        assert "DRAIN" not in node_fields(box, "gpu006").get("State", "")
        assert "bad HBM" in node_fields(box, "gpu005")["_line"]
        # A browser's cross-site form post: text/plain, with an Origin.
        req = urllib.request.Request(
            d.url + "/api/v1/drain", data=b'{"node":"gpu006","reason":"x"}', method="POST",
            headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
        with pytest.raises(urllib.error.HTTPError) as err:
            await asyncio.to_thread(urllib.request.urlopen, req, timeout=5)
        assert err.value.code == 403
        # As root over the socket the same requests work, and say who asked.
        env = dict(d.env, SYNCD_URL=f"unix:{sock}")
        ok = await asyncio.to_thread(cli, "drain", "gpu006", "--reason", "fan", env=env)
        assert ok.returncode == 0, ok.stderr
        forced = await asyncio.to_thread(cli, "resume", "gpu005", "--force", env=env)
        assert forced.returncode == 0, forced.stderr
        mine = [e for e in world.events() if e["type"] == "io.syncd.node.action.v1"
                and e["data"]["actor"] == "operator"]
        assert {e["subject"] for e in mine} == {"gpu005", "gpu006"}
        assert all(e["data"]["requested_by"] == "uid=0(root) via socket" for e in mine)
    finally:
        d.kill()
        box.run("scontrol", "update", "NodeName=gpu005,gpu006", "State=RESUME", check=False)
        shutil.rmtree(run_dir, ignore_errors=True)


def open_intents(spool: Path) -> int:
    """Intents a daemon has written ahead and not settled yet, read from its spool."""
    if not spool.exists():
        return 0
    db = sqlite3.connect(spool, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM intents").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        db.close()


#: Timed kills land anywhere in the pass; the "intent" round kills while an intent is open (its
#: call waits 2 s for the rate limiter), so one kill always falls between an intent and its
#: outcome, however loaded the machine. Each round is a test of its own, so they run in parallel.
KILL_AT: tuple[float | str, ...] = (0.0, 0.3, 0.6, 0.9, 1.5, 4.0, "intent")


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", KILL_AT, ids=str)
async def test_kill_9_at_any_stage_of_a_mass_drain_loses_no_action_event(
    world: World, kill_at: float | str
) -> None:
    """Write-ahead events: the daemon is SIGKILLed at some point of a 4-node drain (before,
    between or after its Slurm calls: one node per call, 2 calls a second at most); after a
    restart every drain in Slurm has its action event on Redis."""
    box, sim = world.box, world.sim
    victims = ["gpu001", "gpu002", "gpu003", "gpu004"]
    slow = {"policy.batch_size": 1, "slurm.calls_per_second": 2.0, "slurm.burst": 1,
            "daemon.leader_election.enabled": False, "policy.resume_after": "1s"}
    rates = {"slurm.calls_per_second": 0.5} if kill_at == "intent" else {}
    d = world.start("crash", "e2e-crash", {**slow, **rates})
    try:
        await until(functools.partial(d.ready_as, None), within=90, what="syncd ready")
        for n in victims:
            await sim.cordon(n)
        if isinstance(kill_at, float):
            await asyncio.sleep(kill_at)  # the kill lands somewhere in the pass
        else:
            spool = world.tmp / "state-crash" / "spool" / "outbox.sqlite"
            await until(functools.partial(open_intents, spool), within=40,
                        what="an open intent")
    finally:
        d.kill()
    again = world.start("crash", "e2e-crash", slow)  # same state dir and spool
    try:
        await until(functools.partial(again.ready_as, None), within=90,
                    what="syncd ready again")

        def announced() -> bool:
            mine = {n for n in victims
                    if "syncd: k8s node cordoned #" in node_fields(box, n).get("_line", "")}
            seen = {e["subject"] for e in world.events()
                    if e["type"] == "io.syncd.node.action.v1"
                    and e["data"]["action"] == "drain"
                    and e["data"]["outcome"] in ("ok", "recovered")}
            return mine == set(victims) and mine <= seen
        await until(announced, within=40, what=f"every drain announced (kill at {kill_at})")
    finally:
        again.kill()
    events = world.events()
    for e in events:
        validate_event(e)
    if kill_at == "intent":
        # the kill fell between an intent and its outcome: resolved at the restart as
        # recovered, or not_applied and then drained again
        assert any(e["type"] == "io.syncd.node.action.v1"
                   and e["data"]["outcome"] in ("recovered", "not_applied") for e in events)
