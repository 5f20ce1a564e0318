"""The simulator's etcd plus watch cache: objects, one global resourceVersion, event history.

Stored objects are never mutated: every write stores a new dict together with its JSON text,
so a list is a join of ready-made bytes (100,000 pods in well under a second) and a paginated
list can serve a consistent snapshot (the first page's revision, as the real server does) by
keeping a list of references. The history window bounds which resourceVersions a watch may
start from; older ones get 410 Gone
(https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
"""

from __future__ import annotations

import asyncio
import bisect
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

Key = tuple[str, str]  # (namespace or "", name)


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class Stored:
    """One object version: the dict (read-only by convention) and its JSON body."""

    __slots__ = ("data", "key", "raw", "rv")

    def __init__(self, key: Key, data: dict[str, Any], rv: int) -> None:
        self.key = key
        self.data = data
        self.rv = rv
        self.raw = dumps(data)


class Event:
    __slots__ = ("obj", "plural", "prev", "rv", "type")

    def __init__(self, type_: str, plural: str, obj: Stored, prev: Stored | None) -> None:
        self.type = type_
        self.plural = plural
        self.obj = obj
        self.prev = prev
        self.rv = obj.rv


class Watcher:
    """One open watch connection; the store pushes every event of its resource here."""

    __slots__ = ("dropped", "gone", "plural", "queue")

    def __init__(self, plural: str) -> None:
        self.plural = plural
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.dropped = False  # connection to be cut without a clean end
        self.gone = False  # history compacted under this watch: send ERROR 410 and end

    def wake(self) -> None:
        # An empty event list cannot be queued; a None-free wake-up is a zero-size sentinel.
        self.queue.put_nowait(_WAKE)


_WAKE: Event = Event.__new__(Event)


class Store:
    def __init__(self, *, history: int = 200_000, start_rv: int = 1) -> None:
        self.history_limit = history
        self.rv = start_rv
        self.floor = start_rv  # a watch may start from any rv >= floor
        self.objects: dict[str, dict[Key, Stored]] = {}
        self._sorted: dict[str, list[Key] | None] = {}
        self._history: list[Event] = []
        self._hist_start = 0
        self._snapshots: OrderedDict[tuple[str, int], tuple[list[Key], list[Stored]]] = (
            OrderedDict())
        self.watchers: set[Watcher] = set()

    # -- reads -------------------------------------------------------------------------------
    def table(self, plural: str) -> dict[Key, Stored]:
        return self.objects.setdefault(plural, {})

    def get(self, plural: str, key: Key) -> Stored | None:
        return self.table(plural).get(key)

    def sorted_keys(self, plural: str) -> list[Key]:
        keys = self._sorted.get(plural)
        if keys is None:
            keys = sorted(self.table(plural))
            self._sorted[plural] = keys
        return keys

    def snapshot(self, plural: str, rv: int | None = None) -> tuple[int, list[Key], list[Stored]]:
        """Keys and objects in list order, at ``rv`` if that snapshot is still kept."""
        if rv is not None:
            kept = self._snapshots.get((plural, rv))
            if kept is not None:
                return rv, kept[0], kept[1]
        keys = self.sorted_keys(plural)
        table = self.table(plural)
        return self.rv, keys, [table[k] for k in keys]

    def keep_snapshot(self, plural: str, rv: int, keys: list[Key], objs: list[Stored]) -> None:
        self._snapshots[(plural, rv)] = (keys, objs)
        self._snapshots.move_to_end((plural, rv))
        while len(self._snapshots) > 8:
            self._snapshots.popitem(last=False)

    def events_since(self, rv: int) -> list[Event]:
        hist = self._history
        i = bisect.bisect_right(hist, rv, lo=self._hist_start, key=lambda e: e.rv)
        return hist[i:]

    # -- writes ------------------------------------------------------------------------------
    def put(self, plural: str, key: Key, data: dict[str, Any]) -> Stored:
        """Create or replace; ``data`` must be a fresh dict (its metadata is copied here)."""
        table = self.table(plural)
        prev = table.get(key)
        self.rv += 1
        data = dict(data)
        data["metadata"] = meta = dict(data["metadata"])
        meta["resourceVersion"] = str(self.rv)
        obj = Stored(key, data, self.rv)
        table[key] = obj
        if prev is None:
            self._sorted[plural] = None
        self._emit(Event("MODIFIED" if prev else "ADDED", plural, obj, prev))
        return obj

    def remove(self, plural: str, key: Key, last: dict[str, Any] | None = None) -> Stored:
        """Delete; the DELETED event carries the last state with the delete's revision."""
        table = self.table(plural)
        prev = table.pop(key)
        self._sorted[plural] = None
        self.rv += 1
        data = dict(last if last is not None else prev.data)
        data["metadata"] = meta = dict(data["metadata"])
        meta["resourceVersion"] = str(self.rv)
        obj = Stored(key, data, self.rv)
        self._emit(Event("DELETED", plural, obj, prev))
        return obj

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        excess = len(self._history) - self._hist_start - self.history_limit
        if excess > 0:
            self._hist_start += excess
            self.floor = self._history[self._hist_start - 1].rv
            if self._hist_start > self.history_limit:
                del self._history[: self._hist_start]
                self._hist_start = 0
        for w in self.watchers:
            if w.plural == event.plural:
                w.queue.put_nowait(event)

    def compact(self) -> None:
        """Forget all history: every watch from an older rv, open ones included, gets 410."""
        self.rv += 1
        self.floor = self.rv
        self._history = []
        self._hist_start = 0
        self._snapshots.clear()
        for w in self.watchers:
            w.gone = True
            w.wake()

    def drop_watches(self, match: Callable[[Watcher], bool] = lambda w: True) -> int:
        dropped = 0
        for w in self.watchers:
            if match(w):
                w.dropped = True
                w.wake()
                dropped += 1
        return dropped

    def load(self, rv: int, objects: dict[str, list[dict[str, Any]]]) -> None:
        """Start over as an API server restarted on a kept etcd: the objects and revision as
        saved, an empty watch cache (so every older resourceVersion is too old)."""
        self.reset(rv)
        for plural, items in objects.items():
            table = self.table(plural)
            for data in items:
                meta = data["metadata"]
                key = (str(meta.get("namespace") or ""), str(meta["name"]))
                obj_rv = int(meta["resourceVersion"])
                table[key] = Stored(key, data, obj_rv)
                self.rv = max(self.rv, obj_rv)
        self.floor = self.rv

    def reset(self, start_rv: int = 1) -> None:
        """Forget everything, as a fresh apiserver on a fresh etcd; open watches are cut."""
        self.drop_watches()
        self.rv = start_rv
        self.floor = start_rv
        self.objects.clear()
        self._sorted.clear()
        self._history = []
        self._hist_start = 0
        self._snapshots.clear()
