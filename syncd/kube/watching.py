"""List-then-watch of one resource, read raw, surviving every way a watch can break.

The loop follows the API concepts page
(https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):
list (paginated with ``limit``/``continue``), then watch from the list's resourceVersion; the
resourceVersion advances with every event, bookmarks included (a bookmark's object is a plain
dict with only ``metadata.resourceVersion``); a clean end of the stream (``timeoutSeconds``)
re-watches from there; an ``ERROR`` 410 (or a 410 list page) means the history is gone, so it
relists; a "Too large resource version" (the server restarted with a fresh store) relists too.
Any other failure is retried with jittered exponential back-off that starts again from the
beginning once a list or watch succeeds, so a long-lived watch that breaks is retried at once.
An outage is logged once when it starts and once when it ends, not at every retry.

Responses are read with ``_preload_content=False`` and decoded (:mod:`syncd.kube.decode`) into
slim records:
kubernetes-asyncio's model objects cost ~10x more (docs/facts/kubernetes.md §1). kubernetes
-asyncio's ``Watch`` is not used because it retries a 410 once with the same stale version.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from syncd.kube.decode import PLAIN, Decoding

log = logging.getLogger(__name__)

ListFn = Callable[..., Awaitable[Any]]
_CHUNK = 500  # list items parsed between two yields to the event loop


@dataclass(slots=True)
class WatchStats:
    """Counters of one watcher, for metrics and tests."""

    lists: int = 0
    relists: int = 0
    watch_restarts: int = 0
    gone_410: int = 0
    events: int = 0
    skipped: int = 0
    requests: int = 0
    errors: int = 0


class Gone(Exception):
    """The resourceVersion is no longer (or not yet) served: relist."""


class StatusError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        self.status = status


def _short(exc: BaseException) -> str:
    """One line for a log: aiohttp's connection errors repr over several lines."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class Reflector:
    """Keeps one resource in step; ``apply``/``replace`` receive raw dicts."""

    def __init__(
        self, *, kind: str, list_fn: ListFn, stats: WatchStats, page_size: int,
        watch_timeout: float, backoff_initial: float, backoff_max: float,
        begin_list: Callable[[], None], list_item: Callable[[dict[str, Any]], None],
        end_list: Callable[[], None], apply: Callable[[str, dict[str, Any]], None],
        clock: Callable[[], float], selector: str = "",
        on_recover: Callable[[], None] | None = None, decoding: Decoding = PLAIN,
    ) -> None:
        self.kind = kind
        self.list_fn = list_fn
        self.stats = stats
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.begin_list, self.list_item, self.end_list = begin_list, list_item, end_list
        self.apply = apply
        self.clock = clock
        self.selector = selector
        self.on_recover = on_recover
        self.decoding = decoding
        self.rv: str | None = None
        self.listed = False
        self.broken_since: float | None = None
        self.failures = 0  # consecutive, since the last success

    def _kwargs(self) -> dict[str, Any]:
        return {"label_selector": self.selector} if self.selector else {}

    async def _read(self, resp: Any) -> bytes:
        try:
            body: bytes = await resp.read()
        finally:
            resp.release()
        if resp.status == 410:
            raise Gone(body[:200].decode(errors="replace"))
        if resp.status != 200:
            raise StatusError(resp.status, body)
        return body

    async def _page(self, token: str | None) -> Any:
        self.stats.requests += 1
        resp = await self.list_fn(
            limit=self.page_size, _continue=token, _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(total=120, sock_connect=10),
            **self._kwargs())
        return self.decoding.page(await self._read(resp))

    async def list(self) -> None:
        """A full, paginated list; the state is replaced only once every page has arrived.

        The next page is asked for before this one is parsed, and parsing yields to the loop
        every ``_CHUNK`` items, so the server prepares a page while the last one is read.
        """
        self.begin_list()
        fetch = asyncio.ensure_future(self._page(None))
        try:
            while True:
                doc = await fetch
                meta = doc.get("metadata") or {}
                token = meta.get("continue") or None
                if token is not None:
                    fetch = asyncio.ensure_future(self._page(token))
                for i, item in enumerate(doc.get("items") or ()):
                    self.list_item(item)
                    if i % _CHUNK == _CHUNK - 1:
                        await asyncio.sleep(0)
                if token is None:
                    break
        finally:
            if not fetch.done():
                fetch.cancel()
            elif not fetch.cancelled():
                fetch.exception()  # retrieved: a page failing after an earlier one failed
        rv = meta.get("resourceVersion")
        if rv is None:
            raise ValueError(f"{self.kind} list without metadata.resourceVersion")
        self.end_list()
        self.rv = str(rv)
        self.stats.lists += 1
        self.listed = True
        self._succeeded()

    def _succeeded(self) -> None:
        self.failures = 0
        if self.broken_since is not None:
            self.broken_since = None
            log.info("%s watch working again", self.kind)
            if self.on_recover is not None:
                self.on_recover()

    async def watch_once(self) -> None:
        """One watch connection; returns on a clean end, raises Gone or a transient error."""
        assert self.rv is not None
        self.stats.requests += 1
        resp = await self.list_fn(
            watch=True, resource_version=self.rv, allow_watch_bookmarks=True,
            timeout_seconds=int(self.watch_timeout), _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(
                sock_connect=10, sock_read=self.watch_timeout + 30),
            **self._kwargs())
        try:
            if resp.status != 200:
                await self._read(resp)
            self._succeeded()
            while True:
                line = await resp.content.readline()
                if not line:
                    return  # timeoutSeconds passed: the server ended the body cleanly
                if line.strip():
                    self._event(self.decoding.event(line))
        finally:
            resp.release()

    def _event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code, reason = obj.get("code"), obj.get("reason", "")
            message = str(obj.get("message", ""))
            if code == 410 or reason in ("Expired", "Gone") or (
                    code == 504 and "Too large resource version" in message):
                raise Gone(message)
            raise StatusError(int(code or 500), message.encode())
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind != "BOOKMARK":
            self.stats.events += 1
            self.apply(str(kind), obj)
        if rv:
            self.rv = str(rv)

    async def _cycle(self) -> None:
        try:
            if self.rv is None:
                await self.list()
            await self.watch_once()
            self.stats.watch_restarts += 1
        except Gone as exc:
            log.info("%s: resourceVersion %s gone (%s); relisting", self.kind, self.rv, exc)
            self.stats.gone_410 += 1
            self.stats.relists += 1
            self.rv = None

    def backoff(self) -> float:
        """The wait before the next attempt: full jitter over an exponential bound."""
        bound = min(self.backoff_max, self.backoff_initial * 2 ** max(0, self.failures - 1))
        return random.uniform(bound / 2, bound)

    def _failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.watch_restarts += 1
        self.failures += 1
        if self.broken_since is None:
            self.broken_since = self.clock()
            log.warning("%s watch broken: %s; retrying (back-off up to %gs)", self.kind,
                        _short(exc), self.backoff_max)
        else:
            log.debug("%s watch still broken: %s", self.kind, _short(exc))

    async def run(self) -> None:
        """Until cancelled; API errors are logged, counted and retried, never raised."""
        while True:
            try:
                await self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the daemon keeps a (stale, flagged) view, never dies
                self._failed(exc)
                await asyncio.sleep(self.backoff())
            else:
                await asyncio.sleep(0)
