"""The spool on a real full filesystem (a tmpfs of the test's own), both settings of
``events.on_spool_failure``: events wait in memory, the overflow is announced, and once
space returns every kept event reaches the real Redis, in order, once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from syncd.core.model import EventType
from syncd.events import Outbox, SpoolUnavailable, make_sinks, validate_event
from syncd.settings.events import EventsSettings
from tests.events.fullfs import SmallFilesystem, small_filesystem
from tests.events.helpers import numbered, read_stream, settings
from tests.fixtures.brokers import Addr
from tests.fixtures.waiting import eventually

__all__ = ["small_filesystem"]  # the fixture, used by name

BUFFER = 300


@asynccontextmanager
async def running(cfg: EventsSettings, spool: Path) -> AsyncIterator[Outbox]:
    outbox = Outbox(cfg, cluster="c", instance="full", spool_dir=spool,
                    sinks=make_sinks(cfg, client_id="full-test"))
    task = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        await outbox.aclose(flush_timeout=10)
        await task


async def fill_until_the_spool_fails(outbox: Outbox, fs: SmallFilesystem, start: int) -> int:
    """Fill the disk, then publish until a write fails; returns the next event number."""
    fs.fill()
    for n in range(start, start + 1000, 10):
        outbox.publish(numbered(10, start=n))
        try:
            await outbox.durable()
        except SpoolUnavailable:
            return n + 10
    raise AssertionError("the spool never failed on a full filesystem")


def spool_lines(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    keys = ("spool write failed", "spool writable again", "memory buffer full")
    return Counter(k for r in caplog.records for k in keys if k in r.getMessage())


@pytest.mark.slow
async def test_continue_buffers_drops_the_newest_beyond_the_bound_and_recovers(
    small_filesystem: SmallFilesystem, redis_addr: Addr, redis_stream: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fs = small_filesystem
    cfg = settings(redis_url=redis_addr.redis_url, stream=redis_stream, retry_max=0.2,
                   memory_buffer=BUFFER, on_spool_failure="continue")
    async with running(cfg, fs.path / "spool") as outbox:
        outbox.publish(numbered(10))
        assert await outbox.flush(timeout=20)

        upto = await fill_until_the_spool_fails(outbox, fs, 10)
        ok, reason = outbox.health()
        assert not ok
        assert "disk is full" in reason, reason
        assert outbox.writes_allowed()  # continue: the engine goes on writing to Slurm
        with pytest.raises(SpoolUnavailable):
            await outbox.durable()
        with pytest.raises(SpoolUnavailable, match="disk is full"):
            await outbox.intend("k", {"action": "drain"})
        buffered = outbox.spool_stats().buffered
        assert 0 < buffered <= upto - 10

        outbox.publish(numbered(500, start=upto))  # more than the buffer can hold
        stats = outbox.spool_stats()
        dropped = buffered + 500 - BUFFER
        assert (stats.buffered, stats.dropped, stats.outages) == (BUFFER, dropped, 1)
        assert stats.failures >= 1
        assert outbox.backlog()["redis"] >= BUFFER

        fs.free()
        await eventually(lambda: outbox.health()[0], within=20, what="the spool to recover")
        outbox.publish(numbered(5, start=upto + 500))
        assert await outbox.flush(timeout=30)
        assert outbox.stats()["redis"].dropped == dropped
        assert outbox.health() == (True, "spool writable")

    received = read_stream(redis_addr.redis_url, redis_stream)
    assert len({e["id"] for e in received}) == len(received), "an event arrived twice"
    for event in received:
        validate_event(event)
    sequences = [int(e["sequence"]) for e in received]
    assert sequences == sorted(sequences)
    notices = [e for e in received if e["type"] == EventType.OVERFLOW]
    assert len(notices) == 1
    data: dict[str, Any] = notices[0]["data"]
    assert (data["sink"], data["dropped"], data["cause"]) == ("redis", dropped, "memory_buffer")
    missing = set(range(1, sequences[-1] + 1)) - set(sequences)
    assert missing == set(range(data["first_sequence"], data["last_sequence"] + 1))
    assert data["first_time"] <= data["last_time"]
    # Kept: everything up to the bound, in order; dropped: the newest beyond it.
    whys = [e["data"]["why"] for e in received if e["type"] != EventType.OVERFLOW]
    total = upto + 505
    kept = [i for i in range(total) if not upto + 500 - dropped <= i < upto + 500]
    assert whys == [f"n={i}" for i in kept]
    assert notices[0] is received[-6]  # after the buffer, before what came after recovery
    assert spool_lines(caplog) == {"spool write failed": 1, "spool writable again": 1,
                                   "memory buffer full": 1}


@pytest.mark.slow
async def test_hold_stops_slurm_writes_until_the_spool_is_written_again(
    small_filesystem: SmallFilesystem, redis_addr: Addr, redis_stream: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fs = small_filesystem
    cfg = settings(redis_url=redis_addr.redis_url, stream=redis_stream, retry_max=0.2,
                   on_spool_failure="hold")
    async with running(cfg, fs.path / "spool") as outbox:
        assert outbox.writes_allowed()
        await outbox.intend("drain:gpu-01", {"action": "drain", "nodes": ["gpu-01"]})
        outbox.publish(numbered(10))
        assert await outbox.flush(timeout=20)

        upto = await fill_until_the_spool_fails(outbox, fs, 10)
        assert not outbox.writes_allowed()
        assert not outbox.health()[0]
        with pytest.raises(SpoolUnavailable, match="disk is full"):
            await outbox.intend("drain:gpu-02", {"action": "drain", "nodes": ["gpu-02"]})
        # The Slurm write in flight when the disk filled up: its outcome waits in memory.
        with pytest.raises(SpoolUnavailable, match="settles once the spool is written"):
            await outbox.settle("drain:gpu-01", numbered(2, start=upto))
        assert [i.key for i in outbox.open_intents()] == ["drain:gpu-01"]
        outbox.publish(numbered(100, start=upto + 2))
        assert not outbox.writes_allowed()

        fs.free()
        await eventually(outbox.writes_allowed, within=20, what="writes to be allowed again")
        assert outbox.open_intents() == []  # settled in the transaction that stored them
        await outbox.intend("drain:gpu-02", {"action": "drain", "nodes": ["gpu-02"]})
        assert [i.key for i in outbox.open_intents()] == ["drain:gpu-02"]
        assert await outbox.flush(timeout=30)
        assert outbox.spool_stats().dropped == 0

    received = read_stream(redis_addr.redis_url, redis_stream)
    assert [e["data"]["why"] for e in received] == [f"n={i}" for i in range(upto + 102)]
    assert [int(e["sequence"]) for e in received] == list(range(1, upto + 103))
    assert spool_lines(caplog) == {"spool write failed": 1, "spool writable again": 1}
