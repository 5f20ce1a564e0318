"""The outbox against the real Redis and Mosquitto: order, schema, retained state, bounds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import aiomqtt

from syncd.core.model import DriftEvent, EventType
from syncd.events import Outbox, SpooledEvent, make_sinks, validate_event
from syncd.events.mqtt_sink import json_arrays
from syncd.settings.events import EventsSettings
from tests.events.helpers import (
    MqttCollector,
    drift,
    every_type,
    numbered,
    read_stream,
    settings,
    stream_len,
    wait_for_session_saved,
)
from tests.fixtures.brokers import Addr, PrivateBroker
from tests.fixtures.waiting import eventually


@asynccontextmanager
async def running(
    cfg: EventsSettings,
    spool: Path,
    *,
    clock: Callable[[], float] | None = None,
    flush_timeout: float = 5.0,
) -> AsyncIterator[Outbox]:
    extra = {"clock": clock} if clock else {}
    outbox = Outbox(cfg, cluster="c1", instance="syncd-0", spool_dir=spool,
                    sinks=make_sinks(cfg, client_id=f"syncd-{spool.parent.name}"), **extra)
    task = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        await outbox.aclose(flush_timeout=flush_timeout)
        await task


async def test_events_reach_both_sinks_in_order_and_validate(
    redis_addr: Addr, redis_stream: str, mqtt_addr: Addr, mqtt_prefix: str, tmp_path: Path
) -> None:
    cfg = settings(redis_url=redis_addr.redis_url, stream=redis_stream, mqtt=mqtt_addr,
                   prefix=mqtt_prefix, batch_size=7)
    published = every_type("gpu-01") + numbered(200)
    async with (
        MqttCollector(mqtt_addr, f"{mqtt_prefix}/events") as sub,
        running(cfg, tmp_path / "spool") as outbox,
    ):
        if True:
            outbox.publish(published[:50])
            outbox.publish(published[50:])
            assert await outbox.flush(timeout=20)
            assert outbox.backlog() == {"redis": 0, "mqtt": 0}
            stats = outbox.stats()
            assert stats["redis"].delivered == stats["mqtt"].delivered == len(published)
            await eventually(lambda: len(sub.messages) >= len(published),
                             what="MQTT subscriber to get every event")

    on_redis = read_stream(redis_addr.redis_url, redis_stream)
    on_mqtt = sub.events()
    for received in (on_redis, on_mqtt):
        assert [e["type"] for e in received] == [str(e.type) for e in published]
        assert [e["data"] for e in received] == [json.loads(json.dumps(dict(e.data)))
                                                 for e in published]
        sequences = [int(e["sequence"]) for e in received]
        assert sequences == list(range(1, len(published) + 1))
        for event in received:
            validate_event(event)
            assert event["source"] == "syncd://c1/syncd-0"
    assert [e["id"] for e in on_redis] == [e["id"] for e in on_mqtt]
    assert len({e["id"] for e in on_redis}) == len(published)
    cluster_wide = [e for e in on_redis if e["type"] == EventType.BREAKER]
    assert cluster_wide
    assert "subject" not in cluster_wide[0]


async def test_the_batches_stream_carries_every_event_in_order_within_its_size(
    private_redis: PrivateBroker, mqtt_addr: Addr, mqtt_prefix: str, tmp_path: Path
) -> None:
    """``mqtt.stream: batches``: JSON arrays of the events, in order, each within
    ``batch_bytes``, nothing on ``<prefix>/events``; retained node states as before."""
    cfg = settings(redis_url=private_redis.url, stream="s", mqtt=mqtt_addr, prefix=mqtt_prefix,
                   batch_size=50)
    cfg = replace(cfg, mqtt=replace(cfg.mqtt, stream="batches", batch_bytes=4096))
    published = numbered(400)
    async with (
        MqttCollector(mqtt_addr, f"{mqtt_prefix}/batches") as batches,
        MqttCollector(mqtt_addr, f"{mqtt_prefix}/events") as single,
        MqttCollector(mqtt_addr, f"{mqtt_prefix}/nodes/+") as states,
        running(cfg, tmp_path / "spool") as outbox,
    ):
        outbox.publish(published[:150])
        assert await outbox.flush(timeout=20)
        outbox.publish(published[150:])
        assert await outbox.flush(timeout=20)
        await eventually(lambda: sum(len(json.loads(m.payload)) for m in batches.messages
                                     if isinstance(m.payload, bytes)) >= len(published),
                         what="every event in a batch message")
        await eventually(lambda: len({m.topic.value for m in states.messages}) == 10,
                         what="a retained state per node")
    sizes = [len(m.payload) for m in batches.messages if isinstance(m.payload, bytes)]
    assert max(sizes) <= 4096 and 400 // 50 < len(sizes) < 400  # split, and batched
    got = [e for m in batches.messages if isinstance(m.payload, bytes)
           for e in json.loads(m.payload)]
    for event in got:
        validate_event(event)
    assert [int(e["sequence"]) for e in got] == list(range(1, len(published) + 1))
    assert [e["data"]["why"] for e in got] == [e.data["why"] for e in published]
    assert single.messages == []


async def _through_an_outage(broker: PrivateBroker, spool: Path, topic: str, stream: str,
                             published: list[DriftEvent]) -> MqttCollector:
    """``published`` while ``broker`` is down, then delivered once it is back: what a
    persistent subscriber of ``topic`` received (batches of 40)."""
    cfg = settings(mqtt=broker.addr, prefix="syncd", batch_size=40)
    cfg = replace(cfg, mqtt=replace(cfg.mqtt, stream=stream))
    async with (
        MqttCollector(broker.addr, topic, persistent=True, client_id="outage-sub") as sub,
        running(cfg, spool) as outbox,
    ):
        await wait_for_session_saved(broker, after=time.time())
        broker.kill()
        outbox.publish(published)
        await outbox.durable()
        await eventually(lambda: outbox.stats()["mqtt"].failed > 0, what="a failed delivery")
        broker.start()
        assert await outbox.flush(timeout=30)
        # the newest message went out last: once it is here, everything is
        last = json.dumps(published[-1].data["why"])
        await eventually(lambda: any(isinstance(m.payload, bytes) and last in m.payload.decode()
                                     for m in sub.messages), within=30, what="the last event")
    return sub


async def test_the_batches_stream_loses_nothing_across_a_broker_outage(
    private_mosquitto: PrivateBroker, tmp_path: Path
) -> None:
    sub = await _through_an_outage(private_mosquitto, tmp_path / "spool", "syncd/batches",
                                   "batches", numbered(300))
    sequences = [int(e["sequence"]) for m in sub.messages if isinstance(m.payload, bytes)
                 for e in json.loads(m.payload)]
    assert list(dict.fromkeys(sequences)) == list(range(1, 301))  # a repeat keeps its place


async def test_a_backlog_publishes_each_nodes_retained_state_once(
    private_mosquitto: PrivateBroker, tmp_path: Path
) -> None:
    """300 events of 10 nodes wait while the broker is down; once it is back they go out in
    8 batches, but each node's retained state only from the batch with its newest event."""
    published = numbered(300)
    states = await _through_an_outage(private_mosquitto, tmp_path / "spool", "syncd/nodes/+",
                                      "events", published)
    newest = {e.subject: e.data["why"] for e in published}
    got = {m.topic.value: json.loads(m.payload)["data"]["why"] for m in states.messages
           if isinstance(m.payload, bytes)}
    assert got == {f"syncd/nodes/{n}": why for n, why in newest.items()}
    assert len(states.messages) <= 2 * len(newest)  # one per node (a resend may repeat one)


def test_a_batch_splits_before_it_outgrows_its_limit_and_a_big_event_goes_alone() -> None:
    rows = [SpooledEvent(i, f"id{i}", "t", "n", 0.0, body)
            for i, body in enumerate(['{"a":1}', '{"b":2}', '{"c":"' + "x" * 50 + '"}', "{}"])]
    parts = json_arrays(rows, 20)
    assert parts == [b'[{"a":1},{"b":2}]', b'[{"c":"' + b"x" * 50 + b'"}]', b"[{}]"]
    assert [e for p in parts for e in json.loads(p)] == [json.loads(r.body) for r in rows]


async def test_a_sink_that_is_down_does_not_hold_back_the_other(
    private_redis: PrivateBroker, mqtt_addr: Addr, mqtt_prefix: str, tmp_path: Path
) -> None:
    cfg = settings(redis_url=private_redis.url, stream="s", mqtt=mqtt_addr, prefix=mqtt_prefix)
    async with (
        MqttCollector(mqtt_addr, f"{mqtt_prefix}/events") as sub,
        running(cfg, tmp_path / "spool") as outbox,
    ):
        if True:
            private_redis.kill()
            outbox.publish(numbered(300))
            await eventually(lambda: outbox.backlog()["mqtt"] == 0,
                             what="MQTT to get everything while Redis is down")
            assert outbox.backlog()["redis"] == 300
            await eventually(lambda: len(sub.messages) == 300,
                             what="the MQTT subscriber to see all 300")
            await eventually(lambda: outbox.stats()["redis"].failed > 0,
                             what="Redis failures to be counted")
            assert not outbox.stats()["redis"].healthy
            private_redis.start()
            assert await outbox.flush(timeout=20)
    assert [int(e["sequence"]) for e in read_stream(private_redis.url, "s")] == list(
        range(1, 301)
    )


async def test_retained_node_state_follows_the_node_and_is_cleared_on_removal(
    mqtt_addr: Addr, mqtt_prefix: str, tmp_path: Path
) -> None:
    cfg = settings(mqtt=mqtt_addr, prefix=mqtt_prefix)

    async def retained() -> dict[str, dict[str, object]]:
        """What a dashboard connecting now sees under nodes/ (retained messages only)."""
        seen: dict[str, dict[str, object]] = {}
        marker = f"{mqtt_prefix}/marker"
        async with aiomqtt.Client(mqtt_addr.host, mqtt_addr.port) as client:
            await client.subscribe(f"{mqtt_prefix}/nodes/+", qos=1)
            await client.subscribe(marker, qos=1)
            await client.publish(marker, b"x", qos=1)
            async with asyncio.timeout(10):
                async for message in client.messages:
                    if str(message.topic) == marker:
                        return seen
                    assert message.retain
                    assert isinstance(message.payload, bytes)
                    seen[str(message.topic)] = json.loads(message.payload)
        raise AssertionError("unreachable")

    async with running(cfg, tmp_path / "spool") as outbox:
        outbox.publish([drift("gpu/01+a#", 1), drift("gpu-02", 1), drift("gpu-02", 2)])
        assert await outbox.flush(timeout=10)
        state = await retained()
        assert set(state) == {f"{mqtt_prefix}/nodes/gpu_01_a_", f"{mqtt_prefix}/nodes/gpu-02"}
        assert state[f"{mqtt_prefix}/nodes/gpu-02"]["data"]["why"] == "drift #2 of gpu-02"  # type: ignore[index]

        outbox.remove_node("gpu-02", why="deleted from both")
        assert await outbox.flush(timeout=10)
        assert set(await retained()) == {f"{mqtt_prefix}/nodes/gpu_01_a_"}


async def test_status_topic_is_online_while_connected_and_offline_after(
    mqtt_addr: Addr, mqtt_prefix: str, tmp_path: Path
) -> None:
    cfg = settings(mqtt=mqtt_addr, prefix=mqtt_prefix)
    async with MqttCollector(mqtt_addr, f"{mqtt_prefix}/status") as sub:
        async with running(cfg, tmp_path / "spool") as outbox:
            outbox.publish([drift("n1")])
            assert await outbox.flush(timeout=10)
            await eventually(lambda: any(m.payload == b"online" for m in sub.messages),
                             what="status online")
        await eventually(lambda: bool(sub.messages) and sub.messages[-1].payload == b"offline",
                         what="status offline after a clean shutdown")


async def test_the_count_bound_drops_the_oldest_and_says_so(
    private_redis: PrivateBroker, tmp_path: Path
) -> None:
    cfg = settings(redis_url=private_redis.url, stream="s", spool_max_events=100)
    private_redis.kill()
    async with running(cfg, tmp_path / "spool") as outbox:
        outbox.publish(numbered(250))
        await outbox.durable()  # the bound applies as the writer stores them
        assert outbox.stats()["redis"].dropped == 150
        assert outbox.backlog()["redis"] == 101  # the newest 100 plus the overflow notice
        private_redis.start()
        assert await outbox.flush(timeout=20)
    received = read_stream(private_redis.url, "s")
    assert [e["data"]["why"] for e in received[:100]] == [f"n={i}" for i in range(150, 250)]
    notice = received[-1]
    validate_event(notice)
    assert notice["type"] == EventType.OVERFLOW
    assert notice["data"] == {"sink": "redis", "dropped": 150, "why": notice["data"]["why"]}
    assert [int(e["sequence"]) for e in received] == [*range(151, 251), 251]


async def test_the_age_bound_drops_what_waited_too_long(
    private_redis: PrivateBroker, mqtt_addr: Addr, mqtt_prefix: str, tmp_path: Path
) -> None:
    now = [1_000_000.0]
    cfg = settings(redis_url=private_redis.url, stream="s", mqtt=mqtt_addr, prefix=mqtt_prefix,
                   spool_max_age=60.0)
    private_redis.kill()
    async with running(cfg, tmp_path / "spool", clock=lambda: now[0]) as outbox:
        outbox.publish(numbered(5))
        assert await wait_until_backlog(outbox, "mqtt", 0)
        now[0] += 61  # the five are now too old for a sink that has not got them
        outbox.publish(numbered(2, start=5))
        await eventually(lambda: outbox.stats()["redis"].dropped == 5,
                         what="housekeeping to apply the age bound")
        assert outbox.stats()["mqtt"].dropped == 0
        private_redis.start()
        assert await outbox.flush(timeout=20)
    received = read_stream(private_redis.url, "s")
    assert [e["data"].get("why") for e in received[:2]] == ["n=5", "n=6"]
    assert received[2]["type"] == EventType.OVERFLOW
    assert received[2]["data"]["dropped"] == 5


async def wait_until_backlog(outbox: Outbox, sink: str, size: int) -> bool:
    await eventually(lambda: outbox.backlog()[sink] == size, what=f"{sink} backlog {size}")
    return True


async def test_a_restarted_outbox_resumes_from_the_spool(
    private_redis: PrivateBroker, tmp_path: Path
) -> None:
    cfg = settings(redis_url=private_redis.url, stream="s")
    private_redis.kill()
    async with running(cfg, tmp_path / "spool", flush_timeout=0.1) as outbox:
        outbox.publish(numbered(40))
        assert not await outbox.flush(timeout=0.2)
    private_redis.start()
    async with running(cfg, tmp_path / "spool") as outbox:
        assert outbox.backlog() == {"redis": 40}
        outbox.publish(numbered(10, start=40))
        assert await outbox.flush(timeout=20)
    received = read_stream(private_redis.url, "s")
    assert [e["data"]["why"] for e in received] == [f"n={i}" for i in range(50)]
    assert [int(e["sequence"]) for e in received] == list(range(1, 51))
    assert stream_len(private_redis.url, "s") == 50


async def test_the_event_time_is_the_occurrence_not_the_spooling(
    redis_addr: Addr, redis_stream: str, tmp_path: Path
) -> None:
    """CloudEvents ``time`` is ``occurred_at`` when the producer set it, for a published event
    and for the outcome of a write-ahead intent; the outbox's clock only when it did not."""
    cfg = settings(redis_url=redis_addr.redis_url, stream=redis_stream)
    seen, written = 1_000_000_000.0, 1_000_000_003.25
    async with running(cfg, tmp_path / "spool", clock=lambda: 2_000_000_000.0) as outbox:
        outbox.publish([replace(drift("gpu-01"), occurred_at=seen), drift("gpu-02")])
        await outbox.intend("k1", {"action": "drain", "nodes": ["gpu-01"]})
        await outbox.settle("k1", [replace(drift("gpu-01", 1), occurred_at=written)])
        assert await outbox.flush(timeout=20)
    times = [e["time"] for e in read_stream(redis_addr.redis_url, redis_stream)]
    assert times == ["2001-09-09T01:46:40.000Z", "2033-05-18T03:33:20.000Z",
                     "2001-09-09T01:46:43.250Z"]
