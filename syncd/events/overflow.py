"""Losing events on purpose, and saying so: the spool bound and the overflow notices.

Two causes, both announced to every sink, after the newest events: the spool bound dropped
events a sink had not received yet, or the spool could not be written and the memory buffer
was full, so events were numbered but never stored (a :class:`Gap` in the sequence).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from syncd.core.events import OverflowCause, OverflowData
from syncd.core.model import DriftEvent
from syncd.events.envelope import rfc3339
from syncd.events.spool import Spool
from syncd.settings.events import EventsSettings

__all__ = ["Gap", "apply_bound", "memory_notices", "spool_bound_notices"]

log = logging.getLogger("syncd.events.outbox")


@dataclass(frozen=True, slots=True)
class Gap:
    """Sequence numbers ``first..last`` were given to events that were then dropped."""

    first: int
    last: int
    first_time: float
    last_time: float

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def apply_bound(spool: Spool, settings: EventsSettings, now: float, *, check_age: bool
                ) -> dict[str, int]:
    """Trim ``spool`` to ``spool_max_events``/``spool_max_age`` (with ``check_age``, only once
    its oldest event is too old); returns, and logs, what each sink lost."""
    if check_age:
        oldest = spool.oldest_created()
        if oldest is None or oldest >= now - settings.spool_max_age:
            return {}
    try:
        lost = spool.trim(max_events=settings.spool_max_events,
                          older_than=now - settings.spool_max_age)
    except Exception as exc:  # the disk refused: tried again at the next housekeeping
        log.warning("outbox: could not apply the spool bound: %s", exc)
        return {}
    for sink, count in sorted(lost.items()):
        log.warning("outbox: spool bound dropped %d event(s) not yet sent to %s", count, sink)
    return lost


def spool_bound_notices(lost: Mapping[str, int], settings: EventsSettings) -> list[DriftEvent]:
    """One notice per sink that lost events to ``spool_max_events``/``spool_max_age``."""
    bound = (f"spool bound (max {settings.spool_max_events} events, "
             f"max age {settings.spool_max_age:g}s)")
    return [
        OverflowData(sink=sink, dropped=count,
                     why=f"{bound} dropped events {sink} had not received").event()
        for sink, count in sorted(lost.items())
    ]


def memory_notices(gap: Gap, sinks: Sequence[str], capacity: int) -> list[DriftEvent]:
    """One notice per sink: every sink lost the whole gap."""
    why = (f"the spool could not be written and the memory buffer ({capacity} events) "
           f"was full: events {gap.first}..{gap.last} were never stored")
    return [
        OverflowData(sink=sink, dropped=gap.count, why=why, cause=OverflowCause.MEMORY_BUFFER,
                     first_sequence=gap.first, last_sequence=gap.last,
                     first_time=rfc3339(gap.first_time),
                     last_time=rfc3339(gap.last_time)).event()
        for sink in sinks
    ]
