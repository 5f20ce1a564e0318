"""The spool's one writer: a thread that owns every write, so ``publish()`` never waits on disk.

``publish()`` only numbers and queues events (:mod:`syncd.events.buffer`). This thread
encodes them and commits them in order, in as few transactions as the fsync policy allows
(:mod:`syncd.events.transactions`); it also stores and settles intents, persists the sinks'
cursors and applies the spool bound, so SQLite only ever sees one writer. When a write fails
(disk full, I/O error, read-only), the queue is the memory buffer of ``on_spool_failure``,
which plays the part of auditd's ``disk_full_action``
(https://man7.org/linux/man-pages/man5/auditd.conf.5.html), and writes are retried with
back-off (:mod:`syncd.events.health`).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd.core.model import DriftEvent
from syncd.core.ports import SpoolUnavailable
from syncd.events.buffer import Entry, EventQueue, SpoolStats, complete
from syncd.events.health import SpoolHealth
from syncd.events.overflow import Gap, apply_bound, memory_notices, spool_bound_notices
from syncd.events.spool import IntentRow, Spool
from syncd.events.transactions import encode_entry, plan
from syncd.settings.events import EventsSettings

__all__ = ["SpoolStats", "SpoolWriter"]  # SpoolStats re-exported from buffer

log = logging.getLogger("syncd.events.outbox")

#: How often the age bound is checked.
HOUSEKEEPING_EVERY = 1.0
#: Events per transaction at most (more wait for the next one; keeps each commit short).
MAX_TRANSACTION = 2000


@dataclass(slots=True)
class _Waiters:
    intents: list[tuple[IntentRow, cf.Future[None]]] = field(default_factory=list)
    cursors: list[cf.Future[None]] = field(default_factory=list)


class SpoolWriter:
    """The thread that writes ``spool``; every public method may be called from any thread."""

    def __init__(
        self,
        spool: Spool,
        settings: EventsSettings,
        *,
        source: str,
        clock: Callable[[], float],
        on_commit: Callable[[], None],
        on_dropped: Callable[[str, int], None],
    ) -> None:
        self.spool, self.settings, self.source = spool, settings, source
        self.stats = SpoolStats()
        self._clock, self._on_commit, self._on_dropped = clock, on_commit, on_dropped
        self._cond = threading.Condition()
        self._queue = EventQueue(next_seq=spool.last + 1, capacity=settings.memory_buffer,
                                 stats=self.stats, notices=self._notices, clock=clock)
        self._waiting = _Waiters()
        self.health = SpoolHealth(self.stats, settings, clock)
        self._retry_now = False
        self._housekeeping_at = 0.0
        self._stop_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()

    # -- callers -------------------------------------------------------------------------

    def enqueue(self, events: Sequence[DriftEvent], created: float) -> None:
        with self._cond:
            self._open()
            self._queue.admit(events, created)
            self._cond.notify()

    def durable(self) -> cf.Future[None]:
        """Done when everything queued so far is in the spool (or was dropped, and said so);
        SpoolUnavailable at once while the spool fails, or when an attempt fails first."""
        future: cf.Future[None] = cf.Future()
        with self._cond:
            if self._queue.done():
                complete(future)
            elif self.health.failing or self._stop_at is not None:
                complete(future, SpoolUnavailable(self.health.reason()))
            else:
                self._queue.wait_all(future)
        return future

    def settle(self, key: str, events: Sequence[DriftEvent], created: float) -> cf.Future[None]:
        future: cf.Future[None] = cf.Future()
        with self._cond:
            self._open()
            entry = self._queue.admit(events, created, key)
            if entry is None:
                why = f"memory buffer full; events dropped and intent {key!r} left open"
                complete(future, SpoolUnavailable(why))
            elif self.health.failing:
                why = f"{self.health.reason()}; intent {key!r} settles once the spool is written"
                complete(future, SpoolUnavailable(why))
            else:
                self._queue.wait_for(entry.n, future)
            self._cond.notify()
        return future

    def intend(self, key: str, record: str, created: float) -> cf.Future[None]:
        """Stored in the next transaction; an intent is never held back by a back-off."""
        future: cf.Future[None] = cf.Future()
        with self._cond:
            self._open()
            if self.health.dead:
                complete(future, SpoolUnavailable(self.health.reason()))
            else:
                self._waiting.intents.append(((key, record, created), future))
                self._retry_now = True
                self._cond.notify()
        return future

    def cursors_saved(self) -> cf.Future[None]:
        """Done after the next write attempt (at once while failing): bounds the re-sends."""
        future: cf.Future[None] = cf.Future()
        with self._cond:
            if self.health.failing:
                complete(future)
            else:
                self._waiting.cursors.append(future)
                self._cond.notify()
        return future

    def _open(self) -> None:
        if self._stop_at is not None:
            raise RuntimeError("the outbox is closed")

    def allocated(self) -> int:
        """The last sequence number given out."""
        with self._cond:
            return self._queue.allocated()

    def settled_upto(self) -> int:
        """Every sequence number up to this one is in the spool or was dropped."""
        with self._cond:
            return self._queue.settled_upto()

    def stop(self, timeout: float) -> bool:
        """Write what is queued (for up to ``timeout`` s), then end; False if the thread is
        still busy (then the spool must stay open). What could not be written is logged."""
        with self._cond:
            self._stop_at = time.monotonic() + timeout
            self._cond.notify()
        self._thread.join(timeout + 5.0)
        with self._cond:
            left = self.stats.buffered
        if left:
            log.error("outbox: %d event(s) never reached the spool (%s)", left,
                      self.health.reason())
        return not self._thread.is_alive()

    def _notices(self, gap: Gap) -> list[DriftEvent]:
        """The notices of a closed gap (lock held): every sink lost all of it."""
        for sink in self.spool.sinks:
            self._on_dropped(sink, gap.count)
        return memory_notices(gap, self.spool.sinks, self.settings.memory_buffer)

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._cycle():
                pass
        except BaseException as exc:  # a bug: health() and every waiter say so
            log.exception("outbox: spool writer stopped")
            with self._cond:
                self.health.dead = f"{type(exc).__name__}: {exc}"
                self._fail_waiters(SpoolUnavailable(self.health.reason()), cursors_too=True)

    def _cycle(self) -> bool:
        with self._cond:
            while True:
                now = time.monotonic()
                w = self._waiting
                work = bool(self._queue or w.intents or w.cursors)
                retry = not self.stats.failing or self._retry_now or now >= self.health.retry_at
                finish = self._stop_at is not None and (not work or now >= self._stop_at)
                if finish or (work and retry) or now >= self._housekeeping_at:
                    break
                wake = [self._housekeeping_at, self._stop_at or now + 3600]
                if work:
                    wake.append(self.health.retry_at)
                self._cond.wait(max(0.0, min(wake) - now))
            entries = self._queue.take(MAX_TRANSACTION) if retry and not finish else []
            intents, w.intents = (w.intents, []) if not finish else ([], w.intents)
            cursors, w.cursors = w.cursors, []
            self._retry_now = False
        if finish:
            self._last_cursors()
            for future in cursors:
                complete(future)
            return False
        ok = self._write(entries, intents) if retry and work else not self.stats.failing
        for future in cursors:
            complete(future)
        housekeeping = time.monotonic() >= self._housekeeping_at
        if housekeeping:  # also while failing: the wait above must not spin on it
            self._housekeeping_at = time.monotonic() + HOUSEKEEPING_EVERY
        if ok and housekeeping:
            self._bound(check_age=True)
        elif ok and any(not e.notice for e in entries) and (
                len(self.spool) > self.settings.spool_max_events):
            self._bound(check_age=False)
        if ok:
            self._resolve(stored=bool(entries))
        return True

    def _write(self, entries: list[Entry], intents: list[tuple[IntentRow, cf.Future[None]]]
               ) -> bool:
        """Commit ``entries`` in order, and ``intents`` with the first transaction; False
        (and failing) on the first error, leaving what was not committed queued."""
        last = self.spool.last
        rows = [encode_entry(e, source=self.source, stats=self.stats, last=last)
                for e in entries]
        pending = [row for row, _ in intents]
        for txn in plan(entries, rows, per_event=self.spool.per_event):
            try:
                self.spool.write(txn.rows, intents=pending, settled=txn.settled)
            except Exception as exc:  # every failure to write is an outage
                self._failed(exc, [f for _, f in intents] if pending else [])
                return False
            if pending:
                for _, future in intents:
                    complete(future)
                pending = []
            self._committed(txn.done, len(txn.rows))
        with self._cond:
            self.health.recovered()
            self._queue.limit(False)
        return True

    def _committed(self, entries: list[Entry], rows: int) -> None:
        with self._cond:
            self._queue.committed(entries)
            self.stats.written += rows

    def _resolve(self, *, stored: bool) -> None:
        """Wake who waited for what is now stored (after the bound, so its counts show);
        the lanes and flush() only when something was."""
        with self._cond:
            self._queue.resolve()
            self._cond.notify()
        if stored:
            self._on_commit()

    def _failed(self, exc: Exception, intents: list[cf.Future[None]]) -> None:
        with self._cond:
            self.health.failed(exc)
            self._queue.limit(True)
            unavailable = SpoolUnavailable(self.health.reason())
            for future in intents:
                complete(future, unavailable)
            self._fail_waiters(unavailable, cursors_too=False)

    def _fail_waiters(self, error: SpoolUnavailable, *, cursors_too: bool) -> None:
        self._queue.fail_waiters(error)
        if cursors_too:
            for _, future in self._waiting.intents:
                complete(future, error)
            for cursor_future in self._waiting.cursors:
                complete(cursor_future)
            self._waiting.intents, self._waiting.cursors = [], []

    def _bound(self, *, check_age: bool) -> None:
        """Apply the spool bound; every sink that lost events gets told, after the newest."""
        lost = apply_bound(self.spool, self.settings, self._clock(), check_age=check_age)
        for sink, count in lost.items():
            self._on_dropped(sink, count)
        if lost:
            with self._cond:
                self._queue.admit(spool_bound_notices(lost, self.settings), self._clock(),
                                  notice=True)

    def _last_cursors(self) -> None:
        if not self.stats.failing:
            try:
                self.spool.write()
            except Exception as exc:  # they are re-sent, at-least-once
                log.warning("outbox: could not save the cursors at shutdown: %s", exc)


