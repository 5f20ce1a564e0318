"""bench/stages.py reads the per-stage histogram of two real scrapes of syncd's registry."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.stages import gc_stats, stage_stats
from syncd.engine.metrics import Metrics


def _scrape(m: Metrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(generate_latest(m.registry).decode()):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in s.labels.items())
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_stage_stats_count_only_the_passes_between_the_scrapes() -> None:
    m = Metrics(version="test")
    m.pass_stage.labels("read").observe(0.2)  # before the run: not counted
    m0 = _scrape(m)
    for _ in range(99):
        m.pass_stage.labels("plan").observe(0.0004)
    m.pass_stage.labels("plan").observe(0.04)
    m.pass_stage.labels("read").observe(0.08)
    got = stage_stats(m0, _scrape(m))
    assert got["plan"]["n"] == 100
    assert got["plan"]["p50_le"] == 0.0005 and got["plan"]["p99_le"] == 0.0005
    assert abs(got["plan"]["mean"] - (99 * 0.0004 + 0.04) / 100) < 1e-9
    assert got["read"]["n"] == 1 and got["read"]["p99_le"] == 0.1
    assert "confirm" not in got


def test_gc_stats_count_the_pauses_over_10_and_50_ms() -> None:
    m = Metrics(version="test")
    m.gc_pause.labels("2").observe(0.3)  # before the run: not counted
    m0 = _scrape(m)
    for pause in (0.001, 0.008, 0.015, 0.06):
        m.gc_pause.labels("2").observe(pause)
    m.gc_pause.labels("0").observe(0.0005)
    got = gc_stats(m0, _scrape(m))
    assert got["2"]["n"] == 4 and got["2"]["over_10ms"] == 2 and got["2"]["over_50ms"] == 1
    assert got["0"] == {"n": 1, "mean": 0.0005, "p50_le": 0.001, "p99_le": 0.001,
                        "over_10ms": 0, "over_50ms": 0}
    assert "1" not in got
