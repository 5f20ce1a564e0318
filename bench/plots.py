"""The benchmarks' pictures, as plain SVG (issue 17 item 8): no plotting library in the dev
environment, and a text format that diffs and renders on any code host.

``latency_cdf`` draws, for each series of latencies, the share of changes done within x
(log-scaled x: syncd's tens of milliseconds and a poller's tens of seconds on one axis).
``growth`` draws first-sync time and peak RSS against cluster size, one panel each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 40, 48
#: Colour-blind-safe (Okabe-Ito), in series order.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def _svg(width: int, height: int, body: list[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>', *body, "</svg>", ""])


def _text(x: float, y: float, s: str, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>'
            f"{escape(s)}</text>")


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        c = COLOURS[i % len(COLOURS)]
        out.append(f'<line x1="{x:.1f}" y1="{y + 16 * i:.1f}" x2="{x + 18:.1f}" '
                   f'y2="{y + 16 * i:.1f}" stroke="{c}" stroke-width="2"/>')
        out.append(_text(x + 24, y + 16 * i + 4, name, "start"))
    return out


def _ms(v: float) -> str:
    return f"{v:g} ms" if v < 1000 else f"{v / 1000:g} s"


def latency_cdf(series: Mapping[str, Sequence[float]], title: str) -> str:
    """Empirical CDFs of latencies in seconds (series with no values are left out)."""
    data = {k: sorted(v * 1000 for v in vs if v > 0) for k, vs in series.items()}
    data = {k: v for k, v in data.items() if v}
    if not data:
        raise ValueError("latency_cdf: no latencies to draw")
    lo = 10 ** math.floor(math.log10(min(v[0] for v in data.values())))
    hi = 10 ** math.ceil(math.log10(max(v[-1] for v in data.values())))
    hi = max(hi, lo * 10)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + pw * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    def y(share: float) -> float:
        return TOP + ph * (1 - share)

    body = [_text(W / 2, 20, title, extra=' font-weight="bold"'),
            f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
    decade = lo
    while decade <= hi * 1.0001:
        body.append(f'<line x1="{x(decade):.1f}" y1="{TOP}" x2="{x(decade):.1f}" '
                    f'y2="{TOP + ph}" stroke="#ddd"/>')
        body.append(_text(x(decade), TOP + ph + 16, _ms(decade)))
        decade *= 10
    for share in (0.0, 0.5, 0.9, 0.99):  # the top of the frame is 100 %
        body.append(f'<line x1="{LEFT}" y1="{y(share):.1f}" x2="{LEFT + pw}" '
                    f'y2="{y(share):.1f}" stroke="#eee"/>')
        body.append(_text(LEFT - 6, y(share) + 4, f"{share * 100:g}%", "end"))
    body.append(_text(LEFT + pw / 2, H - 12, "Kubernetes change -> in Slurm (log scale)"))
    body.append(_text(16, TOP + ph / 2, "share of changes", extra=' transform="rotate(-90 16 '
                      f'{TOP + ph / 2:.1f})"'))
    for i, values in enumerate(data.values()):
        n = len(values)
        points = [f"{x(values[0]):.1f},{y(0):.1f}"]
        for j, v in enumerate(values):
            points.append(f"{x(v):.1f},{y(j / n):.1f}")
            points.append(f"{x(v):.1f},{y((j + 1) / n):.1f}")
        body.append(f'<polyline fill="none" stroke="{COLOURS[i % len(COLOURS)]}" '
                    f'stroke-width="2" points="{" ".join(points)}"/>')
    body += _legend(list(data), LEFT + 12, TOP + 16)
    return _svg(W, H, body)


def growth(rows: Sequence[Mapping[str, float]], title: str) -> str:
    """First-sync seconds and peak RSS (MB) against nodes, from ``bench.kube_bench`` rows."""
    if len(rows) < 2:
        raise ValueError("growth: at least two cluster sizes are needed")
    rows = sorted(rows, key=lambda r: r["nodes"])
    xs = [float(r["nodes"]) for r in rows]
    panels = (("time_to_synced_s", "first sync (s)"), ("peak_rss_mb", "peak RSS (MB)"))
    pw, ph = (W - 2 * LEFT - 2 * RIGHT) / 2, H - TOP - BOTTOM
    body = [_text(W / 2, 20, title, extra=' font-weight="bold"')]
    for k, (key, label) in enumerate(panels):
        ox = LEFT + k * (pw + LEFT + RIGHT)
        ys = [float(r[key]) for r in rows]
        top = max(ys) * 1.1

        def px(v: float, ox: float = ox) -> float:
            return ox + pw * v / (xs[-1] * 1.05)

        def py(v: float, top: float = top) -> float:
            return TOP + ph * (1 - v / top)

        body.append(f'<rect x="{ox:.1f}" y="{TOP}" width="{pw:.1f}" height="{ph}" '
                    f'fill="none" stroke="#888"/>')
        body.append(_text(ox + pw / 2, TOP + ph + 34, "nodes (10 pods each)"))
        body.append(_text(ox + 6, TOP + 14, label, "start"))
        for v in xs:
            body.append(_text(px(v), TOP + ph + 16, f"{v / 1000:g}k"))
        for frac in (0.0, 0.5, 1.0):
            body.append(_text(ox - 6, py(top * frac / 1.1) + 4, f"{top * frac / 1.1:.0f}", "end"))
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(xs, ys, strict=True))
        body.append(f'<polyline fill="none" stroke="{COLOURS[k]}" stroke-width="2" '
                    f'points="{points}"/>')
        body += [f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3" fill="{COLOURS[k]}"/>'
                 for a, b in zip(xs, ys, strict=True)]
    return _svg(W, H, body)
