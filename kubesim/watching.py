"""Watch streams: one JSON event per line over a chunked HTTP 200 response.

Semantics from https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks and
recordings 40-50: no resourceVersion (or ``0``) starts with a synthetic ADDED per object; an rv
inside the history window replays what followed it; an rv older than the window answers 200
with one ``ERROR`` event carrying a 410 Status and ends; ``timeoutSeconds`` ends the body
cleanly; bookmarks (only with ``allowWatchBookmarks``) carry an empty object of the watched kind
and come about 2 s before the deadline and every ``bookmark_interval``. With a selector, an
object that stops matching is sent as DELETED and one that starts matching as ADDED, as the
watch cache does. A future rv is waited for, then answered with an ERROR event carrying the
504 "Too large resource version" Status, like a list (48); a client should relist.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from kubesim import errors
from kubesim.kinds import Kind
from kubesim.rest import Target, is_true, object_bytes, parse_rv, wait_for_rv
from kubesim.selectors import Filter, make_filter
from kubesim.state import Sim
from kubesim.store import _WAKE, Event, Stored, Watcher, dumps
from kubesim.tables import table, wants_table

_MAX_BATCH = 2000


def _line(kind: Kind, type_: str, obj: Stored, as_table: bool) -> bytes:
    if as_table:
        body = dumps(table(kind.plural, [obj.data], str(obj.rv)))
        return b'{"type":"' + type_.encode() + b'","object":' + body + b"}\n"
    return b'{"type":"' + type_.encode() + b'","object":' + object_bytes(kind, obj) + b"}\n"


def _filtered(ev: Event, flt: Filter) -> str | None:
    """The event type this watcher sees, or None (selector transitions as in the watch cache)."""
    if flt.everything:
        return ev.type
    now = flt.matches(ev.obj.data)
    before = ev.prev is not None and flt.matches(ev.prev.data)
    if ev.type == "DELETED":
        return "DELETED" if now or before else None
    if ev.type == "ADDED":
        return "ADDED" if now else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


async def watch(sim: Sim, target: Target, request: web.Request) -> web.StreamResponse:
    q = request.query
    kind, store = target.kind, sim.store
    flt = make_filter(kind, target.namespace, q.get("labelSelector", ""),
                      q.get("fieldSelector", ""))
    as_table = wants_table(request.headers.get("Accept", ""))
    bookmarks = is_true(q.get("allowWatchBookmarks"))
    timeout = float(q.get("timeoutSeconds") or sim.config.watch_timeout)
    deadline = time.monotonic() + timeout
    rv_text = q.get("resourceVersion", "")
    wanted = parse_rv(rv_text) if rv_text and rv_text != "0" else None

    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    sim.counters.watches_opened += 1

    if wanted is not None and wanted > store.rv:
        try:
            await wait_for_rv(sim, wanted)
        except errors.ApiError as exc:
            await resp.write(dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
            await resp.write_eof()
            return resp

    watcher = Watcher(kind.plural)
    store.watchers.add(watcher)
    try:
        if wanted is not None and wanted < store.floor:
            message = f"too old resource version: {wanted} ({store.floor})"
            await resp.write(dumps({"type": "ERROR", "object": errors.gone_status(message)})
                             + b"\n")
            await resp.write_eof()
            return resp
        if wanted is None:
            initial = [_line(kind, "ADDED", o, as_table)
                       for o in store.snapshot(kind.plural)[2] if flt.matches(o.data)]
        else:
            initial = [_line(kind, t, e.obj, as_table) for e in store.events_since(wanted)
                       if e.plural == kind.plural and (t := _filtered(e, flt)) is not None]
        for i in range(0, len(initial), _MAX_BATCH):
            await resp.write(b"".join(initial[i:i + _MAX_BATCH]))
        sim.counters.watch_events += len(initial)
        await _stream(sim, kind, watcher, flt, resp, request, deadline, bookmarks, as_table)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    finally:
        store.watchers.discard(watcher)
    return resp


async def _stream(sim: Sim, kind: Kind, watcher: Watcher, flt: Filter,
                  resp: web.StreamResponse, request: web.Request, deadline: float,
                  bookmarks: bool, as_table: bool) -> None:
    store = sim.store
    next_bookmark = min(time.monotonic() + sim.config.bookmark_interval, deadline - 2.0)
    while True:
        now = time.monotonic()
        if now >= deadline:
            await resp.write_eof()  # clean end, no final event (recording 41)
            return
        wake_at = min(deadline, next_bookmark) if bookmarks else deadline
        try:
            first = await asyncio.wait_for(watcher.queue.get(), max(0.0, wake_at - now))
        except TimeoutError:
            first = None
        batch = [] if first is None else [first]
        while not watcher.queue.empty() and len(batch) < _MAX_BATCH:
            batch.append(watcher.queue.get_nowait())
        if watcher.dropped:
            if request.transport is not None:
                request.transport.abort()  # cut mid-stream: no chunked terminator
            raise ConnectionResetError("watch dropped by scenario")
        lines = [_line(kind, t, ev.obj, as_table) for ev in batch
                 if ev is not _WAKE and (t := _filtered(ev, flt)) is not None]
        if watcher.gone:
            status = errors.gone_status(f"too old resource version: {store.floor - 1} "
                                        f"({store.floor})")
            lines.append(dumps({"type": "ERROR", "object": status}) + b"\n")
        if lines:
            await resp.write(b"".join(lines))
            sim.counters.watch_events += len(lines)
        if watcher.gone:
            await resp.write_eof()
            return
        if bookmarks and time.monotonic() >= next_bookmark and watcher.queue.empty():
            await send_bookmark(kind, store.rv, resp)
            next_bookmark = time.monotonic() + min(sim.config.bookmark_interval, 1.0
                                                   if deadline - time.monotonic() < 2.5 else
                                                   sim.config.bookmark_interval)


async def send_bookmark(kind: Kind, rv: int, resp: web.StreamResponse) -> None:
    await resp.write(dumps({"type": "BOOKMARK", "object": kind.bookmark(rv)}) + b"\n")
