"""A token bucket, so a burst of reconciles can never hammer slurmctld.

HPC admins ask tools to throttle their RPCs (docs/facts/prior-art.md §4, item 12:
https://github.com/rwth-i6/sisyphus/issues/108); every Slurm command syncd runs takes one token,
and tokens refill at ``rate`` per second up to ``burst``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``await acquire()`` returns at once while tokens are left, else sleeps until one refills."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be above 0 and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._lock = asyncio.Lock()
        #: Seconds callers spent waiting for a token, for metrics.
        self.waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now

    async def acquire(self) -> None:
        # The lock keeps waiters in arrival order, so no caller starves.
        async with self._lock:
            self._refill()
            if self._tokens < 1.0:
                delay = (1.0 - self._tokens) / self._rate
                self.waited += delay
                await asyncio.sleep(delay)
                self._refill()
            self._tokens -= 1.0
