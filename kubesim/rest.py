"""Reads of the REST API: routing, get, and list with resourceVersion semantics and paging.

List semantics follow https://kubernetes.io/docs/reference/using-api/api-concepts/ and the
recordings: no resourceVersion is a consistent read of the newest state; ``0`` means "any" and
ignores ``limit`` (47); ``Exact`` for a compacted revision is HTTP 410 (43); ``NotOlderThan`` with
an old revision is 200 with current data (44); a future revision is 504 after a wait (48);
a continue token whose snapshot was compacted is 410 with a fresh token (46); a bad or
future one is refused as described in :mod:`kubesim.tokens`.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubesim import errors, tokens
from kubesim.kinds import KINDS, Kind
from kubesim.selectors import Filter, make_filter
from kubesim.state import Sim
from kubesim.store import Key, Stored, dumps
from kubesim.tables import table, wants_table

_TRUE = frozenset({"true", "True", "1"})


@dataclass(frozen=True, slots=True)
class Target:
    kind: Kind
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str = ""
    sub: str = ""

    def key(self) -> Key:
        return (self.namespace or "", self.name)


class UnknownGroup(Exception):
    """/apis/<group> that is not served: a plain-text 404, not a Status (recording 77)."""


def route(path: str) -> Target | None:
    """Map a resource path to its target; None when it is not a resource path."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
        if parts[2] != "v1" or not any(k.group == group for k in KINDS.values()):
            raise UnknownGroup(path)
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    kind = KINDS.get(rest[0])
    if kind is None or kind.group != group or len(rest) > 3:
        raise errors.NOT_FOUND_RESOURCE
    if namespace is not None and not kind.namespaced:
        raise errors.NOT_FOUND_RESOURCE
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and (sub != "status" or not kind.has_status):
        raise errors.NOT_FOUND_RESOURCE
    if name and kind.namespaced and namespace is None:
        raise errors.NOT_FOUND_RESOURCE
    return Target(kind, namespace, name, sub)


def is_true(value: str | None) -> bool:
    return value in _TRUE


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json")


def object_bytes(kind: Kind, obj: Stored) -> bytes:
    """The stored body with kind/apiVersion spliced in front (objects always have metadata)."""
    return kind.prefix + obj.raw[1:]


def object_response(kind: Kind, obj: Stored, status: int = 200) -> web.Response:
    return web.Response(body=object_bytes(kind, obj), status=status,
                        content_type="application/json")


def get_object(sim: Sim, target: Target) -> Stored:
    obj = sim.store.get(target.kind.plural, target.key())
    if obj is None:
        raise errors.not_found(target.kind.plural, target.kind.group, target.name)
    return obj


async def wait_for_rv(sim: Sim, wanted: int) -> None:
    """A future revision is waited for, then refused with 504 (recording 48)."""
    deadline = time.monotonic() + sim.config.too_large_wait
    while sim.store.rv < wanted:
        if time.monotonic() >= deadline:
            raise errors.too_large(wanted, sim.store.rv)
        await asyncio.sleep(0.05)


def parse_rv(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise errors.bad_request(f"resourceVersion: Invalid value: {text!r}") from exc


async def list_objects(sim: Sim, target: Target, request: web.Request) -> web.Response:
    q = request.query
    kind, store = target.kind, sim.store
    flt = make_filter(kind, target.namespace, q.get("labelSelector", ""),
                      q.get("fieldSelector", ""))
    rv_text, match = q.get("resourceVersion", ""), q.get("resourceVersionMatch", "")
    if match and not rv_text:
        raise errors.ApiError(
            422, "Invalid",
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
            {"group": "meta.k8s.io", "kind": "ListOptions", "causes": [{
                "reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                "message": "Forbidden: resourceVersionMatch is forbidden unless "
                           "resourceVersion is provided"}]})
    limit = int(q.get("limit") or 0)
    if q.get("continue") and rv_text and rv_text != "0":
        raise errors.bad_request("specifying resource version is not allowed when using continue")
    if rv_text and rv_text != "0":
        wanted = parse_rv(rv_text)
        if wanted > store.rv:
            await wait_for_rv(sim, wanted)
        if match == "Exact" and wanted < store.floor:
            raise errors.expired("The resourceVersion for the provided list is too old.")
    if rv_text == "0" and not q.get("continue"):
        limit = 0  # served from the watch cache: limit is ignored (recording 47)
    start: Key | None = None
    snap_rv: int | None = None
    if q.get("continue"):
        snap_rv, start = tokens.decode(q["continue"], kind.namespaced)
        if snap_rv > store.rv:
            raise tokens.future_revision()
        if 0 <= snap_rv < store.floor:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue "
                "token in this response to retrieve the remainder of the results. Continuing with "
                "the provided token results in an inconsistent list - objects that were created, "
                "modified, or deleted between the time the first chunk was returned and now may "
                "show up in the list.", tokens.encode(-1, start))
        if snap_rv < 0:
            snap_rv = None
    rv, keys, objs = store.snapshot(kind.plural, snap_rv)
    index = bisect.bisect_right(keys, start) if start is not None else 0
    items, next_start, remaining = _page(objs, index, limit, flt)
    token = ""
    if next_start is not None:
        token = tokens.encode(rv, next_start)
        store.keep_snapshot(kind.plural, rv, keys, objs)
    if wants_table(request.headers.get("Accept", "")):
        return json_response(table(kind.plural, (o.data for o in items), str(rv), token))
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if token:
        meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    head = dumps({"kind": kind.list_kind, "apiVersion": kind.api_version, "metadata": meta})
    body = b"".join([head[:-1], b',"items":[', b",".join(o.raw for o in items), b"]}"])
    return web.Response(body=body, content_type="application/json")


def _page(objs: list[Stored], index: int, limit: int,
          flt: Filter) -> tuple[list[Stored], Key | None, int | None]:
    """Items of one page, the key to continue after, and remainingItemCount when it is known.

    remainingItemCount is left out for selector queries, as the API documents
    (ListMeta.remainingItemCount: "not set if the list request contained label or field
    selectors").
    """
    if flt.everything:
        end = len(objs) if limit <= 0 else min(len(objs), index + limit)
        items = objs[index:end]
        if end < len(objs):
            return items, objs[end - 1].key if items else None, len(objs) - end
        return items, None, None
    items = []
    for i in range(index, len(objs)):
        if flt.matches(objs[i].data):
            if 0 < limit <= len(items):
                more = any(flt.matches(o.data) for o in objs[i:])
                return items, (items[-1].key if more else None), (
                    None if flt.selects else sum(1 for o in objs[i:] if flt.matches(o.data)))
            items.append(objs[i])
    return items, None, None
