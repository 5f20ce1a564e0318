"""The CloudEvents 1.0 envelope (structured JSON mode) around a :class:`DriftEvent`.

The envelope is built once, when the event enters the spool, and stored as text: a re-send
after a crash or a broker outage sends the very same bytes, so ``id`` (and ``time`` and
``sequence``) are stable and consumers can deduplicate on ``id``.

``sequence`` follows the CloudEvents *sequence* extension: a string whose lexicographic order
is the order of the events. It is the spool's position written with :data:`SEQUENCE_DIGITS`
zero-padded digits, so ``"00000000000000000042"`` sorts before ``"00000000000000000100"``
and ``int(sequence)`` gives the number back. It increases by one per event within a spool;
a consumer that sees a jump lost events (an overflow event says how many, and why).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from syncd.core.events import DriftData
from syncd.core.model import DriftEvent, EventType

__all__ = [
    "CONTENT_TYPE",
    "SEQUENCE_DIGITS",
    "SPECVERSION",
    "encode",
    "encoded",
    "envelope",
    "node_removed",
    "source_uri",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
#: The content type of a whole structured-mode event (CloudEvents JSON format).
EVENT_CONTENT_TYPE = "application/cloudevents+json"
SEQUENCE_DIGITS = 20


def source_uri(cluster: str, instance: str) -> str:
    """``syncd://<cluster>/<instance>``, each part percent-encoded so the URI stays valid."""
    return f"syncd://{quote(cluster, safe='-._~')}/{quote(instance, safe='-._~')}"


@functools.lru_cache(maxsize=256)  # the events of one publish() share their time
def rfc3339(timestamp: float) -> str:
    """UTC with milliseconds, e.g. ``2025-01-31T12:00:00.123Z`` (RFC 3339, as CloudEvents asks)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def envelope(
    event: DriftEvent, *, source: str, sequence: int, timestamp: float, event_id: str | None = None
) -> dict[str, Any]:
    """The CloudEvent for ``event``. ``subject`` is left out for cluster-wide events, because
    CloudEvents requires a present ``subject`` to be non-empty."""
    out: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": str(event.type),
        "time": rfc3339(timestamp),
        "datacontenttype": CONTENT_TYPE,
        "sequence": f"{sequence:0{SEQUENCE_DIGITS}d}",
        "data": dict(event.data),
    }
    if event.subject:
        out["subject"] = event.subject
    return out


#: Built once: ``json.dumps`` with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_json = _ENCODER.encode


def encode(body: Mapping[str, Any]) -> str:
    """Compact JSON text; raises TypeError for values that are not JSON (a bug upstream)."""
    return _json(body)


@functools.lru_cache(maxsize=64)
def _quoted(text: str) -> str:
    return _json(text)


def encoded(event: DriftEvent, *, source: str, sequence: int, timestamp: float, event_id: str
            ) -> str:
    """``encode(envelope(...))``, the same text, with only ``data`` going through the
    encoder (the writer's cost per event)."""
    data = event.data if type(event.data) is dict else dict(event.data)
    subject = f',"subject":{_json(event.subject)}' if event.subject else ""
    return (f'{{"specversion":"{SPECVERSION}","id":{_json(event_id)},'
            f'"source":{_quoted(source)},"type":{_quoted(str(event.type))},'
            f'"time":"{rfc3339(timestamp)}","datacontenttype":"{CONTENT_TYPE}",'
            f'"sequence":"{sequence:0{SEQUENCE_DIGITS}d}","data":{_json(data)}{subject}}}')


def node_removed(node: str, why: str) -> DriftEvent:
    """The drift event that says a node is gone from both worlds.

    Sinks treat a drift whose ``kubernetes`` and ``slurm`` views are both null as removal:
    the MQTT sink clears the node's retained state topic.
    """
    return DriftData(None, None, ("removed",), why).event(node)


def is_removal(event_type: str, data: Mapping[str, Any]) -> bool:
    """True for a drift event that carries neither a Kubernetes nor a Slurm view."""
    return (
        event_type == EventType.DRIFT
        and data.get("kubernetes") is None
        and data.get("slurm") is None
    )
