"""The engine's one clock, read off the running event loop.

Every loop and timer in the engine takes time from here, so a test that runs the event loop
on fake time (looptime) fakes the wall clock the planner sees as well. Wall-clock seconds
are the loop's monotonic clock plus the offset measured once, at first use: timers keep
running evenly across a wall-clock step, and persisted times stay comparable across restarts.
"""

from __future__ import annotations

import asyncio
import time


class LoopClock:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._offset = 0.0

    def _bound(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._offset = time.time() - loop.time()
        return loop

    def monotonic(self) -> float:
        """Seconds on the event loop's clock (for deadlines and back-offs)."""
        return self._bound().time()

    def now(self) -> float:
        """Seconds since the epoch (for the planner's timers and event times)."""
        return self._offset + self._bound().time()
