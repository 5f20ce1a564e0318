"""The benchmarks' SVG pictures (bench/plots.py): well-formed, one curve per series, and
curves that say what the numbers say."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bench import plots
from bench.report import keep_other_sections

NS = "{http://www.w3.org/2000/svg}"


def points(svg: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg)
    return [[tuple(map(float, p.split(","))) for p in line.get("points", "").split()]  # type: ignore[misc]
            for line in root.iter(f"{NS}polyline")]


def test_a_cdf_has_one_rising_step_curve_per_series_and_faster_is_left() -> None:
    svg = plots.latency_cdf({"fast": [0.02, 0.03, 0.05, 0.2], "slow": [3.0, 15.0, 29.0],
                             "none": []}, "t <&> t")
    root = ET.fromstring(svg)  # well-formed, the title escaped
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "t <&> t" in texts and "fast" in texts and "slow" in texts and "none" not in texts
    fast, slow = points(svg)
    assert len(fast) == 1 + 2 * 4 and len(slow) == 1 + 2 * 3
    for curve in (fast, slow):
        xs, ys = [p[0] for p in curve], [p[1] for p in curve]
        assert xs == sorted(xs)  # latencies in order
        assert ys == sorted(ys, reverse=True)  # the share only grows (SVG y points down)
        assert ys[0] > ys[-1]
    assert fast[-1][0] < slow[1][0]  # every fast change left of the first slow one
    # axis decades from 10 ms to 100 s cover both
    assert "10 ms" in texts and "100 s" in texts


def test_a_cdf_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no latencies"):
        plots.latency_cdf({"syncd": [], "baseline": []}, "x")


def test_growth_draws_time_and_rss_against_nodes() -> None:
    rows = [{"nodes": 40000, "time_to_synced_s": 10.7, "peak_rss_mb": 230.0},
            {"nodes": 10000, "time_to_synced_s": 3.0, "peak_rss_mb": 140.0}]
    svg = plots.growth(rows, "growth")
    time_curve, rss_curve = points(svg)
    for curve in (time_curve, rss_curve):
        assert len(curve) == 2 and curve[0][0] < curve[1][0]  # sorted by nodes
        assert curve[0][1] > curve[1][1]  # both grow with the cluster
    texts = [t.text for t in ET.fromstring(svg).iter(f"{NS}text")]
    assert "10k" in texts and "40k" in texts
    with pytest.raises(ValueError, match="two cluster sizes"):
        plots.growth(rows[:1], "one")


def test_a_rerender_keeps_the_sections_other_benchmarks_wrote() -> None:
    old = ("# Scale benchmark results\n\nold table\n\n## Goals (issue 7)\nold goals\n\n"
           "## How it is measured\nold notes\n\n## Requeue (issue 14)\nrequeue rows\n\n"
           "## Events end to end\nevent rows\n")
    new = "# Scale benchmark results\n\nnew table\n\n## Goals (issue 7)\nnew\n"
    out = keep_other_sections(new, old)
    assert out.startswith(new.rstrip("\n"))
    assert "requeue rows" in out and "event rows" in out
    assert "old table" not in out and "old goals" not in out and "old notes" not in out
    assert keep_other_sections(new, "# only generated\n\n## Goals\nx\n") == new
