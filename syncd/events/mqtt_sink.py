"""Delivers events over MQTT: an event stream, retained per-node state, and a status topic.

Topics under ``<prefix>`` (``mqtt.topic_prefix``):

- ``<prefix>/events``: every event, QoS 1, not retained, as a structured-mode CloudEvent
  (https://github.com/cloudevents/spec/blob/v1.0/mqtt-protocol-binding.md, MQTT 3.1.1).
  With ``mqtt.stream: batches`` instead ``<prefix>/batches``: each delivery batch as one QoS 1
  message holding a JSON array of those events, in order (the JSON batch format,
  https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md#4-json-batch-format),
  split so that a message stays within ``mqtt.batch_bytes`` unless one event alone is larger.
  A QoS 1 publish costs ~140 µs of this process's CPU in aiomqtt and paho, several times the
  rest of an event's delivery (docs/events.md, "Benchmark").
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
import socket
from collections.abc import Awaitable, Sequence
from contextlib import AsyncExitStack, suppress

import aiomqtt

from syncd.events.envelope import is_removal
from syncd.events.rows import STATE_TYPES
from syncd.events.sinks import SinkError
from syncd.events.spool import SpooledEvent
from syncd.settings.events import MqttSink

__all__ = ["MqttEventSink", "json_arrays", "node_segment"]

#: QoS 1 messages awaited together. aiomqtt's bookkeeping costs O(n) per publish for n
#: pending ones, so a few hundred at once is slower than several rounds of this many.
IN_FLIGHT = 100
ONLINE = b"online"
OFFLINE = b"offline"
_UNSAFE = str.maketrans({c: "_" for c in "+#/\0"})


def node_segment(node: str) -> str:
    """``node`` as one safe topic level (no wildcards, no separators, never empty)."""
    return node.translate(_UNSAFE) or "_"


class MqttEventSink:
    """One MQTT broker connection (aiomqtt), opened on the first send and after a failure."""

    def __init__(self, settings: MqttSink, *, client_id: str, name: str = "mqtt") -> None:
        self.name = name
        self.settings = settings
        self.client_id = client_id
        prefix = settings.topic_prefix.rstrip("/")
        self.events_topic = f"{prefix}/events"
        self.batches_topic = f"{prefix}/batches"
        self.status_topic = f"{prefix}/status"
        self.nodes_prefix = f"{prefix}/nodes/"
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None

    def node_topic(self, node: str) -> str:
        return self.nodes_prefix + node_segment(node)

    async def _connect(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        s = self.settings
        tls = None
        if s.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=s.ca_file or None, certfile=s.cert_file or None, keyfile=s.key_file or None
            )
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username or None,
            password=s.password or None,
            identifier=self.client_id,
            will=aiomqtt.Will(self.status_topic, OFFLINE, qos=1, retain=True),
            clean_session=True,
            timeout=s.timeout,
            keepalive=s.keepalive,
            max_inflight_messages=100,
            tls_params=tls,
            # Small QoS 1 messages and their PUBACKs otherwise wait on Nagle and delayed
            # ACKs (~40 ms per round trip on Linux).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # aiomqtt logs a warning per batch above this many unconfirmed publishes; a batch
        # of QoS 1 messages in flight is exactly what we want.
        client.pending_calls_threshold = 1 << 30
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(client)
            await client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            await _quietly(stack.aclose())
            raise SinkError(f"mqtt {s.host}:{s.port}: {exc}") from exc
        self._stack, self._client = stack, client
        return client

    async def send(self, batch: Sequence[SpooledEvent],
                   superseded: frozenset[str] = frozenset()) -> None:
        client = await self._connect()
        messages: list[tuple[str, bytes, bool]]
        if self.settings.stream == "batches":
            messages = [(self.batches_topic, body, False)
                        for body in json_arrays(batch, self.settings.batch_bytes)]
        else:
            messages = [(self.events_topic, e.body.encode(), False) for e in batch]
        # Only the newest state of a node survives as the retained message, so a batch
        # publishes one state per node, after its events.
        # Newest first, so each node's body is decoded once however many events it has here.
        # A node with a newer event already in the spool gets its state from that event's
        # batch: while a backlog drains, a node's retained state is published once, not once
        # per batch (a QoS 1 message costs ~140 µs here; docs/events.md).
        newest: dict[str, bytes] = {}
        for event in reversed(batch):
            if event.subject and event.type in STATE_TYPES and event.subject not in superseded:
                topic = self.node_topic(event.subject)
                if topic not in newest:
                    data = json.loads(event.body).get("data", {})
                    removed = is_removal(event.type, data)
                    newest[topic] = b"" if removed else event.body.encode()
        messages += [(topic, newest[topic], True) for topic in reversed(newest)]
        for start in range(0, len(messages), IN_FLIGHT):
            await self._publish_all(client, messages[start:start + IN_FLIGHT])

    async def _publish_all(
        self, client: aiomqtt.Client, messages: Sequence[tuple[str, bytes, bool]]
    ) -> None:
        """QoS 1 publishes in flight together; returns when the broker acked every one.

        Each publish() hands its message to paho before its first await, and gather starts
        them in order, so the wire order is the list order.
        """
        calls = [client.publish(t, payload, qos=1, retain=r) for t, payload, r in messages]
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self._drop()
            raise SinkError(f"mqtt {self.settings.host}:{self.settings.port}: {failed[0]}")

    async def close(self) -> None:
        """Say ``offline`` (retained) and disconnect cleanly, so the Will is not needed."""
        if self._client is not None:
            await _quietly(
                self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True, timeout=2)
            )
        await self._drop()

    async def _drop(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await _quietly(stack.aclose())


def json_arrays(batch: Sequence[SpooledEvent], limit: int) -> list[bytes]:
    """The events' bodies as JSON arrays of at most ``limit`` bytes each, in order; an event
    larger than ``limit`` is an array of its own."""
    out: list[bytes] = []
    part: list[bytes] = []
    size = 2
    for event in batch:
        body = event.body.encode()
        if part and size + len(body) + 1 > limit:
            out.append(b"[" + b",".join(part) + b"]")
            part, size = [], 2
        part.append(body)
        size += len(body) + 1
    if part:
        out.append(b"[" + b",".join(part) + b"]")
    return out


async def _quietly(call: Awaitable[object]) -> None:
    """Await ``call``, ignoring broker errors: used only when the connection is being dropped."""
    with suppress(TimeoutError, aiomqtt.MqttError, OSError):
        await call
