"""Shared helpers of the event tests: sample events, readers of what reached the brokers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiomqtt
import pytest
import redis

from syncd.core.model import (
    BaseState,
    DriftEvent,
    EventType,
    KubeNode,
    SlurmNode,
    Taint,
)
from syncd.core.snapshots import kube_json, slurm_json
from syncd.settings.events import EventsSettings, MqttSink, RedisSink
from tests.fixtures.brokers import Addr, PrivateBroker
from tests.fixtures.waiting import eventually


def settings(
    *,
    redis_url: str | None = None,
    stream: str = "syncd:events",
    mqtt: Addr | None = None,
    prefix: str = "syncd",
    **overrides: Any,
) -> EventsSettings:
    """EventsSettings with the sinks given enabled and the others off; fast retries."""
    base = EventsSettings(
        retry_max=overrides.pop("retry_max", 0.5),
        redis=RedisSink(enabled=redis_url is not None, url=redis_url or "redis://x", stream=stream,
                        timeout=overrides.pop("redis_timeout", 2.0)),
        mqtt=MqttSink(enabled=mqtt is not None, host=mqtt.host if mqtt else "127.0.0.1",
                      port=mqtt.port if mqtt else 1883, topic_prefix=prefix,
                      timeout=overrides.pop("mqtt_timeout", 3.0)),
    )
    return replace(base, **overrides)


def kube(name: str, *, ready: bool = True) -> KubeNode:
    return KubeNode(
        name=f"k8s-{name}", slurm_name=name, ready=ready,
        taints=(Taint("nvidia.com/gpu", "NoSchedule", "bad"),),
        gpu_capacity={"nvidia.com/gpu": 8}, gpu_allocatable={"nvidia.com/gpu": 8 if ready else 0},
        gpu_held={"nvidia.com/gpu": 1},
    )


def slurm(name: str) -> SlurmNode:
    return SlurmNode(
        name=name, state=BaseState.MIXED, flags=frozenset({"DRAIN"}), reason="syncd: not ready",
        reason_user="slurm", available_features=("gpu_avail_8",), active_features=("gpu_avail_8",),
        gres_gpus=8, gres_used_gpus=3, hold_gpus=1,
    )


def drift(node: str, i: int = 0) -> DriftEvent:
    data = {
        "kubernetes": kube_json(kube(node, ready=i % 2 == 0)), "slurm": slurm_json(slurm(node)),
        "drift": [{"kind": "not_ready"}], "why": f"drift #{i} of {node}",
    }
    return DriftEvent(EventType.DRIFT, node, data)


def every_type(node: str) -> list[DriftEvent]:
    """One event of every type, with data shaped as the daemon emits it."""
    action = {
        "action": "drain", "why": "not ready for 30s", "reason": "syncd: not ready",
        "features": [], "hold_gpus": 0, "hostlist": node, "outcome": "ok", "error": "",
        "kubernetes": kube_json(kube(node)), "slurm": slurm_json(slurm(node)), "actor": "planner",
    }
    return [
        drift(node),
        DriftEvent(EventType.DRIFT, "", {"kubernetes": None, "slurm": None, "drift": [],
                                         "why": "slurmctld restarted", "boot_time": "2025-01-01"}),
        DriftEvent(EventType.ACTION, node, action),
        DriftEvent(EventType.ACTION_FAILED, node,
                   {**action, "outcome": "failed", "error": "scontrol: timeout",
                    "action": "set_features", "features": ["gpu_avail_4"], "actor": "operator",
                    "kubernetes": None}),
        DriftEvent(EventType.BREAKER, "",
                   {"state": "open", "why": "30% drains", "withheld": [node]}),
        DriftEvent(EventType.SKIP, node, {"why": "bad label", "value": "x", "source": "label a/b"}),
        DriftEvent(EventType.OVERFLOW, "", {"sink": "redis", "dropped": 3, "why": "test"}),
        DriftEvent(EventType.MIRRORED, node, {
            "kubernetes_node": node, "state": "unavailable", "why": "drained by root",
            "condition": {"type": "SlurmNodeUnavailable", "status": "True",
                          "reason": "SlurmDrain", "message": "root: fan"},
            "taint": {"key": "syncd.io/slurm-unavailable", "effect": "NoSchedule",
                      "present": True},
            "outcome": "ok", "error": "", "slurm": slurm_json(slurm(node))}),
    ]


def numbered(count: int, *, start: int = 0, nodes: int = 10) -> list[DriftEvent]:
    """``count`` drift events whose ``why`` carries their number (``n=<i>``)."""
    return [
        DriftEvent(EventType.DRIFT, f"node{i % nodes}",
                   {"kubernetes": None, "slurm": slurm_json(slurm(f"node{i % nodes}")),
                    "drift": [{"kind": "test"}], "why": f"n={i}"})
        for i in range(start, start + count)
    ]


def read_stream(url: str, stream: str) -> list[dict[str, Any]]:
    """Every event on ``stream``, decoded, in stream order (the ``event`` field)."""
    client = redis.Redis.from_url(url)
    try:
        entries: Any = client.xrange(stream)
    finally:
        client.close()
    out = []
    for _entry_id, fields in entries:
        event = json.loads(fields[b"event"])
        assert fields[b"id"].decode() == event["id"]
        assert fields[b"type"].decode() == event["type"]
        assert fields[b"subject"].decode() == event.get("subject", "")
        out.append(event)
    return out


def stream_len(url: str, stream: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.xlen(stream))
    finally:
        client.close()


@dataclass
class MqttCollector:
    """A real MQTT subscriber that records what it receives, reconnecting when the broker dies.

    With ``persistent`` it uses a fixed client id and ``clean_session=False``, so a broker
    that persisted the session queues QoS 1 messages while the collector is away.
    """

    addr: Addr
    topic: str
    persistent: bool = False
    client_id: str = ""
    messages: list[aiomqtt.Message] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    connects: int = 0
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MqttCollector:
        self._task = asyncio.create_task(self._run())
        await eventually(self.subscribed.is_set, what=f"subscription to {self.topic}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.addr.host, self.addr.port, identifier=self.client_id or None,
                    clean_session=False if self.persistent else None, timeout=5,
                ) as client:
                    self.connects += 1
                    await client.subscribe(self.topic, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        self.messages.append(message)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)  # broker away: retry the connection

    def events(self) -> list[dict[str, Any]]:
        """The decoded events received (empty payloads, i.e. cleared retained, left out)."""
        return [json.loads(m.payload) for m in self.messages
                if isinstance(m.payload, bytes) and m.payload]


async def wait_for_session_saved(broker: PrivateBroker, after: float) -> None:
    """Mosquitto saves sessions every second (autosave_interval 1); wait for a save made
    after the subscription, so the SIGKILL cannot take the subscriber's session with it."""
    db = broker.workdir / "mosquitto.db"
    await eventually(lambda: db.exists() and db.stat().st_mtime > after + 0.01,
                     what="mosquitto to persist the subscriber's session")


@pytest.fixture
def reaper() -> Iterator[list[asyncio.subprocess.Process]]:
    """Processes a test started; whichever still runs at teardown (a failed test) is killed."""
    started: list[asyncio.subprocess.Process] = []
    yield started
    for proc in started:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
