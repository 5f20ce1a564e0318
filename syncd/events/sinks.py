"""What the outbox needs from a broker, and the factory that builds sinks from settings.

A sink only moves bytes: it gets a batch of already-encoded events and returns once the
broker has acknowledged every one of them, or raises :class:`SinkError`. Ordering, retries,
back-off and cursors belong to the outbox, so every sink gets them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from syncd.events.spool import SpooledEvent
from syncd.settings.events import EventsSettings

__all__ = ["Sink", "SinkError", "make_sinks"]


class SinkError(Exception):
    """A batch was not (or not entirely) acknowledged; the outbox will send it again."""


class Sink(Protocol):
    """A broker the outbox delivers to, in order, at least once."""

    #: Stable name: it keys the sink's cursor in the spool and its counters.
    name: str

    async def send(self, batch: Sequence[SpooledEvent],
                   superseded: frozenset[str] = frozenset()) -> None:
        """Deliver ``batch`` in order (connecting first if needed); raise SinkError on failure.
        ``superseded``: subjects with a newer event already committed to the spool, which a
        sink that keeps only each subject's latest state may skip (it follows)."""
        ...

    async def close(self) -> None:
        """Drop the connection, gracefully if possible; a later ``send`` reconnects."""
        ...


def make_sinks(settings: EventsSettings, *, client_id: str = "syncd") -> list[Sink]:
    """The enabled sinks of ``settings`` (Redis first, then MQTT).

    ``client_id`` names the MQTT client when ``mqtt.client_id`` is empty; use the instance
    name so two daemons never take over each other's MQTT session.
    """
    sinks: list[Sink] = []
    if settings.redis.enabled:
        from syncd.events.redis_sink import RedisStreamSink

        sinks.append(RedisStreamSink(settings.redis))
    if settings.mqtt.enabled:
        from syncd.events.mqtt_sink import MqttEventSink

        sinks.append(MqttEventSink(settings.mqtt, client_id=settings.mqtt.client_id or client_id))
    return sinks
