"""The MQTT 3.1.1 client the MQTT sink needs, and no more: connect, publish at QoS 1, keep alive.

Why not a general client: paho (under aiomqtt) spends ~100 µs of Python per QoS 1 message (a
message object with a ``threading.Condition``, a future and a timer per publish, one
``recv`` per PUBACK field); the events topic needs tens of thousands a second. A publisher
that only publishes is small: a batch becomes one ``write`` of PUBLISH packets and completes
when the broker has sent a PUBACK for each (spec sections 3.1-3.4, 3.12-3.14,
https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html). The broker sends
PUBACKs in the order of the PUBLISH packets (section 4.6), and TCP keeps the wire order, so
the order of a batch is the order on the topic. There is no subscribing, no QoS 2 and no
session resumption (clean session): a lost connection fails the batch, and the outbox sends
it again on a new connection (at-least-once).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Message", "MqttError", "Publisher", "WireOptions"]

#: (topic, payload, retain): one PUBLISH at QoS 1.
Message = tuple[str, bytes, bool]

_CONNACK, _PUBACK, _PINGRESP = 2, 4, 13
_PINGREQ, _DISCONNECT = b"\xc0\x00", b"\xe0\x00"
_REFUSED = {1: "unacceptable protocol version", 2: "identifier rejected",
            3: "server unavailable", 4: "bad user name or password", 5: "not authorized"}


class MqttError(Exception):
    """The connection failed, was refused or lost, or the broker did not acknowledge in time."""


@dataclass(frozen=True, slots=True)
class WireOptions:
    host: str
    port: int
    client_id: str
    will: tuple[str, bytes] | None = None  # retained, QoS 1
    username: str = ""
    password: str = ""
    keepalive: int = 30
    timeout: float = 10.0  # connect, CONNACK, and the longest wait without a PUBACK
    tls: ssl.SSLContext | None = None


def _length(n: int) -> bytes:
    """The remaining-length field (section 2.2.3)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def connect_packet(o: WireOptions) -> bytes:
    flags, payload = 0x02, _field(o.client_id.encode())  # clean session
    if o.will is not None:
        flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain
        payload += _field(o.will[0].encode()) + _field(o.will[1])
    if o.username:
        flags |= 0x80
        payload += _field(o.username.encode())
        if o.password:
            flags |= 0x40
            payload += _field(o.password.encode())
    body = _field(b"MQTT") + bytes((4, flags)) + o.keepalive.to_bytes(2, "big") + payload
    return b"\x10" + _length(len(body)) + body


class Publisher(asyncio.Protocol):
    """One connection; :meth:`publish` may be awaited by one task at a time."""

    def __init__(self, options: WireOptions) -> None:
        self.options = options
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._connack: asyncio.Future[int] = self._loop.create_future()
        self._pending: set[int] = set()
        self._acked = 0
        self._drained = asyncio.Event()
        self._lost: str = ""
        self._next_id = 0
        self._pinged = False
        self.pongs = 0  # PINGRESPs received
        self._ping_timer: asyncio.TimerHandle | None = None
        self._topics: dict[str, bytes] = {}

    @classmethod
    async def connect(cls, options: WireOptions) -> Publisher:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(options.timeout):
                _, client = await loop.create_connection(
                    lambda: cls(options), options.host, options.port, ssl=options.tls)
                client.write(connect_packet(options))
                code = await client._connack
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise MqttError(f"cannot connect: {type(exc).__name__}: {exc}") from exc
        if code:
            client.abort()
            raise MqttError(f"connection refused: {_REFUSED.get(code, code)}")
        client._schedule_ping()
        return client

    def write(self, data: bytes) -> None:
        if self._transport is None or self._lost:
            raise MqttError(self._lost or "not connected")
        self._transport.write(data)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send ``messages`` in order; return once the broker acknowledged every one."""
        packets: list[bytes] = []
        for topic, payload, retain in messages:
            head = self._topics.get(topic)
            if head is None:
                head = self._topics[topic] = _field(topic.encode())
            pid = self._next_id = self._next_id % 0xFFFF + 1
            self._pending.add(pid)
            size = len(head) + 2 + len(payload)
            packets += (b"\x33" if retain else b"\x32", _length(size), head,
                        pid.to_bytes(2, "big"), payload)
        self._drained.clear()
        self.write(b"".join(packets))
        while self._pending and not self._lost:
            seen = self._acked
            try:
                async with asyncio.timeout(self.options.timeout):
                    await self._drained.wait()
            except TimeoutError:
                if self._acked == seen:
                    self.abort()
                    raise MqttError(f"no PUBACK within {self.options.timeout}s") from None
        if self._pending:
            raise MqttError(self._lost)

    async def disconnect(self) -> None:
        """DISCONNECT (so the broker drops the will) and close."""
        if self._transport is not None and not self._lost:
            self._transport.write(_DISCONNECT)
            self._transport.close()
        self._stop_ping()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._stop_ping()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._lost or (f"connection lost: {exc}" if exc else "connection closed")
        self._stop_ping()
        if not self._connack.done():
            self._connack.set_exception(ConnectionError(self._lost))
        self._drained.set()

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        at, end = 0, len(buf)
        while end - at >= 2:
            size, shift, i = 0, 0, at + 1
            while i < end and buf[i] & 0x80:
                size |= (buf[i] & 0x7F) << shift
                shift, i = shift + 7, i + 1
            if i >= end:
                break
            size |= buf[i] << shift
            body = i + 1
            if end - body < size:
                break
            self._packet(buf[at] >> 4, buf[body:body + size])
            at = body + size
        del buf[:at]

    def _packet(self, kind: int, body: bytearray) -> None:
        if kind == _PUBACK and len(body) == 2:
            self._pending.discard((body[0] << 8) | body[1])
            self._acked += 1
            if not self._pending:
                self._drained.set()
        elif kind == _CONNACK and len(body) == 2 and not self._connack.done():
            self._connack.set_result(body[1])
        elif kind == _PINGRESP:
            self._pinged, self.pongs = False, self.pongs + 1
        else:  # a broker never sends anything else to a client that does not subscribe
            self._lost = f"protocol error: unexpected packet type {kind}"
            self.abort()

    # -- keepalive (section 3.1.2.10) ----------------------------------------------------

    def _schedule_ping(self) -> None:
        if self.options.keepalive:
            self._ping_timer = self._loop.call_later(self.options.keepalive / 2, self._ping)

    def _ping(self) -> None:
        if self._pinged:  # no PINGRESP for half a keepalive: the connection is dead
            self._lost = "no PINGRESP from the broker"
            self.abort()
            return
        self._pinged = True
        if self._transport is not None and not self._lost:
            self._transport.write(_PINGREQ)
        self._schedule_ping()

    def _stop_ping(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
