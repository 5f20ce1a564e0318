"""Leader election on a Lease, the way client-go's leaderelection does it.

A replica writes to Slurm only while ``is_leader()``; that is true only until the lease would
expire by *its own* last successful renew, so a leader cut off from the API server stops writing
before any standby can take over (standbys wait a full lease duration from the renew time they
observed). The Lease itself is read and written by the Kubernetes adapter (syncd.kube.lease);
this module holds only the decisions and the loop, on the engine's clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import replace

from syncd.core.ports import LeaseConflict, LeaseError, LeaseRecord, LeaseStore
from syncd.engine.clock import LoopClock

log = logging.getLogger(__name__)


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
    def __init__(self, store: LeaseStore, *, identity: str, lease_duration: float,
                 renew_every: float, clock: LoopClock | None = None,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self.store = store
        self.identity = identity
        self.duration = lease_duration
        self.renew_every = renew_every
        self.on_change = on_change
        self.clock = clock or LoopClock()
        self.holder = ""
        self._valid_until = float("-inf")  # on the loop's monotonic clock
        self._was_leader = False

    def is_leader(self) -> bool:
        return self.clock.monotonic() < self._valid_until

    async def run(self) -> None:
        while True:
            try:
                await self.try_once()
            except LeaseError as exc:
                log.warning("lease update failed", extra={"error": str(exc)})
            except Exception:
                # A bug here must not take the daemon down: without the lease it only stops
                # writing, which is the safe side.
                log.exception("unexpected error in leader election")
                self._valid_until = float("-inf")
            self._announce()
            pause = self.renew_every if self.is_leader() else self.renew_every / 2
            await asyncio.sleep(pause * random.uniform(0.9, 1.1))

    async def try_once(self) -> None:
        """One acquire-or-renew round."""
        started = self.clock.monotonic()
        now = self.clock.now()
        lease = await self.store.get()
        if lease is None:
            await self.store.create(LeaseRecord(self.identity, now, now, self.duration, 0))
            self._won(started)
            return
        self.holder = lease.holder
        duration = lease.duration or self.duration
        if lease.holder and lease.holder != self.identity and now < lease.renewed + duration:
            self._valid_until = float("-inf")
            return
        mine = lease.holder == self.identity
        rec = replace(lease, holder=self.identity, renewed=now, duration=self.duration,
                      acquired=lease.acquired if mine else now,
                      transitions=lease.transitions + (0 if mine else 1))
        try:
            await self.store.replace(rec)
        except LeaseConflict:
            self._valid_until = float("-inf")
            return
        self._won(started)

    def _won(self, started: float) -> None:
        self._valid_until = started + self.duration
        self.holder = self.identity

    def _announce(self) -> None:
        now_leader = self.is_leader()
        if now_leader != self._was_leader:
            self._was_leader = now_leader
            log.info("became leader" if now_leader else "lost leadership",
                     extra={"identity": self.identity})
            if self.on_change is not None:
                self.on_change(now_leader)

    async def release(self) -> None:
        """Give the lease up at shutdown so a standby takes over at once, not after expiry."""
        if not self.is_leader():
            return
        self._valid_until = float("-inf")
        try:
            lease = await self.store.get()
            if lease is None or lease.holder != self.identity:
                return
            await self.store.replace(replace(lease, holder="", duration=1,
                                             renewed=self.clock.now()))
            log.info("released the lease")
        except LeaseError as exc:
            log.warning("could not release the lease", extra={"error": str(exc)})
