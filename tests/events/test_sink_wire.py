"""The Redis sink's fallback against a real server that refuses Lua scripts."""

from __future__ import annotations

import json
from typing import cast

import redis

from syncd.events import SpooledEvent
from syncd.events.redis_sink import RedisStreamSink
from syncd.settings.events import RedisSink
from tests.events.helpers import read_stream
from tests.fixtures.brokers import PrivateBroker


def _rows(count: int) -> list[SpooledEvent]:
    kind = "io.syncd.node.drift.v1"
    return [SpooledEvent(i, f"id-{i}", kind, f"n{i % 3}", 0.0, json.dumps(
        {"id": f"id-{i}", "sequence": f"{i:020d}", "type": kind, "subject": f"n{i % 3}"}))
            for i in range(1, count + 1)]


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


async def test_a_batch_with_a_newline_in_a_field_goes_as_a_pipeline_in_order(
    private_redis: PrivateBroker,
) -> None:
    """The script takes a batch as newline-ended fields; a field holding a newline (no node
    name does, but nothing stops a caller) must not split an entry: that batch is sent as
    XADDs in a pipeline instead, in order, with its fields whole."""
    url = private_redis.addr.redis_url
    rows = _rows(3)
    odd = rows[1]
    rows[1] = SpooledEvent(odd.seq, odd.id, odd.type, "gpu\n01", odd.created, odd.body)
    sink = RedisStreamSink(RedisSink(url=url, stream="s"))
    try:
        await sink.send(rows)
        await sink.send(_rows(5)[3:])
    finally:
        await sink.close()
    client = redis.Redis.from_url(url)
    try:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange("s"))
    finally:
        client.close()
    assert [f[b"id"].decode() for _, f in entries] == [f"id-{i}" for i in range(1, 6)]
    assert [f[b"subject"].decode() for _, f in entries][:3] == ["n1", "gpu\n01", "n0"]
