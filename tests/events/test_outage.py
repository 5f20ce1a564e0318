"""Brokers killed while 1,000 events are produced lose none of them, however long they stay away.

The outage is measured in what the outbox went through, not in seconds: both private brokers stay
down until each sink has failed FAILED_ATTEMPTS deliveries, so the retry back-off (0.05 s,
doubling, capped at retry_max = 2 s) has sat at its cap for the last six of them (about 15 s on
an idle machine, longer under load). Both go down at once: the sinks are independent, so one
outage checks each of them and keeps the suite's wall time down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.events import Outbox, make_sinks, validate_event
from tests.events.helpers import (
    MqttCollector,
    numbered,
    read_stream,
    settings,
    wait_for_session_saved,
)
from tests.fixtures.brokers import PrivateBroker
from tests.fixtures.waiting import eventually

FAILED_ATTEMPTS = 12
BATCHES = 10
PRODUCED = 1_000


def failures(outbox: Outbox) -> dict[str, int]:
    return {name: s.failed for name, s in outbox.stats().items()}


def failed_since(outbox: Outbox, since: dict[str, int], more: int = 1) -> Callable[[], bool]:
    """True once every sink has failed ``more`` further delivery attempts."""
    return lambda: all(n >= since[name] + more for name, n in failures(outbox).items())


@pytest.mark.slow
async def test_brokers_down_through_a_dozen_retries_lose_nothing(
    private_redis: PrivateBroker, private_mosquitto: PrivateBroker, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="syncd.events.outbox")
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
        await eventually(lambda: len(sub.messages) == 10, what="the first 10")

        private_redis.kill()
        private_mosquitto.kill()
        down = failures(outbox)
        per_batch = PRODUCED // BATCHES
        for batch in range(BATCHES):  # produced across the outage, one batch per failed retry
            before = failures(outbox)
            outbox.publish(numbered(per_batch, start=10 + batch * per_batch))
            await eventually(failed_since(outbox, before), what="both sinks to fail again")
        assert outbox.backlog() == {"redis": PRODUCED, "mqtt": PRODUCED}
        # Up to ~6 more retries at the 2 s cap, plus the jitter; 60 s leaves room for a loaded
        # machine.
        await eventually(failed_since(outbox, down, FAILED_ATTEMPTS), within=60,
                         what=f"{FAILED_ATTEMPTS} failed deliveries to each sink")
        private_redis.start()
        private_mosquitto.start()

        assert await outbox.flush(timeout=60)
        await eventually(lambda: len(sub.messages) >= 10 + PRODUCED,
                         what="the MQTT subscriber to get all 1,000")
        await outbox.aclose(flush_timeout=5)
        await runner

    # However many retries: one line when each sink's outage began, one when it ended.
    lines = [r.getMessage() for r in caplog.records if r.name == "syncd.events.outbox"]
    for name in ("redis", "mqtt"):
        assert sum(m.startswith(f"outbox: {name} unreachable") for m in lines) == 1, lines
        assert sum(m.startswith(f"outbox: {name} reachable again") for m in lines) == 1, lines
        assert not any(m.startswith(f"outbox: {name} delivery failed") for m in lines), lines
    assert {n: s.outages for n, s in outbox.stats().items()} == {"redis": 1, "mqtt": 1}

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
