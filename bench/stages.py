"""Per-stage time of syncd's passes during a run, from the difference of two scrapes of
``syncd_reconcile_stage_seconds`` (docs/hot-path.md): passes counted, mean (exact, from the
sums) and the p50/p99 bucket bounds (a histogram gives a bound, not the value)."""

from __future__ import annotations

import math
import re
from typing import Any

NAME = "syncd_reconcile_stage_seconds"
GC_NAME = "syncd_gc_pause_seconds"
STAGES = ("read", "plan", "confirm", "write")
_LE = re.compile(r'le="([^"]+)"')


def stage_stats(m0: dict[str, float], m1: dict[str, float]) -> dict[str, dict[str, Any]]:
    return histogram_stats(m0, m1, NAME, "stage", STAGES)


def gc_stats(m0: dict[str, float], m1: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The collector's pauses between the scrapes, by generation, with how many passed 10 ms
    and 50 ms (what a change waiting behind one would notice)."""
    out = histogram_stats(m0, m1, GC_NAME, "generation", ("0", "1", "2"))
    for gen, st in out.items():
        label = f'generation="{gen}"'
        for bound, key in ((0.01, "over_10ms"), (0.05, "over_50ms")):
            le = f'{GC_NAME}_bucket{{{label},le="{bound}"}}'
            st[key] = int(st["n"] - (m1.get(le, 0.0) - m0.get(le, 0.0)))
    return out


def histogram_stats(m0: dict[str, float], m1: dict[str, float], name: str, key: str,
                    values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Count, exact mean and p50/p99 bucket bounds of histogram ``name`` for each ``key``."""
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        label = f'{key}="{value}"'

        def delta(suffix: str, label: str = label) -> dict[str, float]:
            return {k: v - m0.get(k, 0.0) for k, v in m1.items()
                    if k.startswith(f"{name}_{suffix}") and label in k}

        count = sum(delta("count").values())
        if count <= 0:
            continue
        total = sum(delta("sum").values())
        buckets = sorted((float(m.group(1)), v) for k, v in delta("bucket").items()
                         if (m := _LE.search(k)))
        out[value] = {"n": int(count), "mean": total / count,
                      "p50_le": _bound(buckets, 0.50 * count),
                      "p99_le": _bound(buckets, 0.99 * count)}
    return out


def _bound(buckets: list[tuple[float, float]], rank: float) -> float:
    for le, cumulative in buckets:
        if cumulative >= rank:
            return le
    return math.inf
