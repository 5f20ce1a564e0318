"""The coordination.k8s.io/v1 Lease API, as the leader election needs it: read, create, and
replace with the resourceVersion it read (so two replicas racing get one 200 and one 409).

Bodies are sent as raw dicts with MicroTime written with its fraction: kubernetes-asyncio
serialises a datetime without microseconds as ``...T00:00:00+00:00``, which the API server
rejects with 400 (recorded in tests/data/k8s-golden/, recording 96).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from syncd.core.ports import LeaseConflict, LeaseError, LeaseRecord


def micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro(ts: str | None) -> float:
    if not ts:
        return 0.0
    text = ts.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()


class KubeLeases:
    """One Lease object, read and written through kubernetes-asyncio with raw bodies."""

    def __init__(self, api: client.ApiClient, *, name: str, namespace: str) -> None:
        # Typed as Any: we send raw dict bodies and read raw JSON on purpose (module docstring).
        self.api: Any = client.CoordinationV1Api(api)
        self.name = name
        self.namespace = namespace

    async def get(self) -> LeaseRecord | None:
        # With _preload_content=False the client hands back the raw response and does not
        # raise on an error status, so the status is checked here.
        try:
            resp = await self.api.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False)
            body = await resp.read()
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise LeaseError(f"lease read failed: HTTP {exc.status}") from None
        except (TimeoutError, OSError) as exc:
            raise LeaseError(f"lease read failed: {exc}") from None
        if resp.status == 404:
            return None
        if resp.status >= 400:
            raise LeaseError(f"lease read failed: HTTP {resp.status} "
                             f"{body[:200].decode(errors='replace')}")
        raw: dict[str, Any] = json.loads(body)
        spec = raw.get("spec", {})
        return LeaseRecord(
            holder=spec.get("holderIdentity") or "",
            renewed=parse_micro(spec.get("renewTime")),
            acquired=parse_micro(spec.get("acquireTime")),
            duration=float(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            revision=str(raw.get("metadata", {}).get("resourceVersion", "")),
        )

    def _body(self, rec: LeaseRecord, *, with_revision: bool) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if with_revision:
            meta["resourceVersion"] = rec.revision
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": rec.holder, "leaseDurationSeconds": int(rec.duration),
                     "acquireTime": micro(rec.acquired), "renewTime": micro(rec.renewed),
                     "leaseTransitions": rec.transitions},
        }

    async def create(self, rec: LeaseRecord) -> None:
        await self._call(self.api.create_namespaced_lease, self.namespace,
                         self._body(rec, with_revision=False))

    async def replace(self, rec: LeaseRecord) -> None:
        """Write ``rec`` over the version ``rec.revision``; LeaseConflict if it moved on."""
        await self._call(self.api.replace_namespaced_lease, self.name, self.namespace,
                         self._body(rec, with_revision=True))

    async def _call(self, fn: Any, *args: Any) -> None:
        try:
            await fn(*args)
        except ApiException as exc:
            if exc.status == 409:
                raise LeaseConflict("someone else wrote the lease first") from None
            raise LeaseError(f"lease write failed: HTTP {exc.status}") from None
        except (TimeoutError, OSError) as exc:
            raise LeaseError(f"lease write failed: {exc}") from None
