"""The GC pause metrics measure real collections of this interpreter."""

from __future__ import annotations

import gc

from syncd.engine import gcwatch
from syncd.engine.metrics import Metrics


async def test_a_full_collection_is_measured_and_the_longest_kept() -> None:
    m = Metrics(version="test")
    stop = gcwatch.watch(m)
    try:
        gc.collect(2)
    finally:
        await stop()
    assert m.gc_pause.labels("2")._sum.get() > 0
    assert m.gc_pause_max._value.get() >= m.gc_pause.labels("2")._sum.get() / 2
    before = m.gc_pause.labels("2")._sum.get()
    gc.collect(2)  # stopped: not measured any more
    assert m.gc_pause.labels("2")._sum.get() == before
