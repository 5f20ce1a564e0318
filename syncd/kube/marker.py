"""syncd's marks on Node objects (``policy.mirror``), written through kubernetes-asyncio with raw
dict bodies, touching only syncd's own condition type and syncd's own taint key.

- The condition goes to the status subresource as a strategic merge patch: ``conditions`` in
  NodeStatus are merged by ``type`` (patchMergeKey in k8s.io/api core/v1 types.go,
  https://github.com/kubernetes/api/blob/master/core/v1/types.go; recorded in
  tests/data/k8s-golden/ 21), so the kubelet's and node-problem-detector's conditions are left
  alone. A JSON merge patch would replace the whole list (recording 20).
- ``taints`` in NodeSpec has no merge key, so any patch replaces the whole list. The taints are
  therefore read, changed in syncd's key only, and written back with the resourceVersion read:
  the API server refuses a write over a stale resourceVersion with 409 Conflict
  (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions; the pattern of
  controller-runtime's MergeFromWithOptimisticLock,
  https://pkg.go.dev/sigs.k8s.io/controller-runtime/pkg/client#MergeFromWithOptimisticLock), so
  a taint someone adds in between is never lost; the caller retries on its next pass.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from syncd.core.model import NodeCondition, Taint
from syncd.core.ports import MarkConflict, MarkError

MERGE_PATCH = "application/merge-patch+json"


def _stamp() -> str:
    # metav1.Time: RFC 3339 in whole seconds (the form every recorded condition carries).
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _taint_key(t: Any) -> tuple[str, str, str]:
    return (str(t.get("key", "")), str(t.get("effect", "")), str(t.get("value") or ""))


class KubeMarker:
    """Implements :class:`syncd.core.ports.NodeMarker`."""

    def __init__(self, api: client.ApiClient, *, timeout: float = 10.0) -> None:
        # Typed as Any: raw dict bodies and raw JSON on purpose (module docstring).
        self.core: Any = client.CoreV1Api(api)
        self.timeout = timeout

    async def set_condition(self, node: str, condition: NodeCondition) -> None:
        stamp = _stamp()
        cond: dict[str, str] = {"type": condition.type, "status": condition.status,
                                "reason": condition.reason, "message": condition.message,
                                "lastHeartbeatTime": stamp}
        if condition.transition:
            cond["lastTransitionTime"] = stamp
        await self._call(f"condition on node {node}", self.core.patch_node_status, node,
                         {"status": {"conditions": [cond]}})

    async def set_taint(self, node: str, taint: Taint, present: bool) -> bool:
        raw = await self._read(node)
        taints = list((raw.get("spec") or {}).get("taints") or [])
        ours = [t for t in taints if isinstance(t, dict) and t.get("key") == taint.key]
        wanted = (taint.key, taint.effect, taint.value)
        if (present and [_taint_key(t) for t in ours] == [wanted]) or (not present and not ours):
            return False
        kept = [t for t in taints if not (isinstance(t, dict) and t.get("key") == taint.key)]
        if present:
            mine: dict[str, str] = {"key": taint.key, "effect": taint.effect}
            if taint.value:
                mine["value"] = taint.value
            kept.append(mine)
        revision = str((raw.get("metadata") or {}).get("resourceVersion") or "")
        if not revision:
            raise MarkError(f"node {node}: read without a resourceVersion; taints not written")
        body = {"metadata": {"resourceVersion": revision}, "spec": {"taints": kept}}
        await self._call(f"taints of node {node}", self.core.patch_node, node, body,
                         _content_type=MERGE_PATCH)
        return True

    async def _read(self, node: str) -> dict[str, Any]:
        # With _preload_content=False the client hands back the raw response and does not
        # raise on an error status (syncd/kube/lease.py), so the status is checked here.
        try:
            resp = await self.core.read_node(node, _preload_content=False,
                                             _request_timeout=self.timeout)
            body = await resp.read()
        except ApiException as exc:
            raise MarkError(f"node {node}: read failed: {_api_error(exc)}") from None
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise MarkError(f"node {node}: read failed: {type(exc).__name__} {exc}") from None
        if resp.status >= 400:
            raise MarkError(f"node {node}: read failed: HTTP {resp.status} "
                            f"{_status_message(body)}")
        try:
            raw = json.loads(body)
        except ValueError:
            raise MarkError(f"node {node}: read failed: the answer is not JSON") from None
        if not isinstance(raw, dict):
            raise MarkError(f"node {node}: read failed: the answer is not an object")
        return raw

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            await fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            if exc.status == 409:
                raise MarkConflict(f"{what}: the node changed since it was read") from None
            raise MarkError(f"{what}: {_api_error(exc)}") from None
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise MarkError(f"{what}: {type(exc).__name__} {exc}") from None


def _status_message(body: bytes | str | None) -> str:
    """The message of a Kubernetes Status answer (what RBAC or validation said), bounded."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        decoded = json.loads(text)
    except ValueError:
        return text[:200]
    message = decoded.get("message") if isinstance(decoded, dict) else None
    return str(message or text)[:200]


def _api_error(exc: ApiException) -> str:
    return f"HTTP {exc.status} {_status_message(exc.body)}"
