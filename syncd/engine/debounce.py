"""How long a pass waits after a change: barely at all for a lone change, and until a storm
is over for a mass event, so that a switch failing (1,000 nodes NotReady) is one pass whose
drains batch into the fewest hostlist calls.

The storm test is a rate, not a count per interval: the changed-node count is sampled every
``step`` and the wait goes on while the nodes changed over the last ``window`` arrive faster
than ``storm_rate`` per second, up to ``most`` in all. Ordinary churn (a pod here and there)
is far below the rate and waits one step only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

#: Nodes per second from which changes count as a storm (a zone or a rack going away).
STORM_RATE = 200.0
#: The span the rate is measured over.
WINDOW = 0.05


async def settle(changed: Callable[[], int], step: float, most: float, *,
                 clock: Callable[[], float], storm_rate: float = STORM_RATE,
                 window: float = WINDOW) -> int:
    """Waits ``step``, and again while changes still arrive at ``storm_rate`` or faster;
    returns how many waits it took."""
    start = clock()
    samples: deque[tuple[float, int]] = deque([(start, changed())])
    waits = 0
    while True:
        await asyncio.sleep(step)
        waits += 1
        now, count = clock(), changed()
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] >= window:
            samples.popleft()
        # nodes over the last window, per second of the window (a lone change in the first
        # step is 1 / 50 ms = 20/s, far from a storm)
        rate = (count - samples[0][1]) / window
        if rate < storm_rate or now - start + step > most:
            return waits
