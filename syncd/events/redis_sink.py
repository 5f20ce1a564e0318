"""Delivers events to a Redis stream (XADD ... MAXLEN ~), optionally also on a channel.

Each stream entry carries the whole CloudEvent in ``event`` and, for server-side-free
filtering by readers, ``type``, ``subject``, ``id`` and ``sequence``. A batch is one
non-transactional pipeline: one round trip, entries in order. redis-py's own retries are
switched off, because re-running a half-applied pipeline is the outbox's decision (it
re-sends from the cursor, which is the at-least-once contract).

TLS is the ``rediss://`` scheme; a password goes in the URL (``redis://:secret@host``); a CA
file as ``?ssl_ca_certs=/path/ca.pem`` (redis-py passes unknown URL query arguments to the
connection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from syncd.events.sinks import SinkError
from syncd.events.spool import SpooledEvent
from syncd.settings.events import RedisSink

__all__ = ["RedisStreamSink", "redact"]


def redact(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = creds.partition(":")[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://***@{host}"


class RedisStreamSink:
    """One Redis stream (plus an optional PUBLISH channel for live views)."""

    def __init__(self, settings: RedisSink, *, name: str = "redis") -> None:
        self.name = name
        self.settings = settings
        self._client: aioredis.Redis | None = None

    def _connect(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.from_url(
                self.settings.url,
                socket_connect_timeout=self.settings.timeout,
                socket_timeout=self.settings.timeout,
                retry=Retry(NoBackoff(), 0),
            )
        return self._client

    async def send(self, batch: Sequence[SpooledEvent]) -> None:
        client = self._connect()
        pipe = client.pipeline(transaction=False)
        for event in batch:
            fields: dict[FieldT, EncodableT] = {
                "event": event.body,
                "type": event.type,
                "subject": event.subject,
                "id": event.id,
                "sequence": event.seq,
            }
            pipe.xadd(self.settings.stream, fields, maxlen=self.settings.maxlen, approximate=True)
            if self.settings.publish_channel:
                pipe.publish(self.settings.publish_channel, event.body)
        try:
            await pipe.execute(raise_on_error=True)
        except (RedisError, OSError) as exc:
            await self.close()
            raise SinkError(f"redis {redact(self.settings.url)}: {exc}") from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # An error here means the connection is already gone: nothing left to release.
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
