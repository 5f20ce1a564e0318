"""The spool's one writer: a thread that owns every write, so ``publish()`` never waits on disk.

``publish()`` only numbers the events and queues them (a deque, under a lock held for
microseconds). This thread encodes them into CloudEvents and commits them in order, as few
transactions as the fsync policy allows: one fsync covers every ``publish()`` since the last
(group commit). It also stores intents, settles them, persists the sinks' cursors and applies
the spool bound, so SQLite only ever sees one writer.

When a write fails (disk full, I/O error, read-only filesystem) the queue becomes the memory
buffer of ``on_spool_failure``, as auditd's ``disk_full_action``
(https://man7.org/linux/man-pages/man5/auditd.conf.5.html) decides what auditd does then:
it keeps at most ``memory_buffer`` events, drops the newest beyond that (their sequence
numbers stay unused, so consumers see the jump), and retries with exponential back-off. When
a write succeeds again the buffer goes to the spool in order, followed by one
``io.syncd.outbox.overflow.v1`` event per sink with the dropped range. One log line marks the
start of a failure and one its end.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd.core.model import DriftEvent
from syncd.core.ports import SpoolUnavailable
from syncd.events.envelope import encode, envelope, rfc3339
from syncd.events.overflow import Gap, memory_notices, spool_bound_notices
from syncd.events.spool import IntentRow, Spool, SpooledEvent
from syncd.settings.events import EventsSettings

__all__ = ["SpoolStats", "SpoolWriter"]

log = logging.getLogger("syncd.events.outbox")

#: How often the age bound is checked.
HOUSEKEEPING_EVERY = 1.0
#: Events per transaction at most (more wait for the next one; keeps each commit short).
MAX_TRANSACTION = 2000
FIRST_RETRY = 0.05


@dataclass(slots=True)
class SpoolStats:
    """The writer's counters and gauges since this process started, for metrics."""

    failing: bool = False  # the last write attempt failed
    failing_since: float | None = None  # epoch seconds the current failure started
    last_error: str = ""
    failures: int = 0  # failed write attempts
    outages: int = 0  # times the spool started failing
    buffered: int = 0  # events queued in memory, not yet in the spool
    written: int = 0  # events committed to the spool
    dropped: int = 0  # events dropped because the memory buffer was full
    unencodable: int = 0  # events skipped because their data is not JSON (a bug upstream)


@dataclass(slots=True, eq=False)
class _Entry:
    """Events queued by one call, numbered from ``seq``; ``n`` orders entries."""

    n: int
    seq: int
    events: tuple[DriftEvent, ...]
    created: float
    settles: str | None = None  # the intent deleted in the same transaction
    notice: bool = False  # an overflow notice: over every bound, and never trims by count
    rows: list[SpooledEvent] | None = None  # encoded once, kept across retries


@dataclass(slots=True)
class _Waiters:
    durable: list[tuple[int, cf.Future[None]]] = field(default_factory=list)
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
        self._queue: deque[_Entry] = deque()
        self._next_seq = spool.last + 1
        self._entries = 0  # entries ever queued (``_Entry.n``)
        self._gap: Gap | None = None
        self._waiting = _Waiters()
        self._backoff = FIRST_RETRY
        self._retry_at = 0.0
        self._retry_now = False
        self._housekeeping_at = 0.0
        self._stop_at: float | None = None
        self._dead = ""
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()

    # -- callers -------------------------------------------------------------------------

    def enqueue(self, events: Sequence[DriftEvent], created: float) -> None:
        with self._cond:
            self._admit(events, created, None)
            self._cond.notify()

    def durable(self) -> cf.Future[None]:
        """Done when everything queued so far is in the spool (or was dropped, and said so);
        SpoolUnavailable at once while the spool fails, or when an attempt fails first."""
        future: cf.Future[None] = cf.Future()
        with self._cond:
            if self._done_upto() >= self._entries:
                future.set_result(None)
            elif self.stats.failing or self._dead:
                future.set_exception(SpoolUnavailable(self.reason()))
            else:
                self._waiting.durable.append((self._entries, future))
        return future

    def settle(self, key: str, events: Sequence[DriftEvent], created: float) -> cf.Future[None]:
        future: cf.Future[None] = cf.Future()
        with self._cond:
            entry = self._admit(events, created, key)
            if entry is None:
                why = f"memory buffer full; events dropped and intent {key!r} left open"
                future.set_exception(SpoolUnavailable(why))
            elif self.stats.failing or self._dead:
                why = f"{self.reason()}; intent {key!r} settles once the spool is written"
                future.set_exception(SpoolUnavailable(why))
            else:
                self._waiting.durable.append((entry.n, future))
            self._cond.notify()
        return future

    def intend(self, key: str, record: str, created: float) -> cf.Future[None]:
        """Stored in the next transaction; an intent is never held back by a back-off."""
        future: cf.Future[None] = cf.Future()
        with self._cond:
            if self._dead:
                future.set_exception(SpoolUnavailable(self.reason()))
            else:
                self._waiting.intents.append(((key, record, created), future))
                self._retry_now = True
                self._cond.notify()
        return future

    def cursors_saved(self) -> cf.Future[None]:
        """Done after the next write attempt (at once while failing): bounds the re-sends."""
        future: cf.Future[None] = cf.Future()
        with self._cond:
            if self.stats.failing or self._dead:
                future.set_result(None)
            else:
                self._waiting.cursors.append(future)
                self._cond.notify()
        return future

    def allocated(self) -> int:
        """The last sequence number given out."""
        with self._cond:
            return self._next_seq - 1

    def settled_upto(self) -> int:
        """Every sequence number up to this one is in the spool or was dropped."""
        with self._cond:
            return self._queue[0].seq - 1 if self._queue else self._next_seq - 1

    def failing(self) -> bool:
        return self.stats.failing or bool(self._dead)

    def reason(self) -> str:
        s = self.stats
        if self._dead:
            return f"spool writer stopped: {self._dead}"
        if not s.failing:
            return "spool writable"
        return (f"spool unwritable since {rfc3339(s.failing_since or 0)}: {s.last_error}; "
                f"{s.buffered} event(s) in memory, {s.dropped} dropped since start")

    def stop(self, timeout: float) -> bool:
        """Write what is queued (for up to ``timeout`` s), then end; False if some was lost."""
        with self._cond:
            self._stop_at = time.monotonic() + timeout
            self._cond.notify()
        self._thread.join(timeout + 5.0)
        with self._cond:
            left = self.stats.buffered
        if left:
            log.error("outbox: %d event(s) never reached the spool (%s)", left, self.reason())
        return not left and not self._thread.is_alive()

    # -- queue (lock held) ---------------------------------------------------------------

    def _admit(self, events: Sequence[DriftEvent], created: float, settles: str | None,
               *, bound: bool = True) -> _Entry | None:
        """Queue what fits (a settle group whole or not at all); number the rest, drop it."""
        room = self.settings.memory_buffer - self.stats.buffered if bound else len(events)
        take = min(len(events), max(room, 0))
        if settles is not None and take < len(events):
            take = 0
        entry = None
        if take or (settles is not None and not events):
            if self._gap is not None:
                self._close_gap()
            self._entries += 1
            entry = _Entry(self._entries, self._next_seq, tuple(events[:take]), created, settles,
                           notice=not bound)
            self._queue.append(entry)
            self._next_seq += take
            self.stats.buffered += take
        if take < len(events):
            first, count = self._next_seq, len(events) - take
            self._next_seq += count
            self.stats.dropped += count
            if self._gap is None:
                self._gap = Gap(first, first + count - 1, created, created)
                log.warning("outbox: memory buffer full (%d events) while the spool fails; "
                            "dropping new events until it is written again",
                            self.settings.memory_buffer)
            else:
                self._gap = Gap(self._gap.first, first + count - 1, self._gap.first_time, created)
        return entry

    def _close_gap(self) -> None:
        gap, self._gap = self._gap, None
        if gap is not None and self.spool.sinks:
            for sink in self.spool.sinks:
                self._on_dropped(sink, gap.count)
            notices = memory_notices(gap, self.spool.sinks, self.settings.memory_buffer)
            self._admit(notices, self._clock(), None, bound=False)

    def _done_upto(self) -> int:
        return self._queue[0].n - 1 if self._queue else self._entries

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._cycle():
                pass
        except BaseException as exc:  # a bug: health() and every waiter say so
            log.exception("outbox: spool writer stopped")
            with self._cond:
                self._dead = f"{type(exc).__name__}: {exc}"
                self._fail_waiters(SpoolUnavailable(self.reason()), cursors_too=True)

    def _cycle(self) -> bool:
        with self._cond:
            while True:
                now = time.monotonic()
                w = self._waiting
                work = bool(self._queue or w.intents or w.cursors)
                retry = not self.stats.failing or self._retry_now or now >= self._retry_at
                finish = self._stop_at is not None and (not work or now >= self._stop_at)
                if finish or (work and retry) or now >= self._housekeeping_at:
                    break
                wake = [self._housekeeping_at, self._stop_at or now + 3600]
                if work:
                    wake.append(self._retry_at)
                self._cond.wait(max(0.0, min(wake) - now))
            entries = self._take() if retry and not finish else []
            intents, w.intents = (w.intents, []) if not finish else ([], w.intents)
            cursors, w.cursors = w.cursors, []
            self._retry_now = False
        if finish:
            self._last_cursors()
            for future in cursors:
                future.set_result(None)
            return False
        ok = self._write(entries, intents) if retry and work else not self.stats.failing
        for future in cursors:
            future.set_result(None)
        if ok and time.monotonic() >= self._housekeeping_at:
            self._housekeeping_at = time.monotonic() + HOUSEKEEPING_EVERY
            self._bound(check_age=True)
        elif ok and any(not e.notice for e in entries) and (
                len(self.spool) > self.settings.spool_max_events):
            self._bound(check_age=False)
        if ok:
            self._resolve()
        return True

    def _take(self) -> list[_Entry]:
        out: list[_Entry] = []
        size = 0
        for entry in self._queue:
            if out and size + len(entry.events) > MAX_TRANSACTION:
                break
            out.append(entry)
            size += len(entry.events)
        return out

    def _write(self, entries: list[_Entry], intents: list[tuple[IntentRow, cf.Future[None]]]
               ) -> bool:
        """Commit ``entries`` in order, and ``intents`` with the first transaction; False
        (and failing) on the first error, leaving what was not committed queued."""
        # (entries done once this transaction commits, its rows, the intents it settles)
        groups: list[tuple[list[_Entry], list[SpooledEvent], list[str]]] = []
        if not self.spool.per_event:
            rows = [row for entry in entries for row in self._encode(entry)]
            settled = [e.settles for e in entries if e.settles is not None]
            groups.append((entries, rows, settled))
        else:  # one transaction per event, but a settle's events share one
            for entry in entries:
                rows = self._encode(entry)
                if entry.settles is not None or len(rows) <= 1:
                    settled = [entry.settles] if entry.settles is not None else []
                    groups.append(([entry], rows, settled))
                else:
                    groups += [([], [row], []) for row in rows[:-1]]
                    groups.append(([entry], rows[-1:], []))
        pending = [row for row, _ in intents]
        for done, rows, settled in groups or [([], [], [])]:
            try:
                self.spool.write(rows, intents=pending, settled=settled)
            except Exception as exc:  # every failure to write is an outage
                self._failed(exc, [f for _, f in intents] if pending else [])
                return False
            if pending:
                for _, future in intents:
                    future.set_result(None)
                pending = []
            self._committed(done, len(rows))
        if self.stats.failing:
            self._recovered()
        return True

    def _encode(self, entry: _Entry) -> list[SpooledEvent]:
        """The entry's rows not yet stored (an ``always`` entry may be half written)."""
        if entry.rows is None:
            entry.rows = []
            for i, event in enumerate(entry.events):
                seq, event_id = entry.seq + i, str(uuid.uuid4())
                try:
                    body = encode(envelope(event, source=self.source, sequence=seq,
                                           timestamp=entry.created, event_id=event_id))
                except (TypeError, ValueError) as exc:
                    self.stats.unencodable += 1
                    log.error("outbox: skipped event %d (%s %s): data is not JSON: %s",
                              seq, event.type, event.subject or "-", exc)
                    continue
                entry.rows.append(SpooledEvent(seq, event_id, str(event.type), event.subject,
                                               entry.created, body))
        last = self.spool.last
        return [row for row in entry.rows if row.seq > last]

    def _committed(self, entries: list[_Entry], rows: int) -> None:
        with self._cond:
            for entry in entries:
                assert self._queue[0] is entry, "entries commit in queue order"
                self._queue.popleft()
                self.stats.buffered -= len(entry.events)
            self.stats.written += rows

    def _resolve(self) -> None:
        """Wake who waited for what is now stored (after the bound, so its counts show)."""
        with self._cond:
            done = self._done_upto()
            keep = []
            for n, future in self._waiting.durable:
                if n <= done:
                    future.set_result(None)
                else:
                    keep.append((n, future))
            self._waiting.durable = keep
            if not self._queue and self._gap is not None:
                self._close_gap()
                self._cond.notify()
        self._on_commit()

    def _failed(self, exc: Exception, intents: list[cf.Future[None]]) -> None:
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        with self._cond:
            s = self.stats
            s.failures += 1
            s.last_error = error
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.settings.retry_max)
            if not s.failing:
                s.failing, s.failing_since, s.outages = True, self._clock(), s.outages + 1
                log.warning("outbox: spool write failed, on_spool_failure=%s: events wait in "
                            "memory (at most %d) and writes are retried: %s",
                            self.settings.on_spool_failure, self.settings.memory_buffer, error,
                            exc_info=None if _is_disk_error(exc) else exc)
            unavailable = SpoolUnavailable(self.reason())
            for future in intents:
                future.set_exception(unavailable)
            self._fail_waiters(unavailable, cursors_too=False)

    def _recovered(self) -> None:
        with self._cond:
            s = self.stats
            took = self._clock() - (s.failing_since or self._clock())
            s.failing, s.failing_since, self._backoff = False, None, FIRST_RETRY
            left = s.buffered
        log.warning("outbox: spool writable again after %.1fs (%d failed attempts so far, "
                    "%d event(s) still in memory, %d dropped since start)",
                    took, s.failures, left, s.dropped)

    def _fail_waiters(self, error: SpoolUnavailable, *, cursors_too: bool) -> None:
        for _, future in self._waiting.durable:
            future.set_exception(error)
        self._waiting.durable = []
        if cursors_too:
            for _, future in self._waiting.intents:
                future.set_exception(error)
            for cursor_future in self._waiting.cursors:
                cursor_future.set_result(None)
            self._waiting.intents, self._waiting.cursors = [], []

    def _bound(self, *, check_age: bool) -> None:
        """Apply the spool bound; every sink that lost events gets told, after the newest."""
        max_age = self.settings.spool_max_age
        if check_age:
            oldest = self.spool.oldest_created()
            if oldest is None or oldest >= self._clock() - max_age:
                return
        try:
            lost = self.spool.trim(max_events=self.settings.spool_max_events,
                                   older_than=self._clock() - max_age)
        except Exception as exc:  # retried at the next housekeeping
            log.warning("outbox: could not apply the spool bound: %s", exc)
            return
        for sink, count in sorted(lost.items()):
            self._on_dropped(sink, count)
            log.warning("outbox: spool bound dropped %d event(s) not yet sent to %s", count, sink)
        if lost:
            with self._cond:
                self._admit(spool_bound_notices(lost, self.settings), self._clock(), None,
                            bound=False)
                self._cond.notify()

    def _last_cursors(self) -> None:
        if not self.stats.failing:
            try:
                self.spool.write()
            except Exception as exc:  # they are re-sent, at-least-once
                log.warning("outbox: could not save the cursors at shutdown: %s", exc)


def _is_disk_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError | OSError)
