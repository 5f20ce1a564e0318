"""syncd's process is SIGKILLed mid-delivery: a restart delivers the rest, with no gap."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.events.helpers import MqttCollector, read_stream, reaper, stream_len
from tests.fixtures.brokers import Addr
from tests.fixtures.waiting import eventually

__all__ = ["reaper"]  # the fixture, used by name

COUNT = 8_000
ROOT = Path(__file__).resolve().parents[2]


async def start(spool: Path, redis: Addr, stream: str, mqtt: Addr, prefix: str,
                count: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.events.publisher_proc", "--spool", str(spool),
        "--redis", redis.redis_url, "--stream", stream, "--mqtt-port", str(mqtt.port),
        "--prefix", prefix, "--count", str(count), "--batch", "20",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
async def test_sigkill_mid_delivery_then_restart_delivers_the_rest_without_gap(
    redis_addr: Addr, redis_stream: str, mqtt_addr: Addr, mqtt_prefix: str, tmp_path: Path,
    reaper: list[asyncio.subprocess.Process],
) -> None:
    spool = tmp_path / "spool"
    async with MqttCollector(mqtt_addr, f"{mqtt_prefix}/status") as status, \
            MqttCollector(mqtt_addr, f"{mqtt_prefix}/events") as events:
        first = await start(spool, redis_addr, redis_stream, mqtt_addr, mqtt_prefix, COUNT)
        reaper.append(first)
        assert first.stdout is not None
        # 60 s: the child imports syncd and spools 8,000 events first (~2 s idle).
        assert await asyncio.wait_for(first.stdout.readline(), 60) == b"spooled\n"
        await eventually(lambda: stream_len(redis_addr.redis_url, redis_stream) >= 1_000,
                         within=60, what="delivery to be under way", every=0.005)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        at_kill = stream_len(redis_addr.redis_url, redis_stream)
        assert at_kill < COUNT, "delivery finished before the kill: raise COUNT"
        # The broker publishes the Will when the connection dies without DISCONNECT.
        await eventually(lambda: bool(status.messages) and status.messages[-1].payload
                         == b"offline", what="the MQTT Will (offline)")

        second = await start(spool, redis_addr, redis_stream, mqtt_addr, mqtt_prefix, 0)
        reaper.append(second)
        assert second.stdout is not None
        # Delivering the rest takes a few seconds idle; 120 s bounds a loaded machine.
        out = await asyncio.wait_for(second.stdout.read(), 120)
        assert await second.wait() == 0, out
        assert out.splitlines()[-1] == b"flushed"
        await eventually(lambda: len({e["id"] for e in events.events()}) == COUNT,
                         what="MQTT subscriber to get every id")

    for received in (read_stream(redis_addr.redis_url, redis_stream), events.events()):
        sequences = [int(e["sequence"]) for e in received]
        # At-least-once: the batch in flight at the kill may come twice, identical.
        by_sequence: dict[int, dict[str, Any]] = {}
        for event in received:
            assert by_sequence.setdefault(int(event["sequence"]), event) == event
        assert sorted(by_sequence) == list(range(1, COUNT + 1))
        assert len({e["id"] for e in received}) == COUNT
        # Order: dropping repeats leaves 1..COUNT in order; a repeat only re-sends a tail.
        first_seen = list(dict.fromkeys(sequences))
        assert first_seen == list(range(1, COUNT + 1))
        assert len(received) - COUNT <= 2 * 20, "more re-sent than the batches in flight"
    assert at_kill < COUNT
