"""Discovery documents, shaped like recordings 01-08.

kubectl 1.32 first asks for aggregated discovery; a server that answers a plain APIVersions or
APIGroupList with ``Content-Type: application/json`` makes it fall back to per-group-version
discovery (recordings 02/03), which is what this simulator does.
"""

from __future__ import annotations

from typing import Any

from kubesim.kinds import KINDS, Kind

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-syncd-sim",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc",
    "platform": "linux/amd64",
}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group_kinds(group: str) -> list[Kind]:
    return [k for k in KINDS.values() if k.group == group]


def groups() -> list[str]:
    return sorted({k.group for k in KINDS.values() if k.group})


def api_group(group: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(g) for g in groups()]}


def resource_list(group: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for kind in _group_kinds(group):
        entry: dict[str, Any] = {"name": kind.plural, "singularName": kind.kind.lower(),
                                 "namespaced": kind.namespaced, "kind": kind.kind,
                                 "verbs": [v for v in _VERBS if kind.plural != "namespaces"
                                           or v != "deletecollection"]}
        if kind.short_names:
            entry["shortNames"] = list(kind.short_names)
        resources.append(entry)
        if kind.has_status:
            resources.append({"name": f"{kind.plural}/status", "singularName": "",
                              "namespaced": kind.namespaced, "kind": kind.kind,
                              "verbs": ["get", "patch", "update"]})
    out: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        out["apiVersion"] = "v1"
    out["groupVersion"] = f"{group}/v1" if group else "v1"
    out["resources"] = resources
    return out


def openapi_v2() -> dict[str, Any]:
    """A valid but empty Swagger document (kubectl's get/cordon/label never fetch it)."""
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
            "paths": {}, "definitions": {}}
