"""Writes of the REST API: create, update (PUT), patch, delete, and the status subresource.

Behaviour follows the recordings: writes to ``/status`` keep the spec and apply status plus
labels/annotations (36); writes to the main resource keep the status; leases need a
resourceVersion on PUT (65), nodes and pods do not (69); a stale one is 409 (conflict);
deleting a bound pod without ``gracePeriodSeconds=0`` only sets ``deletionTimestamp`` (38).
https://kubernetes.io/docs/reference/using-api/api-concepts/#conflicts
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.sim import errors
from syncd.sim.kinds import (
    Kind,
    check_decodable,
    default_namespace,
    default_node,
    default_pod,
    new_metadata,
    now_text,
    validate_name,
)
from syncd.sim.patch import APPLY, PATCH_TYPES, apply_patch
from syncd.sim.rest import Target, get_object
from syncd.sim.state import Sim
from syncd.sim.store import Stored

_MUTABLE_META = ("labels", "annotations", "ownerReferences", "finalizers")


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


def create(sim: Sim, target: Target, raw_body: Any, *, admission_taint: bool = True) -> Stored:
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
    if kind.plural == "pods":
        default_pod(data)
    elif kind.plural == "nodes":
        default_node(data, admission_taint=admission_taint)
    elif kind.plural == "namespaces":
        default_namespace(data)
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


def update(sim: Sim, target: Target, raw_body: Any) -> Stored:
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
    return sim.store.put(kind.plural, old.key, _merge(kind, target, old, body))


def patch(sim: Sim, target: Target, content_type: str, raw: bytes) -> Stored:
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
    return sim.store.put(kind.plural, old.key, _merge(kind, target, old, new))


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
