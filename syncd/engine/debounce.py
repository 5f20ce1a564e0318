"""How long a pass waits after a change: one look of a few milliseconds for a lone change,
and until a storm is over for a mass event, so that a switch failing (1,000 nodes NotReady)
is one pass whose drains batch into the fewest hostlist calls.

The storm test is a rate, not a count per interval: the changed-node count is sampled (first
after ``FIRST_LOOK``, then every ``step``) and the wait goes on while the nodes changed over
the last ``window`` (or since the wait began, when that is shorter) arrive faster than
``storm_rate`` per second, up to ``most`` in all. Measuring over the time actually elapsed
lets a look of a few ms tell a storm (a mass event reaches syncd at ~1,700 nodes/s, several
nodes per look) from ordinary churn (a node now and then), which is planned after the first
look. A storm whose first nodes arrive too slowly for that look is caught once more by the
pass itself (syncd.engine.reconciler: a pass that sees ``STORM_MIN`` more nodes change while it
confirms its drains gives them up to the next, waiting, pass).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

#: Nodes per second from which changes count as a storm (a zone or a rack going away).
STORM_RATE = 200.0
#: The span the rate is measured over (a storm that stalls this long is over).
WINDOW = 0.1
#: Fewer new nodes than this is never a storm, however short the span (two nodes 2 ms apart
#: are 1,000/s, but churn).
STORM_MIN = 3
#: The first look after a change (seconds): all the wait a lone change has.
FIRST_LOOK = 0.003
#: Once a storm is seen, it is over only after this long below the rate: a mass event reaches
#: syncd in bursts (the API server's and the watch's own pauses), and a lull of one window
#: inside it would split its drains over several passes.
QUIET = 0.3


async def settle(changed: Callable[[], int], step: float, most: float, *,
                 clock: Callable[[], float], storm_rate: float = STORM_RATE,
                 window: float = WINDOW, storm_min: int = STORM_MIN,
                 first: float = FIRST_LOOK, quiet: float = QUIET,
                 history: Sequence[tuple[float, int]] = ()) -> int:
    """Waits ``first``, then ``step`` again and again while changes still arrive at
    ``storm_rate`` or faster (over ``window``; over ``quiet`` once a storm was seen); returns
    how many waits it took.

    ``changed`` counts arrivals so far; ``history`` holds earlier (time, count) samples of
    it, so nodes that arrived within the window before the wait (while a pass ran) count
    towards the rate."""
    start = clock()
    samples: deque[tuple[float, int]] = deque(h for h in history if start - h[0] < window)
    samples.append((start, changed()))
    waits = 0
    wait = min(first, step)
    span_kept = window
    while True:
        await asyncio.sleep(wait)
        wait = step
        waits += 1
        now, count = clock(), changed()
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] >= span_kept:
            samples.popleft()
        new, span = count - samples[0][1], now - samples[0][0]
        storm = new >= storm_min and new >= storm_rate * span
        if not storm or now - start + step > most:
            return waits
        span_kept = max(window, quiet)
