"""Delivers events over MQTT: an event stream, retained per-node state, and a status topic.

Topics under ``<prefix>`` (``mqtt.topic_prefix``):

- ``<prefix>/events``: every event, QoS 1, not retained, as a structured-mode CloudEvent
  (https://github.com/cloudevents/spec/blob/v1.0/mqtt-protocol-binding.md, MQTT 3.1.1).
- ``<prefix>/nodes/<node>``: retained, QoS 1: the latest drift or action event of that node,
  so a dashboard that connects later sees every node's state at once. A drift with neither
  a Kubernetes nor a Slurm view (see :func:`syncd.events.envelope.node_removed`) clears it
  with an empty retained message, which is how MQTT deletes a retained message.
- ``<prefix>/status``: retained ``online`` once connected; ``offline`` on a clean shutdown,
  and as the connection's Will, which the broker publishes when syncd dies.

Node names become topic segments, so ``+``, ``#``, ``/`` and NUL are replaced by ``_``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from contextlib import suppress

from syncd.core.model import EventType
from syncd.events.envelope import is_removal
from syncd.events.mqtt_wire import Message, MqttError, Publisher, WireOptions
from syncd.events.sinks import SinkError
from syncd.events.spool import SpooledEvent
from syncd.settings.events import MqttSink

__all__ = ["MqttEventSink", "node_segment"]

#: Event types that update a node's retained state topic.
STATE_TYPES = frozenset({EventType.DRIFT, EventType.ACTION, EventType.ACTION_FAILED})
#: QoS 1 messages in flight at most (one write each, then their PUBACKs).
IN_FLIGHT = 2000
ONLINE = b"online"
OFFLINE = b"offline"
_UNSAFE = str.maketrans({c: "_" for c in "+#/\0"})


def newest_states(batch: Sequence[SpooledEvent]) -> dict[str, bytes]:
    """The retained payload of each node with a state event in ``batch``, from its newest
    one (empty when that one says the node is gone), in the order of those events."""
    newest: dict[str, SpooledEvent] = {}
    for event in batch:
        if event.subject and event.type in STATE_TYPES:
            newest.pop(event.subject, None)  # re-insert: dict order is the order of the newest
            newest[event.subject] = event
    states = {}
    for node, event in newest.items():
        removed = is_removal(event.type, json.loads(event.body).get("data", {}))
        states[node] = b"" if removed else event.body.encode()
    return states


def node_segment(node: str) -> str:
    """``node`` as one safe topic level (no wildcards, no separators, never empty)."""
    return node.translate(_UNSAFE) or "_"


class MqttEventSink:
    """One MQTT broker connection (:mod:`syncd.events.mqtt_wire`), opened on the first send
    and after a failure."""

    def __init__(self, settings: MqttSink, *, client_id: str, name: str = "mqtt") -> None:
        self.name = name
        self.settings = settings
        self.client_id = client_id
        prefix = settings.topic_prefix.rstrip("/")
        self.events_topic = f"{prefix}/events"
        self.status_topic = f"{prefix}/status"
        self.nodes_prefix = f"{prefix}/nodes/"
        self._client: Publisher | None = None

    def node_topic(self, node: str) -> str:
        return self.nodes_prefix + node_segment(node)

    def _options(self) -> WireOptions:
        s = self.settings
        tls = None
        if s.tls:  # verified against the system's CAs, or ca_file; host name checked
            tls = ssl.create_default_context(cafile=s.ca_file or None)
            if s.cert_file:
                tls.load_cert_chain(s.cert_file, s.key_file or None)
        return WireOptions(s.host, s.port, self.client_id, will=(self.status_topic, OFFLINE),
                           username=s.username, password=s.password, keepalive=s.keepalive,
                           timeout=s.timeout, tls=tls)

    async def _connect(self) -> Publisher:
        if self._client is not None:
            return self._client
        client = None
        try:
            client = await Publisher.connect(self._options())
            await client.publish([(self.status_topic, ONLINE, True)])
        except (MqttError, OSError) as exc:  # OSError: a TLS file that cannot be read
            if client is not None:
                client.abort()
            raise SinkError(f"mqtt {self.settings.host}:{self.settings.port}: {exc}") from exc
        self._client = client
        return client

    async def send(self, batch: Sequence[SpooledEvent]) -> None:
        client = await self._connect()
        messages: list[Message] = [(self.events_topic, e.body.encode(), False) for e in batch]
        # Only the newest state of a node survives as the retained message, so a batch
        # publishes one state per node, after its events.
        messages += [(self.node_topic(node), payload, True)
                     for node, payload in newest_states(batch).items()]
        try:
            for start in range(0, len(messages), IN_FLIGHT):
                await client.publish(messages[start:start + IN_FLIGHT])
        except MqttError as exc:
            await self._drop()
            raise SinkError(f"mqtt {self.settings.host}:{self.settings.port}: {exc}") from exc

    async def close(self) -> None:
        """Say ``offline`` (retained) and disconnect cleanly, so the Will is not needed."""
        if self._client is not None:
            with suppress(TimeoutError, MqttError):
                async with asyncio.timeout(2):
                    await self._client.publish([(self.status_topic, OFFLINE, True)])
        await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.disconnect()
