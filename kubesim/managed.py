"""``metadata.managedFields``: which manager set which field, kept as the API server keeps it.

Real objects carry this bookkeeping (a pod of recording 31 is 1,798 bytes with it, 1,100
without), so a simulator without it makes every list lighter than a real cluster's and every
memory figure taken against it too kind. What follows is server-side field management for
non-apply writes (https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management),
checked against recordings 10, 20, 25, 31, 35, 36, 69 and 95:

- A write is compared with the object before it (a create with the kind's empty object, whose
  ``spec``/``status`` are present but empty). Fields added or changed become the writer's;
  they stop being anyone else's; removed fields stop being anyone's. A writer whose write
  changed nothing keeps its old entry and time.
- A map (or list item, or list) that did not exist before is itself a member, written ``"."``;
  a leaf is ``{}``; list items are ``k:{"type":"Ready"}`` keyed by their merge key, set
  members ``v:"x"``, other lists are atomic leaves.
- Writes through the main resource never own ``status``, writes through ``/status`` never own
  ``spec`` (the kinds' reset fields); name, uid, resourceVersion and the like are never owned.
- One entry per (manager, operation, apiVersion, subresource), sorted by operation, time,
  manager, apiVersion, subresource; ``time`` has whole seconds.

A request that brings its own non-empty ``managedFields`` replaces the stored ones, ``[{}]``
clears them, anything else keeps them (as the server does, so clients that round-trip an
object cannot wipe them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Path = tuple[str, ...]
FieldSet = set[Path]
Identity = tuple[str, str, str, str]  # manager, operation, apiVersion, subresource

_MISSING: Any = object()

#: Merge keys of the associative lists of nodes, pods, namespaces and leases
#: (``+listType=map`` / ``+listMapKey`` in k8s.io/api/core/v1/types.go); other lists are atomic.
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "conditions": ("type",), "addresses": ("type",), "containers": ("name",),
    "initContainers": ("name",), "ephemeralContainers": ("name",), "volumes": ("name",),
    "env": ("name",), "volumeMounts": ("mountPath",), "volumeDevices": ("devicePath",),
    "ownerReferences": ("uid",), "imagePullSecrets": ("name",),
    "ports": ("containerPort", "protocol"), "podIPs": ("ip",), "hostIPs": ("ip",),
    "readinessGates": ("conditionType",), "resourceClaims": ("name",),
    "hostAliases": ("ip",), "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
#: ``+listType=set`` lists, by path.
SET_LISTS: frozenset[Path] = frozenset({("f:metadata", "f:finalizers")})
#: Never owned by anyone (the server's stripped fields).
_STRIPPED_META = ("name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                  "generation", "managedFields", "resourceVersion")


def _key_element(item: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict):
        return None
    present = {k: item[k] for k in keys if k in item}
    if not present:
        return None
    return "k:" + json.dumps(present, sort_keys=True, separators=(",", ":"))


def _items(value: list[Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    """Items by their path element; None when the list cannot be keyed (then it is atomic)."""
    out: dict[str, Any] = {}
    for item in value:
        element = _key_element(item, keys)
        if element is None or element in out:
            return None
        out[element] = item
    return out


class _Diff:
    def __init__(self) -> None:
        self.added: FieldSet = set()
        self.modified: FieldSet = set()
        self.removed: FieldSet = set()

    def post(self, path: Path, old: Any, new: Any) -> None:
        if not path:
            return
        if old is _MISSING:
            self.added.add(path)
        elif new is _MISSING:
            self.removed.add(path)

    def leaf(self, path: Path, old: Any, new: Any) -> None:
        if old is _MISSING:
            self.added.add(path)
        elif new is _MISSING:
            self.removed.add(path)
        elif old != new:
            self.modified.add(path)

    def walk(self, path: Path, old: Any, new: Any) -> None:
        # A null takes the other side's shape (the server's "nil is a wildcard"); a value
        # that changes shape (a map becomes a string) is replaced whole, like a leaf.
        shapes = {_shape(old), _shape(new)} - {"absent", "null"}
        if shapes == {"map"}:
            self.map(path, old, new)
        elif shapes == {"list"}:
            self.list(path, old, new)
        else:
            self.leaf(path, old, new)

    def map(self, path: Path, old: Any, new: Any) -> None:
        o = old if isinstance(old, dict) else {}
        n = new if isinstance(new, dict) else {}
        for key in dict.fromkeys([*o, *n]):
            self.walk((*path, f"f:{key}"), o.get(key, _MISSING), n.get(key, _MISSING))
        self.post(path, old, new)

    def list(self, path: Path, old: Any, new: Any) -> None:
        o_list = old if isinstance(old, list) else []
        n_list = new if isinstance(new, list) else []
        if path in SET_LISTS:
            o = {"v:" + json.dumps(v, separators=(",", ":")) for v in o_list}
            n = {"v:" + json.dumps(v, separators=(",", ":")) for v in n_list}
            for element in o ^ n:
                self.leaf((*path, element), 1 if element in o else _MISSING,
                          1 if element in n else _MISSING)
            self.post(path, old, new)
            return
        keys = LIST_KEYS.get(path[-1][2:] if path[-1].startswith("f:") else "")
        o_items = _items(o_list, keys) if keys else None
        n_items = _items(n_list, keys) if keys else None
        if o_items is None or n_items is None:  # atomic, or items without a usable key
            self.leaf(path, old, new)
            return
        for element in dict.fromkeys([*o_items, *n_items]):
            self.map((*path, element), o_items.get(element, _MISSING),
                     n_items.get(element, _MISSING))
        self.post(path, old, new)


def _shape(value: Any) -> str:
    if value is _MISSING:
        return "absent"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "map"
    return "list" if isinstance(value, list) else "scalar"


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k not in _STRIPPED_META}
    return out


def _without(fields: FieldSet, prefixes: Iterable[Path]) -> FieldSet:
    blocked = tuple(prefixes)
    return {p for p in fields if not any(p[:len(b)] == b for b in blocked)}


def compare(old: dict[str, Any], new: dict[str, Any],
            ignored: Iterable[Path] = ()) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) paths from ``old`` to ``new``, ignored prefixes left out."""
    diff = _Diff()
    diff.map((), _strip(old), _strip(new))
    skip = tuple(ignored)
    return (_without(diff.added, skip), _without(diff.modified, skip),
            _without(diff.removed, skip))


def _order(element: str) -> tuple[int, str]:
    return ("fkvi".find(element[0]) if element != "." else -1, element)


def encode(fields: FieldSet) -> dict[str, Any]:
    """A field set as FieldsV1 JSON: members are ``"."`` (or ``{}`` when they have no children)."""
    tree: dict[str, Any] = {}
    for path in fields:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}

    def tidy(node: dict[str, Any]) -> dict[str, Any]:
        if list(node) == ["."]:
            return {}
        return {k: (v if k == "." else tidy(v)) for k, v in sorted(node.items(),
                                                                  key=lambda kv: _order(kv[0]))}
    return tidy(tree)


def decode(tree: Any, prefix: Path = ()) -> FieldSet:
    """The field set of a FieldsV1 object; raises ValueError when it is not one."""
    if not isinstance(tree, dict):
        raise ValueError("fieldsV1 must be an object")
    out: FieldSet = set()
    if not tree and prefix:
        out.add(prefix)
    for element, child in tree.items():
        if element == ".":
            if prefix:
                out.add(prefix)
            continue
        if element[:2] not in ("f:", "k:", "v:", "i:"):
            raise ValueError(f"bad path element {element!r}")
        out |= decode(child, (*prefix, element))
    return out


def _time(text: Any) -> str:
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return str(text)
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identity(entry: dict[str, Any]) -> Identity:
    return (str(entry.get("manager") or ""), str(entry.get("operation") or ""),
            str(entry.get("apiVersion") or ""), str(entry.get("subresource") or ""))


def parse_entries(entries: Any) -> dict[Identity, tuple[FieldSet, str]] | None:
    """Stored or supplied entries by identity; None when they are not valid managedFields."""
    if not isinstance(entries, list):
        return None
    out: dict[Identity, tuple[FieldSet, str]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            return None
        ident = _identity(entry)
        if ident in out:
            return None
        try:
            fields = decode(entry.get("fieldsV1") or {})
        except ValueError:
            return None
        out[ident] = (fields, _time(entry.get("time", "")))
    return out


def render(managers: dict[Identity, tuple[FieldSet, str]]) -> list[dict[str, Any]]:
    rows = []
    for (manager, operation, api_version, sub), (fields, time) in managers.items():
        if not fields:
            continue
        row: dict[str, Any] = {"manager": manager, "operation": operation,
                               "apiVersion": api_version, "time": time,
                               "fieldsType": "FieldsV1", "fieldsV1": encode(fields)}
        if sub:
            row["subresource"] = sub
        rows.append(row)
    rows.sort(key=lambda r: (r["operation"], r["time"], r["manager"], r["apiVersion"],
                             r.get("subresource", "")))
    return rows


def base_entries(live: Any, supplied: Any) -> Any:
    """The entries a write starts from: the request's own when it brings valid ones."""
    if supplied == [{}]:
        return []
    if isinstance(supplied, list) and supplied and parse_entries(supplied):
        return supplied
    return live or []


def record(entries: Any, old: dict[str, Any], new: dict[str, Any], *, manager: str,
           api_version: str, now: str, subresource: str = "", operation: str = "Update",
           ignored: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """The managedFields after ``manager`` turned ``old`` into ``new`` (never mutates input)."""
    managers = parse_entries(entries) or {}
    added, modified, removed = compare(old, new, ignored)
    taken = added | modified
    me: Identity = (manager or "unknown", operation, api_version, subresource)
    for ident, (fields, time) in list(managers.items()):
        managers[ident] = (fields - taken - removed, time)
    if taken:
        previous = managers.get(me, (set(), now))[0]
        managers[me] = (previous | taken, now)
    return render(managers)
