"""The outbox: events go to the local spool first, then to every sink on its own schedule.

``publish`` is synchronous and touches only the local disk, so a reconcile never waits for a
broker. Each sink has a delivery lane: read the next batch after its cursor, send it, move
the cursor. A lane whose broker is down retries with exponential back-off (tenacity) and
keeps its backlog in the spool, bounded by ``spool_max_events`` and ``spool_max_age``; when
the bound drops events a lane had not received, an ``io.syncd.outbox.overflow.v1`` event
and the ``dropped`` counter say how many. A cursor moves only after the broker acknowledged
the batch, so a crash re-sends at most the batch in flight: at-least-once, dedupe on ``id``.

Wiring in the daemon::

    outbox = Outbox(settings.events, cluster=..., instance=..., spool_dir=...,
                    sinks=make_sinks(settings.events, client_id=instance))
    task = asyncio.create_task(outbox.run())      # at start
    outbox.publish(events)                         # per reconcile
    await outbox.aclose(flush_timeout=5.0)         # at SIGTERM (then await task)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential, wait_random

from syncd.core.model import DriftEvent, EventType
from syncd.events.envelope import encode, envelope, node_removed, source_uri
from syncd.events.sinks import Sink, SinkError
from syncd.events.spool import Spool, SpooledEvent
from syncd.settings.events import EventsSettings

__all__ = ["Outbox", "SinkStats"]

log = logging.getLogger(__name__)

#: How often the age bound is checked while running (the count bound is checked on publish).
HOUSEKEEPING_EVERY = 1.0


@dataclass(slots=True)
class SinkStats:
    """Counters of one sink since this process started, for metrics."""

    delivered: int = 0
    failed: int = 0  # failed delivery attempts (each is retried)
    dropped: int = 0  # events the spool bound dropped before this sink received them
    healthy: bool = False  # the last delivery attempt succeeded


class Outbox:
    """Implements :class:`syncd.core.ports.EventPublisher` on top of a :class:`Spool`."""

    def __init__(
        self,
        settings: EventsSettings,
        *,
        cluster: str,
        instance: str,
        spool_dir: Path,
        sinks: Sequence[Sink],
        clock: Callable[[], float] = time.time,
    ) -> None:
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        self.settings = settings
        self.source = source_uri(cluster, instance)
        self.sinks = tuple(sinks)
        self._clock = clock
        self.spool = Spool(spool_dir, fsync=settings.fsync, sinks=names)
        self._stats = {n: SinkStats() for n in names}
        self._wake = {n: asyncio.Event() for n in names}
        self._progress = asyncio.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._running = False
        self._stopped = asyncio.Event()

    # -- EventPublisher ------------------------------------------------------------------

    def publish(self, events: Sequence[DriftEvent]) -> None:
        """Append ``events`` to the spool (one fsync under the ``batch`` policy) and wake
        the delivery lanes. Never touches a broker; raises only on disk failure."""
        if not events:
            return
        self._append(events)
        if len(self.spool) > self.settings.spool_max_events:
            self._enforce_bound()
        self._notify()

    def remove_node(self, node: str, why: str = "node removed") -> None:
        """Publish that ``node`` is gone: its retained MQTT state is cleared, in order."""
        self.publish([node_removed(node, why)])

    # -- delivery ------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until :meth:`aclose` (or cancellation); closes the sinks on the way out."""
        if self._stopping.is_set():
            return  # closed before it ever ran
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._stopped.clear()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._lane(sink), name=f"outbox-{sink.name}")
                    for sink in self.sinks
                ]
                tasks.append(group.create_task(self._housekeeping(), name="outbox-housekeeping"))
                await self._stopping.wait()
                for task in tasks:
                    task.cancel()
        finally:
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sink.close(), timeout=3.0)
                self._stats[sink.name].healthy = False
            self._running = False
            self._stopped.set()

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 (the port's API)
        """Wait until every sink has every event published so far; False on timeout."""
        target = self.spool.last
        if all(self.spool.cursor(s.name) >= target for s in self.sinks):
            return True
        progress = self._progress

        async def caught_up() -> None:
            async with progress:
                await progress.wait_for(
                    lambda: all(self.spool.cursor(s.name) >= target for s in self.sinks)
                )

        try:
            await asyncio.wait_for(caught_up(), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, *, flush_timeout: float = 5.0) -> bool:
        """Flush (bounded), stop the lanes, close sinks and spool. Returns the flush result;
        whatever was not delivered stays in the spool for the next start."""
        flushed = await self.flush(flush_timeout)
        self._stopping.set()
        if self._running:
            await self._stopped.wait()
        self.spool.close()
        return flushed

    def backlog(self) -> dict[str, int]:
        """Events each sink has yet to receive."""
        return self.spool.backlog()

    def stats(self) -> dict[str, SinkStats]:
        """A copy of the counters per sink (delivered, failed, dropped, healthy)."""
        return {name: dataclasses.replace(stats) for name, stats in self._stats.items()}

    # -- internals -----------------------------------------------------------------------

    def _append(self, events: Sequence[DriftEvent]) -> list[SpooledEvent]:
        now = self._clock()

        def build(first: int) -> list[SpooledEvent]:
            rows: list[SpooledEvent] = []
            for i, event in enumerate(events):
                event_id = str(uuid.uuid4())
                body = envelope(
                    event, source=self.source, sequence=first + i, timestamp=now,
                    event_id=event_id,
                )
                rows.append(
                    SpooledEvent(first + i, event_id, str(event.type), event.subject, now,
                                 encode(body))
                )
            return rows

        return self.spool.append(build)

    def _enforce_bound(self) -> None:
        """Drop what the bound says must go; tell every sink that lost events about it."""
        max_age = self.settings.spool_max_age
        lost = self.spool.trim(
            max_events=self.settings.spool_max_events, older_than=self._clock() - max_age
        )
        if not lost:
            return
        notices = []
        for sink, count in sorted(lost.items()):
            self._stats[sink].dropped += count
            log.warning("outbox: spool bound dropped %d event(s) not yet sent to %s", count, sink)
            why = (
                f"spool bound (max {self.settings.spool_max_events} events, "
                f"max age {max_age:g}s) dropped events {sink} had not received"
            )
            data = {"sink": sink, "dropped": count, "why": why}
            notices.append(DriftEvent(type=EventType.OVERFLOW, subject="", data=data))
        self._append(notices)  # not trimmed again: the bound may be exceeded by these few

    def _notify(self) -> None:
        loop = self._loop
        for wake in self._wake.values():
            if loop is None or _running_loop() is loop:
                wake.set()
            else:
                loop.call_soon_threadsafe(wake.set)

    async def _housekeeping(self) -> None:
        while True:
            oldest = self.spool.oldest_created()
            if oldest is not None and oldest < self._clock() - self.settings.spool_max_age:
                await asyncio.to_thread(self._enforce_bound)
                self._notify()
            await asyncio.sleep(HOUSEKEEPING_EVERY)

    async def _lane(self, sink: Sink) -> None:
        stats, wake = self._stats[sink.name], self._wake[sink.name]

        def failed(state: RetryCallState) -> None:
            stats.failed += 1
            stats.healthy = False
            error = state.outcome.exception() if state.outcome else None
            # A SinkError is a broker being away; anything else is a bug worth a traceback,
            # but still retried: the outbox must outlive one bad batch.
            log.warning("outbox: %s delivery failed (attempt %d): %s",
                        sink.name, state.attempt_number, error,
                        exc_info=None if isinstance(error, SinkError) else error)

        backoff = wait_exponential(multiplier=0.05, max=self.settings.retry_max)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=backoff + wait_random(0, 0.1),
            before_sleep=failed,
            reraise=True,
        )
        while True:
            wake.clear()
            sent = 0
            async for attempt in retrying.copy():
                with attempt:
                    sent = await self._deliver_one_batch(sink)
            stats.healthy = stats.healthy or sent > 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=HOUSEKEEPING_EVERY)

    async def _deliver_one_batch(self, sink: Sink) -> int:
        """Read the next batch after the cursor (re-read on every retry, since the bound may
        have moved the cursor meanwhile), send it, then move the cursor."""
        batch = await asyncio.to_thread(self.spool.read, sink.name, self.settings.batch_size)
        if not batch:
            return 0
        await sink.send(batch)
        await asyncio.to_thread(self.spool.ack, sink.name, batch[-1].seq)
        self._stats[sink.name].delivered += len(batch)
        async with self._progress:
            self._progress.notify_all()
        return len(batch)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
