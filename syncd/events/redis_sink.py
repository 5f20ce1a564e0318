"""Delivers events to a Redis stream (XADD ... MAXLEN ~), optionally also on a channel.

Each stream entry carries the whole CloudEvent in ``event`` and, for server-side-free
filtering by readers, ``type``, ``subject``, ``id`` and ``sequence``. A batch is one
``EVALSHA`` of a small Lua script that XADDs every event in order (one command, one reply),
or, where the server or the ACL user refuses scripts, a non-transactional pipeline of XADDs:
one round trip either way. redis-py's own retries are switched off, because re-running a
half-applied batch is the outbox's decision (it re-sends from the cursor, which is the
at-least-once contract).

TLS is the ``rediss://`` scheme; a password goes in the URL (``redis://:secret@host``); a CA
file as ``?ssl_ca_certs=/path/ca.pem`` (redis-py passes unknown URL query arguments to the
connection).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoPermissionError, RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from syncd.events.sinks import SinkError
from syncd.events.spool import SpooledEvent
from syncd.settings.events import RedisSink

__all__ = ["RedisStreamSink", "redact"]

log = logging.getLogger("syncd.events.outbox")

#: Every event of a batch as its own stream entry, in order, in one command and one reply.
#: KEYS[1] is the stream; ARGV: maxlen, the PUBLISH channel ('' for none), then the batch as
#: one string: five fields per event, each ended by a newline. One argument instead of five
#: per event because redis-py packs every argument in Python (~3 µs each; a pipeline of XADDs
#: costs ~20 µs per event). No field holds a newline: JSON escapes it inside the event,
#: and the other four are a type, a node name, an id and a number (checked by ``_frame``).
_XADD_ALL = """
local channel = ARGV[2]
local blob = ARGV[3]
local pos, n, f = 1, 0, {}
while pos <= #blob do
  for k = 1, 5 do
    local stop = string.find(blob, '\\n', pos, true)
    f[k] = string.sub(blob, pos, stop - 1)
    pos = stop + 1
  end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', f[1], 'type', f[2],
             'subject', f[3], 'id', f[4], 'sequence', f[5])
  if channel ~= '' then
    redis.call('PUBLISH', channel, f[1])
  end
  n = n + 1
end
return n
"""


def _frame(batch: Sequence[SpooledEvent]) -> str | None:
    """The batch as the script's one string, or None if a field holds a newline."""
    parts: list[str] = []
    for e in batch:
        parts += (e.body, e.type, e.subject, e.id, str(e.seq))
    text = "\n".join(parts) + "\n"
    if text.count("\n") != len(parts):
        return None
    return text


def _scripts_refused(exc: ResponseError) -> bool:
    """The server (or the ACL user) does not run scripts: EVALSHA or SCRIPT not allowed."""
    text = str(exc).lower()
    return isinstance(exc, NoPermissionError) or any(
        words in text for words in ("noperm", "no permissions", "unknown command"))


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
        self._script: AsyncScript | None = None
        self._scripts = True  # until the server refuses them

    def _connect(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.from_url(
                self.settings.url,
                socket_connect_timeout=self.settings.timeout,
                socket_timeout=self.settings.timeout,
                retry=Retry(NoBackoff(), 0),
            )
        return self._client

    async def send(self, batch: Sequence[SpooledEvent],
                   superseded: frozenset[str] = frozenset()) -> None:
        client = self._connect()
        try:
            if self._scripts:
                try:
                    await self._script_send(client, batch)
                    return
                except ResponseError as exc:
                    if not _scripts_refused(exc):
                        raise
                    log.warning("outbox: redis refuses Lua scripts (%s); sending each event "
                                "as its own XADD in a pipeline", exc)
                    self._scripts = False
            await self._pipeline_send(client, batch)
        except (RedisError, OSError) as exc:
            await self.close()
            raise SinkError(f"redis {redact(self.settings.url)}: {exc}") from exc

    async def _script_send(self, client: aioredis.Redis, batch: Sequence[SpooledEvent]) -> None:
        """The batch as one EVALSHA (NOSCRIPT: loaded and run again by redis-py)."""
        if self._script is None:
            self._script = client.register_script(_XADD_ALL)
        frame = _frame(batch)
        if frame is None:
            await self._pipeline_send(client, batch)
            return
        await self._script(keys=[self.settings.stream],
                           args=[self.settings.maxlen, self.settings.publish_channel, frame])

    async def _pipeline_send(self, client: aioredis.Redis, batch: Sequence[SpooledEvent]
                             ) -> None:
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
        await pipe.execute(raise_on_error=True)

    async def close(self) -> None:
        client, self._client, self._script = self._client, None, None
        if client is not None:
            # An error here means the connection is already gone: nothing left to release.
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
