"""The engine's endless loop, kept tiny so it runs on fake time in tests: wait for a trigger
(syncd.engine.triggers), run a pass."""

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
