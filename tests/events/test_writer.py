"""The spool writer: publish() queues, durable() waits, intents and settles, holes, bounds."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from syncd.core.model import DriftEvent, EventType
from syncd.core.ports import WriteAheadLog
from syncd.events import Outbox, Spool, SpooledEvent, make_sinks, validate_event
from syncd.events.buffer import EventQueue, SpoolStats
from syncd.events.envelope import encode, envelope
from syncd.events.overflow import Gap, memory_notices
from syncd.settings.events import EventsSettings
from tests.events.helpers import numbered, settings
from tests.fixtures.waiting import eventually


@asynccontextmanager
async def opened(cfg: EventsSettings, spool: Path, *, clock: Callable[[], float] | None = None,
                 sinks: bool = False) -> AsyncIterator[Outbox]:
    """An outbox; with ``sinks`` also delivering (``run()``), else only spooling."""
    extra = {"clock": clock} if clock else {}
    outbox = Outbox(cfg, cluster="c", instance="i", spool_dir=spool,
                    sinks=make_sinks(cfg, client_id="writer-test") if sinks else [], **extra)
    task = asyncio.create_task(outbox.run()) if sinks else None
    try:
        yield outbox
    finally:
        await outbox.aclose(flush_timeout=5 if sinks else 0.1)
        if task is not None:
            await task


def stored(spool: Path) -> list[tuple[int, dict[str, Any]]]:
    db = sqlite3.connect(spool / Spool.FILENAME)
    try:
        rows = db.execute("SELECT seq, body FROM events ORDER BY seq").fetchall()
    finally:
        db.close()
    return [(int(seq), json.loads(body)) for seq, body in rows]


async def test_publish_queues_and_durable_waits_until_all_is_in_the_spool(tmp_path: Path) -> None:
    async with opened(settings(), tmp_path / "spool") as outbox:
        for start in range(0, 1000, 20):
            outbox.publish(numbered(20, start=start))
        await outbox.durable()
        rows = stored(tmp_path / "spool")
        assert [seq for seq, _ in rows] == list(range(1, 1001))
        assert [body["data"]["why"] for _, body in rows] == [f"n={i}" for i in range(1000)]
        assert [int(body["sequence"]) for _, body in rows] == list(range(1, 1001))
        stats = outbox.spool_stats()
        assert (stats.written, stats.buffered, stats.dropped, stats.failing) == (1000, 0, 0, False)
        await outbox.durable()  # nothing queued: returns at once
        assert outbox.health() == (True, "spool writable")
        assert outbox.writes_allowed()
        port: WriteAheadLog = outbox  # mypy checks the Outbox against the port
        assert port.open_intents() == []
    with pytest.raises(RuntimeError, match="closed"):
        outbox.publish(numbered(1))
    with pytest.raises(RuntimeError, match="closed"):
        await outbox.intend("k", {})
    with pytest.raises(RuntimeError, match="closed"):
        await outbox.settle("k", [])
    await outbox.durable()  # nothing was left queued


async def test_intents_survive_a_restart_and_settle_removes_them_with_its_events(
    tmp_path: Path,
) -> None:
    now = [1_000.0]
    spool = tmp_path / "spool"
    async with opened(settings(), spool, clock=lambda: now[0]) as outbox:
        await outbox.intend("drain:gpu-01", {"action": "drain", "nodes": ["gpu-01"]})
        now[0] += 1
        await outbox.intend("drain:gpu-02", {"action": "drain", "nodes": ["gpu-02"], "n": 1})
        assert [(i.key, i.created) for i in outbox.open_intents()] == [
            ("drain:gpu-01", 1_000.0), ("drain:gpu-02", 1_001.0)]
        await outbox.settle("drain:gpu-01", numbered(2))
        assert [i.key for i in outbox.open_intents()] == ["drain:gpu-02"]
        now[0] += 1
        await outbox.intend("drain:gpu-02", {"action": "drain", "nodes": ["gpu-02"], "n": 2})
        await outbox.settle("never-intended", numbered(1, start=2))  # appends, no error
    assert [body["data"]["why"] for _, body in stored(spool)] == ["n=0", "n=1", "n=2"]
    async with opened(settings(), spool) as again:
        intents = again.open_intents()
        assert [(i.key, i.record, i.created) for i in intents] == [
            ("drain:gpu-02", {"action": "drain", "nodes": ["gpu-02"], "n": 2}, 1_002.0)]
        await again.settle("drain:gpu-02", [])  # no outcome events: only deletes
        assert again.open_intents() == []


@pytest.mark.parametrize(
    ("key", "record", "message"),
    [
        ("", {}, "non-empty"),
        ("k", {"when": object()}, "'k': record is not JSON-compatible"),
        ("k", {"ratio": float("nan")}, "'k': record is not JSON-compatible"),
    ],
)
async def test_bad_intents_get_a_one_line_error(
    tmp_path: Path, key: str, record: dict[str, object], message: str
) -> None:
    async with opened(settings(), tmp_path / "spool") as outbox:
        with pytest.raises(ValueError, match=message) as caught:
            await outbox.intend(key, record)
        assert "\n" not in str(caught.value)
        with pytest.raises(ValueError, match="non-empty"):
            await outbox.settle("", [])
        assert outbox.open_intents() == []


async def test_an_event_whose_data_is_not_json_is_logged_counted_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = DriftEvent(EventType.SKIP, "gpu-01", {"why": "x", "value": object(), "source": "s"})
    async with opened(settings(), tmp_path / "spool") as outbox:
        outbox.publish([*numbered(1), bad, *numbered(1, start=1)])
        await outbox.durable()
        assert outbox.spool_stats().unencodable == 1
    assert [seq for seq, _ in stored(tmp_path / "spool")] == [1, 3]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "skipped event 2" in errors[0].getMessage()


async def test_a_burst_over_the_memory_buffer_waits_while_the_spool_is_healthy(
    tmp_path: Path,
) -> None:
    """The bound is for a failing spool: a healthy one takes any burst (late, not lost)."""
    async with opened(settings(memory_buffer=5), tmp_path / "spool") as outbox:
        outbox.publish(numbered(200))
        await outbox.durable()
        assert outbox.spool_stats().dropped == 0
    assert [seq for seq, _ in stored(tmp_path / "spool")] == list(range(1, 201))


def test_a_full_queue_drops_the_newest_in_gaps_and_announces_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The memory buffer while the spool fails (EventQueue.limit), without a disk: the
    dropped keep their numbers, a settle goes whole or not at all, and each gap is told, over
    the bound and per sink, as soon as something fits again or the queue has drained."""
    stats = SpoolStats()
    gaps: list[Gap] = []

    def notices(gap: Gap) -> list[DriftEvent]:
        gaps.append(gap)
        return memory_notices(gap, ["redis", "mqtt"], 5)

    queue = EventQueue(next_seq=1, capacity=5, stats=stats, notices=notices, clock=lambda: 9.0)
    queue.limit(True)
    assert queue.admit(numbered(3), 1.0) is not None  # 1..3
    assert queue.admit(numbered(3, start=3), 2.0, "k1") is None  # 4..6 do not all fit: dropped
    entry = queue.admit(numbered(4, start=6), 3.0)  # 2 fit: the gap is told (7, 8) first
    assert entry is not None and (entry.seq, len(entry.events)) == (9, 2)  # 11, 12 dropped
    assert (stats.buffered, stats.dropped, queue.allocated()) == (7, 5, 12)
    assert gaps == [Gap(4, 6, 2.0, 2.0)]
    queue.committed(queue.take(100))
    queue.resolve()  # drained: the second gap is told
    assert gaps == [Gap(4, 6, 2.0, 2.0), Gap(11, 12, 3.0, 3.0)]
    told = queue.take(100)
    assert len(told) == 1 and told[0].notice and told[0].seq == 13
    datas = [dict(e.data) for e in told[0].events]
    assert [(d["sink"], d["dropped"], d["first_sequence"], d["last_sequence"]) for d in datas] \
        == [("redis", 2, 11, 12), ("mqtt", 2, 11, 12)]
    for i, event in enumerate(told[0].events):
        validate_event(json.loads(encode(envelope(event, source="syncd://c/i", sequence=13 + i,
                                                  timestamp=9.0))))
    assert sum("memory buffer full" in r.getMessage() for r in caplog.records) == 1
    queue.limit(False)
    assert queue.admit(numbered(50), 4.0) is not None  # a healthy spool: no bound
    assert stats.dropped == 5


def test_holes_in_the_sequence_are_not_counted_as_events(tmp_path: Path) -> None:
    def row(seq: int) -> SpooledEvent:
        return SpooledEvent(seq, f"id{seq}", "t", "", 0.0, "{}")

    spool = Spool(tmp_path, fsync="off", sinks=["a", "b"])
    spool.write([row(1), row(2), row(5), row(6)])  # 3 and 4 were dropped in memory
    spool.write([row(9)])  # and 7, 8
    assert len(spool) == 5
    assert spool.backlog() == {"a": 5, "b": 5}
    assert spool.move_cursor("a", 5)
    assert not spool.move_cursor("a", 4)
    assert spool.backlog() == {"a": 2, "b": 5}  # the cursor moves in memory at once
    spool.write()
    assert spool.pending("b", upto=6) == 4
    assert spool.trim(max_events=1, older_than=-1.0) == {"a": 1, "b": 4}
    assert [e.seq for e in spool.read("b", 10)] == [9]
    with pytest.raises(ValueError, match="upwards"):
        spool.write([row(8)])
    spool.close()
    again = Spool(tmp_path, fsync="off", sinks=["a", "b"])
    assert (len(again), again.backlog(), again.last) == (1, {"a": 1, "b": 1}, 9)
    again.close()


def test_a_spool_from_before_intents_opens_and_gains_the_table(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / Spool.FILENAME)
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL,"
               " type TEXT NOT NULL, subject TEXT NOT NULL, created REAL NOT NULL,"
               " body TEXT NOT NULL)")
    db.execute("CREATE TABLE cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL)")
    db.execute("INSERT INTO events VALUES (1, 'a', 't', '', 0, '{}'), (2, 'b', 't', '', 0, '{}')")
    db.execute("INSERT INTO cursors VALUES ('redis', 1)")
    db.commit()
    db.close()
    spool = Spool(tmp_path, fsync="batch", sinks=["redis"])
    assert spool.backlog() == {"redis": 1}
    assert spool.open_intents() == []
    spool.write(intents=[("k", "{}", 1.0)])
    assert spool.open_intents() == [("k", "{}", 1.0)]
    spool.close()


@pytest.mark.parametrize("policy", ["batch", "always"])
async def test_settle_under_each_policy_stores_all_its_events(tmp_path: Path, policy: str) -> None:
    async with opened(settings(fsync=policy), tmp_path / "spool") as outbox:
        await outbox.intend("k", {"a": 1})
        outbox.publish(numbered(3))
        await outbox.settle("k", numbered(3, start=3))
        assert outbox.open_intents() == []
        assert outbox.spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert [body["data"]["why"] for _, body in stored(tmp_path / "spool")] == [
        f"n={i}" for i in range(6)]


async def test_a_waiter_that_gives_up_does_not_stop_the_writer(tmp_path: Path) -> None:
    """A task cancelled while it awaits durable() cancels the future the writer completes
    later; the writer must shrug that off (it used to die of InvalidStateError)."""
    async with opened(settings(fsync="always"), tmp_path / "spool") as outbox:
        outbox.publish(numbered(300))  # one fsync each: the writer is busy for a while
        waiter = asyncio.create_task(outbox.durable())
        await eventually(lambda: outbox.spool_stats().written > 0, within=20,
                         what="the writer to be under way")
        assert not waiter.done(), "the writer finished too soon for this test: publish more"
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        outbox.publish(numbered(1, start=300))
        await outbox.durable()
        await outbox.intend("k", {})
        assert outbox.health() == (True, "spool writable")
    assert len(stored(tmp_path / "spool")) == 301


def test_the_new_settings_are_checked_with_one_line_each() -> None:
    from syncd.config import ConfigError, load

    with pytest.raises(ConfigError) as caught:
        load({"events": {"on_spool_failure": "panic", "memory_buffer": 0}}, env={})
    assert caught.value.problems == [
        "events.on_spool_failure: must be one of continue, hold",
        "events.memory_buffer: must be 1 or more",
    ]
    loaded = load({"events": {"on_spool_failure": "hold", "memory_buffer": 50}}, env={})
    assert (loaded.events.on_spool_failure, loaded.events.memory_buffer) == ("hold", 50)
