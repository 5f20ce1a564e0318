"""Drift events: CloudEvents through a durable outbox to Redis Streams and MQTT.

See docs/events.md for the envelope, the topics and the delivery guarantees.
"""

from syncd.core.ports import Intent, SpoolUnavailable
from syncd.events.envelope import node_removed, source_uri
from syncd.events.outbox import Outbox
from syncd.events.schemas import EventInvalid, event_problems, validate_event
from syncd.events.sinkhealth import SinkStats
from syncd.events.sinks import Sink, SinkError, make_sinks
from syncd.events.spool import Spool, SpooledEvent
from syncd.events.writer import SpoolStats

__all__ = [
    "EventInvalid",
    "Intent",
    "Outbox",
    "Sink",
    "SinkError",
    "SinkStats",
    "Spool",
    "SpoolStats",
    "SpoolUnavailable",
    "SpooledEvent",
    "event_problems",
    "make_sinks",
    "node_removed",
    "source_uri",
    "validate_event",
]
