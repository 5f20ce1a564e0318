"""The engine's endless loops, kept tiny so they can run on fake time in tests: the reconcile
loop (wait for a trigger, run a pass) and the Slurm probe (notice a slurmctld restart or outage
between passes with one cheap call)."""

from __future__ import annotations

import asyncio
import logging

from syncd.core.timers import next_deadline
from syncd.engine.reconciler import Reconciler

log = logging.getLogger(__name__)
#: After a pass crashed with a bug, wait this long before the next one (no hot loop).
AFTER_BUG = 1.0


async def reconcile_forever(r: Reconciler) -> None:
    while True:
        now = r.clock.now()
        due = next_deadline(r.shared.memory, r.policy, now)
        trigger = await r.triggers.next(None if due is None else due - now)
        if trigger is None:
            return
        try:
            await r.reconcile(trigger)
        except Exception:
            # A bug in one pass must not stop reconciling; the next pass re-reads both views.
            log.exception("reconcile failed")
            r.metrics.reconciles.labels("failed").inc()
            await asyncio.sleep(AFTER_BUG)


async def probe_forever(r: Reconciler, every: float) -> None:
    """slurmctld resets node features to slurm.conf when it restarts, and an outage must show
    in ``/readyz`` before the next pass: both are noticed within ``every`` seconds."""
    while not r.triggers.stopping:
        await asyncio.sleep(every)
        was_ok = r.reader.health.ok
        boot = await r.reader.boot_time()
        if boot is None:
            continue
        if not was_ok or (boot and boot != r.shared.memory.slurm_boot_time):
            log.info("slurmctld restarted or reachable again; reconciling",
                     extra={"boot_time": boot})
            r.triggers.request_full()
