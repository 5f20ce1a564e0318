"""Measures the garbage collector's pauses (``gc.callbacks``) into the metrics.

A collection stops the event loop: at 10,000 nodes a full (generation 2) collection of the
watcher's records once took 100+ ms, longer than the whole latency budget of a change. The
reconciler freezes the long-lived heap after its first full picture (``gc.freeze()``); this
says whether that keeps the pauses short, as a histogram by generation and the longest pause
since start.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

from syncd.engine.metrics import Metrics


def watch(metrics: Metrics, clock: Callable[[], float] = time.perf_counter,
          ) -> Callable[[], Awaitable[None]]:
    """Starts measuring; returns the coroutine function that stops it (one of the daemon's
    closers)."""
    started: list[float] = [0.0]
    longest: list[float] = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = clock()
            return
        pause = clock() - started[0]
        metrics.gc_pause.labels(str(info.get("generation", ""))).observe(pause)
        if pause > longest[0]:
            longest[0] = pause
            metrics.gc_pause_max.set(pause)

    gc.callbacks.append(callback)

    async def stop() -> None:
        if callback in gc.callbacks:
            gc.callbacks.remove(callback)

    return stop
