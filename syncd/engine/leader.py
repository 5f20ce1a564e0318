"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it.

A replica writes to Slurm only while ``is_leader()``; that is true only until the lease would
expire by *its own* last successful renew, so a leader cut off from the API server stops writing
before any standby can take over (standbys wait a full lease duration from the renew time they
observed). Updates use the lease's resourceVersion: two replicas racing get one 200 and one 409.

Bodies are sent as raw dicts with MicroTime written with its fraction: kubernetes-asyncio
serialises a datetime without microseconds as ``...T00:00:00+00:00``, which the API server
rejects with 400 (recorded in k8s-golden 96).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger(__name__)


def _micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(ts: str | None) -> float:
    if not ts:
        return 0.0
    text = ts.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()


class AlwaysLeader:
    """Used when leader election is disabled (a single replica)."""

    identity = "single"
    holder = "single"

    def is_leader(self) -> bool:
        return True

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def release(self) -> None:
        return None


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float,
        renew_every: float,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Typed as Any: we send raw dict bodies and read raw JSON on purpose (module docstring).
        self.api: Any = client.CoordinationV1Api(api)
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.duration = lease_duration
        self.renew_every = renew_every
        self.on_change = on_change
        self.clock = clock
        self.holder = ""
        self._valid_until = 0.0  # monotonic
        self._was_leader = False

    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    async def run(self) -> None:
        while True:
            try:
                await self._try_once()
            except ApiException as exc:
                log.warning("lease update failed", extra={"status": exc.status,
                                                           "lease": self.name})
            except (TimeoutError, OSError) as exc:
                log.warning("lease update failed", extra={"error": str(exc),
                                                           "lease": self.name})
            except Exception:
                # A bug here must not take the daemon down: without the lease it only stops
                # writing, which is the safe side.
                log.exception("unexpected error in leader election", extra={"lease": self.name})
                self._valid_until = 0.0
            self._announce()
            pause = self.renew_every if self.is_leader() else self.renew_every / 2
            await asyncio.sleep(pause * random.uniform(0.9, 1.1))

    async def _try_once(self) -> None:
        started = time.monotonic()
        now = self.clock()
        lease = await self._get()
        if lease is None:
            await self._create(now)
            self._valid_until = started + self.duration
            self.holder = self.identity
            return
        spec = lease.get("spec", {})
        holder = spec.get("holderIdentity") or ""
        self.holder = holder
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.duration)
        if holder and holder != self.identity and now < renewed + duration:
            self._valid_until = 0.0
            return
        transitions = int(spec.get("leaseTransitions") or 0)
        acquire = spec.get("acquireTime") if holder == self.identity else _micro(now)
        if holder != self.identity:
            transitions += 1
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace,
                         "resourceVersion": lease["metadata"]["resourceVersion"]},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": acquire,
                "renewTime": _micro(now),
                "leaseTransitions": transitions,
            },
        }
        try:
            await self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # someone else renewed or took it first
                self._valid_until = 0.0
                return
            raise
        self._valid_until = started + self.duration
        self.holder = self.identity

    async def _get(self) -> dict[str, Any] | None:
        # With _preload_content=False the client hands back the raw response and does not
        # raise on an error status, so the status is checked here.
        try:
            resp = await self.api.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        body = await resp.read()
        if resp.status == 404:
            return None
        if resp.status >= 400:
            raise ApiException(status=resp.status, reason=body[:200].decode(errors="replace"))
        raw: dict[str, Any] = json.loads(body)
        return raw

    async def _create(self, now: float) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.duration),
                     "acquireTime": _micro(now), "renewTime": _micro(now),
                     "leaseTransitions": 0},
        }
        await self.api.create_namespaced_lease(self.namespace, body)

    def _announce(self) -> None:
        now_leader = self.is_leader()
        if now_leader != self._was_leader:
            self._was_leader = now_leader
            log.info("became leader" if now_leader else "lost leadership",
                     extra={"identity": self.identity, "lease": self.name})
            if self.on_change is not None:
                self.on_change(now_leader)

    async def release(self) -> None:
        """Give the lease up at shutdown so a standby takes over at once, not after expiry."""
        if not self.is_leader():
            return
        self._valid_until = 0.0
        try:
            lease = await self._get()
            if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
                return
            spec = dict(lease["spec"])
            spec.update({"holderIdentity": "", "leaseDurationSeconds": 1,
                         "renewTime": _micro(self.clock())})
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace,
                                 "resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": spec}
            await self.api.replace_namespaced_lease(self.name, self.namespace, body)
            log.info("released the lease", extra={"lease": self.name})
        except (ApiException, OSError) as exc:
            log.warning("could not release the lease", extra={"error": str(exc)})
