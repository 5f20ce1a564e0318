"""Writes of the REST API: create, update (PUT), patch, delete, and the status subresource.

Behaviour follows the recordings: writes to ``/status`` keep the spec and apply status plus
labels/annotations (36); writes to the main resource keep the status; leases need a
resourceVersion on PUT (65), nodes and pods do not (69); a stale one is 409 (conflict);
deleting a bound pod without ``gracePeriodSeconds=0`` only sets ``deletionTimestamp`` (38).
https://kubernetes.io/docs/reference/using-api/api-concepts/#conflicts
Every create, update and patch records its writer in ``metadata.managedFields``
(:mod:`kubesim.managed`): the ``fieldManager`` query parameter, else the first part of the
User-Agent, else "unknown"; defaults applied while decoding are the writer's, what admission
adds afterwards is nobody's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubesim import errors, managed
from kubesim.kinds import (
    Kind,
    admit_namespace,
    admit_node,
    admit_pod,
    check_decodable,
    default_namespace,
    default_node,
    default_pod,
    new_metadata,
    now_text,
    validate_name,
)
from kubesim.patch import APPLY, PATCH_TYPES, apply_patch
from kubesim.rest import Target, get_object
from kubesim.state import Sim
from kubesim.store import Stored

_MUTABLE_META = ("labels", "annotations", "ownerReferences", "finalizers")
Step = Callable[[dict[str, Any]], None]
#: Per kind: defaulting while decoding (its fields are the writer's), then admission and the
#: create strategy (theirs are nobody's, recording 31).
_CREATE_STEPS: dict[str, tuple[Step, Step]] = {
    "pods": (default_pod, admit_pod), "nodes": (default_node, admit_node),
    "namespaces": (default_namespace, admit_namespace)}


def decode_body(kind: Kind, raw: bytes, content_type: str = "application/json") -> Any:
    try:
        if content_type == APPLY:
            import yaml

            return yaml.safe_load(raw.decode())
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        shown = raw[:30].decode(errors="replace")
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {kind.kind}): couldn't get "
            f"version/kind; json parse error: {exc} ({shown} ...)") from exc


def _require_object(kind: Kind, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {kind.kind})")
    body.setdefault("metadata", {})
    if not isinstance(body["metadata"], dict):
        raise errors.bad_request("metadata must be an object")
    return body


def manager_name(field_manager: str, user_agent: str) -> str:
    """Who a write is recorded for: ``fieldManager``, else the User-Agent up to its first "/"."""
    if field_manager:
        return field_manager
    prefix = "".join(c for c in user_agent.split("/", 1)[0] if c.isprintable())[:128]
    return prefix or "unknown"


def track(kind: Kind, old: dict[str, Any], new: dict[str, Any], *, manager: str,
          sub: str = "", supplied: Any = None, operation: str = "Update") -> None:
    """Set ``new``'s managedFields for ``manager`` having turned ``old`` into ``new``."""
    meta = new["metadata"]
    base = managed.base_entries((old.get("metadata") or {}).get("managedFields"),
                                None if sub else supplied)
    entries = managed.record(base, old, new, manager=manager, api_version=kind.api_version,
                             now=now_text(), subresource=sub, operation=operation,
                             ignored=kind.reset_fields(sub))
    meta.pop("managedFields", None)
    if entries:
        meta["managedFields"] = entries  # the last metadata field, as the server writes it


def create(sim: Sim, target: Target, raw_body: Any, *, manager: str = "unknown") -> Stored:
    kind = target.kind
    body = _require_object(kind, copy.deepcopy(raw_body))
    body.pop("kind", None)
    body.pop("apiVersion", None)
    check_decodable(kind, body)  # decoding errors (400) come before validation (422), 75b
    name = validate_name(kind, body)
    ns = None
    if kind.namespaced:
        ns = target.namespace or body["metadata"].get("namespace") or "default"
        if sim.store.get("namespaces", ("", ns)) is None:
            raise errors.not_found("namespaces", "", ns)
    if sim.store.get(kind.plural, (ns or "", name)) is not None:
        raise errors.already_exists(kind.plural, kind.group, name)
    data: dict[str, Any] = {"metadata": new_metadata(body["metadata"], namespace=ns)}
    if "spec" in body or kind.plural != "leases":
        data["spec"] = body.get("spec") or {}
    if kind.has_status:
        data["status"] = body.get("status") or {}
    defaults, admission = _CREATE_STEPS.get(kind.plural, (None, None))
    if defaults is not None:
        defaults(data)
    track(kind, kind.zero(), data, manager=manager,
          supplied=body["metadata"].get("managedFields"))
    if admission is not None:
        admission(data)
    return sim.store.put(kind.plural, (ns or "", name), data)


def _merge(kind: Kind, target: Target, old: Stored, new: dict[str, Any]) -> dict[str, Any]:
    """The stored result of replacing ``old`` by ``new`` through ``target``'s endpoint."""
    meta_in = new.get("metadata") or {}
    if not isinstance(meta_in, dict):
        raise errors.bad_request("metadata must be an object")
    meta = dict(old.data["metadata"])
    for key in _MUTABLE_META:
        if meta_in.get(key):
            meta[key] = meta_in[key]
        else:
            meta.pop(key, None)
    out: dict[str, Any] = {"metadata": meta}
    if target.sub == "status":
        out["spec"] = old.data.get("spec", {})
        out["status"] = new.get("status") or {}
        if kind.plural == "pods":  # status writes cannot drop server-set fields (35)
            out["status"].setdefault("qosClass", old.data.get("status", {}).get("qosClass"))
            for cond in out["status"].get("conditions") or ():
                cond.setdefault("lastProbeTime", None)
                cond.setdefault("lastTransitionTime", None)
    else:
        if "spec" in new or "spec" in old.data:
            out["spec"] = new.get("spec") or {}
        if kind.has_status:
            out["status"] = old.data.get("status", {})
    check_decodable(kind, out)
    return out


def update(sim: Sim, target: Target, raw_body: Any, *, manager: str = "unknown") -> Stored:
    kind = target.kind
    body = _require_object(kind, copy.deepcopy(raw_body))
    check_decodable(kind, body)
    meta = body["metadata"]
    if meta.get("name") != target.name:
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL "
            f"({target.name})")
    old = get_object(sim, target)
    rv = meta.get("resourceVersion")
    if not rv and kind.plural == "leases":
        raise errors.invalid(kind.kind, target.name, [{
            "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
            "message": "Invalid value: 0x0: must be specified for an update"}],
            resource=kind.plural, group=kind.group)
    if rv and str(rv) != old.data["metadata"]["resourceVersion"]:
        raise errors.conflict(kind.plural, kind.group, target.name)
    data = _merge(kind, target, old, body)
    track(kind, old.data, data, manager=manager, sub=target.sub,
          supplied=meta.get("managedFields"))
    return sim.store.put(kind.plural, old.key, data)


def patch(sim: Sim, target: Target, content_type: str, raw: bytes, *,
          manager: str = "unknown") -> Stored:
    kind = target.kind
    ctype = content_type.split(";")[0].strip()
    if ctype not in PATCH_TYPES:
        raise errors.ApiError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})
    body = decode_body(kind, raw, ctype)
    old = get_object(sim, target)
    new = apply_patch(ctype, copy.deepcopy(old.data), body)
    rv = (new.get("metadata") or {}).get("resourceVersion")
    if rv and str(rv) != old.data["metadata"]["resourceVersion"]:
        raise errors.conflict(kind.plural, kind.group, target.name)
    data = _merge(kind, target, old, new)
    track(kind, old.data, data, manager=manager, sub=target.sub,
          supplied=(new.get("metadata") or {}).get("managedFields"),
          operation="Apply" if ctype == APPLY else "Update")
    return sim.store.put(kind.plural, old.key, data)


def delete(sim: Sim, target: Target, grace: int | None) -> tuple[Stored, bool]:
    """Delete or start a graceful delete; returns the object and whether it is gone."""
    kind = target.kind
    old = get_object(sim, target)
    data = copy.deepcopy(old.data)
    meta = data["metadata"]
    if kind.plural == "pods":
        bound = bool(data.get("spec", {}).get("nodeName"))
        if grace is None:
            grace = int(data.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        if bound and grace > 0:
            if meta.get("deletionTimestamp"):
                return old, False
            stamp = datetime.now(UTC) + timedelta(seconds=grace)
            meta["deletionTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["deletionGracePeriodSeconds"] = grace
            return sim.store.put(kind.plural, old.key, data), False
        meta["deletionTimestamp"] = now_text()
        meta["deletionGracePeriodSeconds"] = 0
    if kind.plural == "namespaces":
        for key in [k for k in sim.store.table("pods") if k[0] == target.name]:
            sim.store.remove("pods", key)
    return sim.store.remove(kind.plural, old.key, data), True


def delete_status(kind: Kind, obj: Stored) -> dict[str, Any]:
    """What a DELETE of anything but a pod answers (recording 26)."""
    details: dict[str, Any] = {"name": obj.key[1]}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.plural
    details["uid"] = obj.data["metadata"].get("uid", "")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}
