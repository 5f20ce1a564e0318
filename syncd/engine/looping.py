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
#: Triggers whose Slurm read runs beside the loop, not in it: a verify read or a probe takes
#: ~100 ms at 10,000 nodes, which a change arriving meanwhile would otherwise wait for.
BACKGROUND = frozenset({"verify", "probe", "resync"})


async def reconcile_forever(r: Reconciler) -> None:
    while True:
        now = r.clock.now()
        due = next_deadline(r.shared.memory, r.policy, now)
        trigger = await r.triggers.next(None if due is None else due - now)
        if trigger is None:
            return
        try:
            if trigger in BACKGROUND and r.start_read(trigger):
                continue  # planned when the read is in (trigger "read"); changes meanwhile
            await r.reconcile(trigger, fresh=r.reader.take_fresh() if trigger == "read"
                              else None)
        except Exception:
            # A bug in one pass must not stop reconciling; the next pass re-reads both views.
            log.exception("reconcile failed")
            r.metrics.reconciles.labels("failed").inc()
            await asyncio.sleep(AFTER_BUG)
