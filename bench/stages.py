"""Per-stage time of syncd's passes during a run, from the difference of two scrapes of
``syncd_reconcile_stage_seconds`` (docs/hot-path.md): passes counted, mean (exact, from the
sums) and the p50/p99 bucket bounds (a histogram gives a bound, not the value)."""

from __future__ import annotations

import math
import re
from typing import Any

NAME = "syncd_reconcile_stage_seconds"
STAGES = ("read", "plan", "confirm", "write")
_LE = re.compile(r'le="([^"]+)"')


def stage_stats(m0: dict[str, float], m1: dict[str, float]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        label = f'stage="{stage}"'

        def delta(suffix: str, label: str = label) -> dict[str, float]:
            return {k: v - m0.get(k, 0.0) for k, v in m1.items()
                    if k.startswith(f"{NAME}_{suffix}") and label in k}

        count = sum(delta("count").values())
        if count <= 0:
            continue
        total = sum(delta("sum").values())
        buckets = sorted((float(m.group(1)), v) for k, v in delta("bucket").items()
                         if (m := _LE.search(k)))
        out[stage] = {"n": int(count), "mean": total / count,
                      "p50_le": _bound(buckets, 0.50 * count),
                      "p99_le": _bound(buckets, 0.99 * count)}
    return out


def _bound(buckets: list[tuple[float, float]], rank: float) -> float:
    for le, cumulative in buckets:
        if cumulative >= rank:
            return le
    return math.inf
