"""A broker killed for OUTAGE seconds while 1,000 events are produced loses none of them.

Both private brokers go down at once (one 30-second wait for both tests' worth of outage):
the sinks are independent, so this checks each of them, and keeps the suite's wall time down.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from syncd.events import Outbox, make_sinks, validate_event
from tests.events.helpers import MqttCollector, numbered, read_stream, settings, wait_until
from tests.fixtures.brokers import PrivateBroker

OUTAGE = 30.0
PRODUCED = 1_000


async def wait_for_session_saved(broker: PrivateBroker, after: float) -> None:
    """Mosquitto saves sessions every second (autosave_interval 1); wait for a save made
    after the subscription, so the SIGKILL cannot take the subscriber's session with it."""
    db = broker.workdir / "mosquitto.db"
    await wait_until(lambda: db.exists() and db.stat().st_mtime > after + 0.01, timeout=10,
                     what="mosquitto to persist the subscriber's session")


@pytest.mark.slow
async def test_brokers_down_for_30s_lose_nothing(
    private_redis: PrivateBroker, private_mosquitto: PrivateBroker, tmp_path: Path
) -> None:
    cfg = settings(redis_url=private_redis.url, stream="events", mqtt=private_mosquitto.addr,
                   prefix="syncd", retry_max=2.0)
    outbox = Outbox(cfg, cluster="c", instance="i", spool_dir=tmp_path / "spool",
                    sinks=make_sinks(cfg, client_id="outage-syncd"))
    runner = asyncio.create_task(outbox.run())
    async with MqttCollector(private_mosquitto.addr, "syncd/events", persistent=True,
                             client_id="outage-collector") as sub:
        await wait_for_session_saved(private_mosquitto, after=time.time())
        outbox.publish(numbered(10))
        assert await outbox.flush(timeout=20)
        await wait_until(lambda: len(sub.messages) == 10, timeout=10, what="the first 10")

        private_redis.kill()
        private_mosquitto.kill()
        down_at = time.monotonic()
        for start in range(0, PRODUCED, 50):  # produced across the first 20 s of the outage
            outbox.publish(numbered(50, start=10 + start))
            await asyncio.sleep(1.0)
        assert outbox.backlog() == {"redis": PRODUCED, "mqtt": PRODUCED}
        assert all(s.failed > 0 for s in outbox.stats().values())
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))  # the outage
        private_redis.start()
        private_mosquitto.start()

        assert await outbox.flush(timeout=60)
        await wait_until(lambda: len(sub.messages) >= 10 + PRODUCED, timeout=30,
                         what="the MQTT subscriber to get all 1,000")
        await outbox.aclose(flush_timeout=5)
        await runner

    expected = list(range(11, 11 + PRODUCED))
    on_redis = read_stream(private_redis.url, "events")  # Redis kept nothing across SIGKILL
    on_mqtt = [e for e in sub.events() if int(e["sequence"]) > 10]
    for name, received in (("redis", on_redis), ("mqtt", on_mqtt)):
        ids = Counter(e["id"] for e in received)
        assert len(ids) == PRODUCED, name
        assert set(ids.values()) == {1}, f"{name}: an id arrived more than once"
        assert [int(e["sequence"]) for e in received] == expected, name
        for event in received:
            validate_event(event)
