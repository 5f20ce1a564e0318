"""The sinks' own protocol paths against real servers: the MQTT publisher's keepalive and
ordering, and the Redis sink where the server refuses Lua scripts."""

from __future__ import annotations

import json

import redis

from syncd.events import SpooledEvent
from syncd.events.mqtt_wire import Publisher, WireOptions
from syncd.events.redis_sink import RedisStreamSink
from syncd.settings.events import RedisSink
from tests.events.helpers import MqttCollector, read_stream
from tests.fixtures.brokers import Addr, PrivateBroker
from tests.fixtures.waiting import eventually


def _rows(count: int) -> list[SpooledEvent]:
    kind = "io.syncd.node.drift.v1"
    return [SpooledEvent(i, f"id-{i}", kind, f"n{i % 3}", 0.0, json.dumps(
        {"id": f"id-{i}", "sequence": f"{i:020d}", "type": kind, "subject": f"n{i % 3}"}))
            for i in range(1, count + 1)]


async def test_mqtt_publisher_keeps_an_idle_connection_alive_and_keeps_order(
    mqtt_addr: Addr, mqtt_prefix: str
) -> None:
    topic = f"{mqtt_prefix}/events"
    async with MqttCollector(mqtt_addr, topic) as sub:
        client = await Publisher.connect(WireOptions(mqtt_addr.host, mqtt_addr.port,
                                                     f"{mqtt_prefix}-wire", keepalive=5))
        try:
            # The broker drops a client silent for 1.5 keepalives; pings keep this one.
            await eventually(lambda: client.pongs >= 4, within=60, what="four PINGRESPs")
            # 500: under mosquitto's max_queued_messages (1,000) for the slower subscriber.
            await client.publish([(topic, b"%d" % i, False) for i in range(500)])
        finally:
            await client.disconnect()
        await eventually(lambda: len(sub.messages) >= 500, what="every message")
    assert [m.payload for m in sub.messages] == [b"%d" % i for i in range(500)]


async def test_redis_sink_without_scripts_sends_a_pipeline(private_redis: PrivateBroker) -> None:
    url = private_redis.addr.redis_url
    admin = redis.Redis.from_url(url)
    try:
        admin.acl_setuser("nolua", enabled=True, passwords=["+pw"], keys=["~*"],
                          channels=["*"], commands=["+@all", "-@scripting"])
    finally:
        admin.close()
    host, port = private_redis.addr.host, private_redis.addr.port
    sink = RedisStreamSink(RedisSink(url=f"redis://nolua:pw@{host}:{port}/0", stream="s"))
    try:
        await sink.send(_rows(5))
        await sink.send(_rows(8)[5:])
    finally:
        await sink.close()
    got = read_stream(url, "s")
    assert [e["id"] for e in got] == [f"id-{i}" for i in range(1, 9)]
