"""Each sink's counters, and its outages as on-call reads them: one warning when an outage
begins, one when it ends, whatever the number of retries in between (those are counted, and
logged at debug level unless the error is not a broker being away, which is a bug)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from syncd.events.sinks import SinkError

__all__ = ["SinkStats"]

log = logging.getLogger("syncd.events.outbox")


@dataclass
class SinkStats:
    """Counters of one sink since this process started, for metrics and ``/readyz``."""

    delivered: int = 0
    failed: int = 0  # failed delivery attempts (each is retried)
    dropped: int = 0  # events lost before this sink got them (spool bound, memory buffer)
    healthy: bool = False  # the last delivery attempt succeeded
    down_since: float | None = None  # monotonic seconds the current outage began
    outage_attempts: int = 0  # failed attempts in the current outage
    outages: int = 0  # outages since start

    @property
    def state(self) -> str:
        """``down`` during an outage; ``up`` once a delivery worked; ``idle`` before."""
        return "down" if self.down_since is not None else "up" if self.healthy else "idle"

    def attempt_failed(self, sink: str, attempt: int, error: BaseException | None) -> None:
        self.failed += 1
        self.healthy = False
        self.outage_attempts += 1
        bug = error if not isinstance(error, SinkError) else None
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            log.warning("outbox: %s unreachable, events wait in the spool and are retried: %s",
                        sink, error, exc_info=bug)
        else:
            # Anything but a SinkError is a bug worth a traceback, but still retried: the
            # outbox must outlive one bad batch.
            log.log(logging.DEBUG if bug is None else logging.WARNING,
                    "outbox: %s delivery failed (attempt %d): %s", sink, attempt, error,
                    exc_info=bug)

    def attempt_worked(self, sink: str, sent: int) -> None:
        self.healthy = self.healthy or sent > 0
        if self.down_since is not None:
            log.warning("outbox: %s reachable again after %.1fs (%d failed attempts); "
                        "delivering the backlog", sink, time.monotonic() - self.down_since,
                        self.outage_attempts)
            self.down_since, self.outage_attempts = None, 0
