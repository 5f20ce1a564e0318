"""Hands events to the outbox and keeps the per-node history and the event counters, so every
event syncd publishes, from a pass or an operator, is seen the same way."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.core.model import DriftEvent, stamped
from syncd.core.ports import EventPublisher
from syncd.engine.clock import LoopClock
from syncd.engine.history import History
from syncd.engine.metrics import Metrics


class Publisher:
    def __init__(self, outbox: EventPublisher, metrics: Metrics, clock: LoopClock,
                 history: History | None = None) -> None:
        self.outbox = outbox
        self.metrics = metrics
        self.clock = clock
        self.history = history or History()

    def publish(self, events: Sequence[DriftEvent]) -> None:
        if not events:
            return
        events = stamped(events, self.clock.now())
        self.outbox.publish(events)
        for e in events:
            self.metrics.events.labels(e.type.value).inc()
        self.history.record(events, self.clock.now())

    def spooled(self, events: Sequence[DriftEvent]) -> None:
        """Events the write-ahead log already put in the spool: counted and remembered only."""
        for e in events:
            self.metrics.events.labels(e.type.value).inc()
        self.history.record(events, self.clock.now())

    def remove_node(self, node: str, why: str) -> None:
        self.outbox.remove_node(node, why)
        self.history.forget(node)
