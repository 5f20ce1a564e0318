"""How long a reconcile waits after the first change, so a burst of watch events is one pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: New changed nodes per debounce interval from which a burst counts as a storm (a switch
#: failing, a zone going NotReady). Ordinary pod churn is one or two per interval.
STORM_NODES = 10


async def settle(changed: Callable[[], int], debounce: float, most: float, *,
                 clock: Callable[[], float], storm: int = STORM_NODES) -> int:
    """Waits ``debounce``, and again while each wait brought at least ``storm`` more changed
    nodes, up to ``most`` seconds in all; returns how many waits it took.

    A mass event then becomes one pass, so its drains batch into the fewest hostlist calls
    (1,000 drains split over two passes cost 11-12 calls instead of 10), while a lone change
    still waits only ``debounce``.
    """
    start = clock()
    seen = changed()
    waits = 0
    while True:
        await asyncio.sleep(debounce)
        waits += 1
        now = changed()
        if now - seen < storm or clock() - start + debounce > most:
            return waits
        seen = now
