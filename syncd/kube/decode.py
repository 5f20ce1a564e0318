"""Decoding list pages and watch events into only the fields the parsers read.

A pod is ~2 KB of JSON, a third of it ``metadata.managedFields``; ``json.loads`` builds every
dict of it, ~55 µs a pod on this machine (5.6 s for 100,000 pods: most of a first sync).
msgspec decoding into typed structs that name only the fields syncd reads skips the rest without
building anything (~5 µs a pod). The structs answer ``get`` as a dict does (a field absent from
the JSON is absent, an explicit ``null`` is ``None``), so the parsers (records.py, podgpu.py,
slurmd.py) read them exactly as they read ``json.loads`` output.

Anything the typed decoders refuse (a field of an unexpected type, NaN, a number past 64 bits)
and every ``ERROR`` event is decoded again with ``json.loads``: the fallback is the old path, so
a malformed object is skipped and counted by the parsers as before, never allowed to fail a page.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

Field = Any | UnsetType


class _Obj(msgspec.Struct, gc=False):
    """A decoded JSON object with only some of its keys; ``get`` as ``dict.get``.

    Asking for a key the struct does not declare raises AttributeError instead of answering
    None: a parser that starts reading a new field fails loudly until the field is added here.
    """

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key)
        return default if value is UNSET else value


class _Meta(_Obj):
    name: Field = UNSET
    namespace: Field = UNSET
    labels: Field = UNSET
    annotations: Field = UNSET
    resourceVersion: Field = UNSET
    deletionTimestamp: Field = UNSET


class _NodeSpec(_Obj):
    taints: Field = UNSET
    unschedulable: Field = UNSET


class _NodeStatus(_Obj):
    conditions: Field = UNSET
    capacity: Field = UNSET
    allocatable: Field = UNSET


class _Node(_Obj):
    metadata: _Meta | UnsetType | None = UNSET
    spec: _NodeSpec | UnsetType | None = UNSET
    status: _NodeStatus | UnsetType | None = UNSET


class _Container(_Obj):
    name: Field = UNSET
    resources: Field = UNSET
    restartPolicy: Field = UNSET


class _PodSpec(_Obj):
    nodeName: Field = UNSET
    hostname: Field = UNSET
    containers: list[_Container] | UnsetType | None = UNSET
    initContainers: list[_Container] | UnsetType | None = UNSET
    overhead: Field = UNSET


class _PodStatus(_Obj):
    phase: Field = UNSET


class _Pod(_Obj):
    metadata: _Meta | UnsetType | None = UNSET
    spec: _PodSpec | UnsetType | None = UNSET
    status: _PodStatus | UnsetType | None = UNSET


class _ListMeta(_Obj):
    resourceVersion: Field = UNSET
    cont: Field = msgspec.field(default=UNSET, name="continue")

    def get(self, key: str, default: Any = None) -> Any:
        return super().get("cont" if key == "continue" else key, default)


class _NodeList(_Obj):
    metadata: _ListMeta | UnsetType | None = UNSET
    items: list[_Node] | UnsetType | None = UNSET


class _PodList(_Obj):
    metadata: _ListMeta | UnsetType | None = UNSET
    items: list[_Pod] | UnsetType | None = UNSET


class _NodeEvent(_Obj):
    type: Field = UNSET
    object: _Node | UnsetType | None = UNSET


class _PodEvent(_Obj):
    type: Field = UNSET
    object: _Pod | UnsetType | None = UNSET


class Decoding:
    """``page(body)`` and ``event(line)`` of one resource, read as ``json.loads`` output."""

    def __init__(self, page: type[_Obj] | None = None, event: type[_Obj] | None = None) -> None:
        self._page = msgspec.json.Decoder(page) if page is not None else None
        self._event = msgspec.json.Decoder(event) if event is not None else None

    def page(self, body: bytes) -> Any:
        if self._page is not None:
            try:
                return self._page.decode(body)
            except msgspec.DecodeError:
                pass  # refused by the typed decoder: the plain one decides
        return json.loads(body)

    def event(self, line: bytes) -> Any:
        if self._event is not None:
            try:
                event = self._event.decode(line)
            except msgspec.DecodeError:
                pass
            else:
                if event.get("type") != "ERROR":  # a Status: read all of it
                    return event
        return json.loads(line)


NODES = Decoding(_NodeList, _NodeEvent)
PODS = Decoding(_PodList, _PodEvent)
#: Everything kept (what json.loads returns).
PLAIN = Decoding()
