"""Whether the spool can be written: the failure state, its back-off, its two log lines.

A failure starts with the first write that fails and ends with the first that succeeds; in
between, writes are retried with exponential back-off (from 50 ms, doubling, capped at
``retry_max``). One warning marks the start and one the end, never one per event or attempt;
the counters say the rest.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from syncd.events.buffer import SpoolStats
from syncd.events.envelope import rfc3339
from syncd.settings.events import EventsSettings

__all__ = ["SpoolHealth"]

log = logging.getLogger("syncd.events.outbox")

FIRST_RETRY = 0.05


class SpoolHealth:
    """Failure state of one spool; the writer calls it with its lock held."""

    def __init__(self, stats: SpoolStats, settings: EventsSettings,
                 clock: Callable[[], float]) -> None:
        self.stats, self.settings, self._clock = stats, settings, clock
        self.retry_at = 0.0  # time.monotonic() of the next attempt while failing
        self.dead = ""  # the writer thread died of this (a bug)
        self._backoff = FIRST_RETRY

    @property
    def failing(self) -> bool:
        return self.stats.failing or bool(self.dead)

    def failed(self, exc: BaseException) -> None:
        """A write failed: count it, schedule the retry, log if it is the first."""
        s = self.stats
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        s.failures += 1
        s.last_error = error
        self.retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.settings.retry_max)
        if not s.failing:
            s.failing, s.failing_since, s.outages = True, self._clock(), s.outages + 1
            disk = isinstance(exc, sqlite3.OperationalError | OSError)
            log.warning("outbox: spool write failed, on_spool_failure=%s: events wait in "
                        "memory (at most %d) and writes are retried: %s",
                        self.settings.on_spool_failure, self.settings.memory_buffer, error,
                        exc_info=None if disk else exc)

    def recovered(self) -> None:
        """A write succeeded after failures: log the end of the outage."""
        s = self.stats
        if not s.failing:
            return
        took = self._clock() - (s.failing_since or self._clock())
        s.failing, s.failing_since, self._backoff = False, None, FIRST_RETRY
        log.warning("outbox: spool writable again after %.1fs (%d failed attempts so far, "
                    "%d event(s) still in memory, %d dropped since start)",
                    took, s.failures, s.buffered, s.dropped)

    def reason(self) -> str:
        s = self.stats
        if self.dead:
            return f"spool writer stopped: {self.dead}"
        if not s.failing:
            return "spool writable"
        return (f"spool unwritable since {rfc3339(s.failing_since or 0)}: {s.last_error}; "
                f"{s.buffered} event(s) in memory, {s.dropped} dropped since start")
