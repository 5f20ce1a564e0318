"""Turns the scale benchmark's results into a console summary and bench/RESULTS.md tables."""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import psutil

from bench import plots
from bench.stages import STAGES

R = dict[str, Any]


def f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if x != x:  # NaN
            return "n/a"
        return f"{x:.{digits}f}"
    return str(x)


def ms(x: Any) -> str:
    return "n/a" if not isinstance(x, float) or x != x else f"{x * 1000:.0f} ms"


def held(r: R) -> str:
    """How long the baseline was held for syncd's runs, if it was."""
    spans = r["baseline"].get("held") or []
    return f" (baseline held {sum(e - b for b, e in spans):.0f} s)" if spans else ""


def summary(r: R) -> str:
    s, b, q = r["syncd"], r["baseline"], r["ratios"]
    return (f"[{r['nodes']} nodes, {r['pods']} pods] first sync syncd "
            f"{s['first_sync']['seconds']:.1f}s baseline {b['first_sync']['seconds']:.1f}s | "
            f"latency syncd p50 {ms(s['latency']['p50'])} p99 {ms(s['latency']['p99'])} "
            f"mean {ms(s['latency']['mean'])}; baseline mean {ms(b['latency']['mean'])} | "
            f"ratio {f(q['mean_latency'], 1)}x | mass: syncd {f(s['mass']['drain_calls'], 0)} "
            f"calls {s['mass']['seconds']:.1f}s, baseline {f(b['mass']['drain_calls'], 0)} calls "
            f"{b['mass']['seconds']:.1f}s | syncd RSS {s['usage']['peak_rss_mb']:.0f} MB | "
            f"wall {r['wall_seconds']:.0f}s")


def machine() -> list[str]:
    vm = psutil.virtual_memory()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [f"{os.cpu_count()} cores ({cpu or platform.machine()})",
            f"{vm.total / 2**30:.1f} GiB RAM", f"Linux {platform.release()}",
            f"Python {sys.version.split()[0]}"]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render(results: list[R], wall: float, argv: Sequence[str] | None) -> str:
    cmd = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    version = results[0]["slurm_version"] if results else "?"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    lines = [
        "# Scale benchmark results", "",
        "Written by `bench/scale.py` (`python -m bench`); how each number is measured is at the "
        "end of this file. What profiling found and fixed, with before/after numbers, is in "
        "`bench/PROFILING.md`.", "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}",
        f"- Machine: {', '.join(machine())}, {version}; shared with another engineer, so "
        "absolute times are noisy: compare the ratios, measured side by side in one run",
        f"- Command: `{cmd}` (total wall time {wall:.0f} s)", "",
    ]
    head = ["", *[f"{r['nodes']:,} nodes / {r['pods']:,} pods" for r in results]]
    lines += [_row(head), _row(["---"] * len(head))]

    def add(label: str, get: Any) -> None:
        cells = []
        for r in results:
            try:
                cells.append(get(r))
            except (KeyError, TypeError, IndexError):
                cells.append("-")
        lines.append(_row([label, *cells]))

    add("real slurmd + ghost nodes",
        lambda r: f"{r['real_slurmd']} + {r['nodes'] - r['real_slurmd']}")
    add("**first full sync** syncd", lambda r: f"{r['syncd']['first_sync']['seconds']:.1f} s "
        f"({f(r['syncd']['first_sync']['slurm_ops'].get('set_features'), 0)} update calls)")
    add("first full sync baseline", lambda r: f"{r['baseline']['first_sync']['seconds']:.1f} s "
        f"({r['baseline']['first_sync']['slurm_writes']} update calls)")
    for who in ("syncd", "baseline"):
        add(f"**change -> applied** {who} p50 / p95 / p99 (slurmctld log)",
            lambda r, w=who: " / ".join(ms(r[w]["latency"].get("applied", {}).get(k))
                                        for k in ("p50", "p95", "p99")))
        add(f"**change -> visible** {who} p50 / p95 / p99 (observer)", lambda r, w=who: " / ".join(
            ms(r[w]["latency"][k]) for k in ("p50", "p95", "p99")))
        add(f"latency {who} mean (NotReady / GPUs)", lambda r, w=who: (
            f"{ms(r[w]['latency']['mean'])} ({ms(r[w]['latency'].get('mean_notready'))} / "
            f"{ms(r[w]['latency'].get('mean_gpus'))})"))
        add(f"changes seen / sent ({who})", lambda r, w=who: (
            f"{r[w]['latency']['seen']} / {r[w]['latency']['n']}"))
    for stage in STAGES:
        add(f"syncd pass stage {stage}: passes, mean, p50 / p99 bucket", lambda r, st=stage: (
            _stage(r["syncd"]["latency"].get("stages", {}).get(st))))
    add("syncd longest GC pause since start; confirming reads agreed / disagreed", lambda r: (
        f"{ms(r['syncd']['latency'].get('gc_pause_max'))}; "
        f"{f(r['syncd']['latency'].get('confirms', {}).get('agreed'), 0)} / "
        f"{f(r['syncd']['latency'].get('confirms', {}).get('disagreed'), 0)}"))
    add("syncd GC pauses during the latency run: per generation n, > 10 ms, > 50 ms",
        lambda r: _gc(r["syncd"]["latency"].get("gc")))
    add("pod churn during syncd's latency run", lambda r: (
        f"{r['syncd']['latency']['churned']} replacements, "
        f"{f(r['syncd']['latency']['reconciles'], 0)} reconciles"))
    add("**CPU** syncd total (own + scontrol children)", lambda r: (
        f"{r['syncd']['usage']['cpu']:.1f} s + {r['syncd']['usage']['children_cpu']:.1f} s"))
    add("CPU syncd: first sync / latency run", lambda r: (
        f"{r['syncd']['first_sync']['cpu']:.1f} s / {r['syncd']['latency']['cpu']:.1f} s"))
    add("CPU baseline total (own + children)", lambda r: (
        f"{r['baseline']['usage']['cpu']:.1f} s + {r['baseline']['usage']['children_cpu']:.1f} s"))
    add("**peak RSS** syncd / baseline", lambda r: (
        f"{r['syncd']['usage']['peak_rss_mb']:.0f} MB / "
        f"{r['baseline']['usage']['peak_rss_mb']:.0f} MB"))
    for who in ("syncd", "baseline"):
        add(f"**steady** {who}: Slurm reads / writes per min", lambda r, w=who: (
            f"{f(r[w]['steady']['slurm_reads_per_min'], 1)} / "
            f"{f(r[w]['steady']['slurm_writes_per_min'], 1)}"))
        add(f"steady {who}: K8s requests / lists per min", lambda r, w=who: (
            f"{f(r[w]['steady']['kube_requests_per_min'], 1)} / "
            f"{f(r[w]['steady']['kube_lists_per_min'], 1)}"))
    for who in ("syncd", "baseline"):
        add(f"**mass event** {who}: drain calls, time to all drained", lambda r, w=who: (
            f"{f(r[w]['mass']['drain_calls'], 0)} call(s) for "
            f"{r[w]['mass'].get('drainable', r[w]['mass']['nodes'])} drains "
            f"({r[w]['mass']['nodes']} NotReady), {r[w]['mass']['seconds']:.1f} s"))
    add("mass event syncd: all Slurm ops", lambda r: ", ".join(
        f"{k} {v:.0f}" for k, v in sorted(r["syncd"]["mass"]["slurm_ops"].items())))
    add("**breaker on** (limit %)", lambda r: (
        f"{r['syncd']['breaker']['limit_percent']:g}% : opened after "
        f"{ms(r['syncd']['breaker']['opened_after'])}, {r['syncd']['breaker']['breaker_events']}"
        f" open event(s), {r['syncd']['breaker']['event_withheld']} withheld, "
        f"{f(r['syncd']['breaker']['drain_calls'], 0)} drain calls, "
        f"{r['syncd']['breaker']['drained_in_slurm']} drained"))
    add("**ratio** mean latency baseline/syncd", lambda r: f"{f(r['ratios']['mean_latency'], 0)}x")
    add("ratio p99 latency baseline/syncd", lambda r: f"{f(r['ratios']['p99_latency'], 0)}x")
    add("ratio first sync baseline/syncd", lambda r: f"{f(r['ratios']['first_sync'], 1)}x")
    add("ratio mass drain calls baseline/syncd", lambda r: f"{f(r['ratios']['mass_calls'], 0)}x")
    add("syncd latency / breaker run during a baseline poll", lambda r: (
        f"{r['syncd']['latency']['baseline_poll_overlap']:.1f} s / "
        f"{r['syncd']['breaker']['baseline_poll_overlap']:.1f} s overlap{held(r)}"))
    add("wall time of this size", lambda r: f"{r['wall_seconds']:.0f} s "
        f"(2 sandboxes {r['setup']['sandbox']:.0f} s, 2 simulated clusters "
        f"{r['setup']['simulator']:.0f} s, the runs side by side {r['setup']['runs']:.0f} s)")
    lines += ["", f"![Kubernetes change -> in Slurm, {results[-1]['nodes']:,} nodes: syncd "
              "against the polling baseline](latency-cdf.svg)" if results else "", ""]
    lines += goals(results)
    lines.append(NOTES)
    return "\n".join(lines) + "\n"


#: Headings this module writes; any other section of an existing RESULTS.md was written by
#: another benchmark (requeue, first-sync growth, events) and is kept on a re-render.
OWN_SECTIONS = ("## Goals", "## How it is measured")


def keep_other_sections(generated: str, existing: str) -> str:
    """``generated``, followed by the sections of ``existing`` that this module did not write."""
    kept: list[str] = []
    keeping = False
    for line in existing.splitlines():
        if line.startswith("## "):
            keeping = not line.startswith(OWN_SECTIONS)
        if keeping:
            kept.append(line)
    return generated if not kept else generated.rstrip("\n") + "\n\n" + "\n".join(kept) + "\n"


def _gc(gens: dict[str, Any] | None) -> str:
    if gens is None:
        return "-"
    if not gens:
        return "none"
    return "; ".join(f"gen {g}: {st['n']}, {st['over_10ms']}, {st['over_50ms']}"
                     for g, st in sorted(gens.items()))


def _stage(st: dict[str, Any] | None) -> str:
    if not st:
        return "-"
    def fine(x: float) -> str:
        return f"{x * 1000:.1f} ms"

    return f"{st['n']}, {fine(st['mean'])}, <= {fine(st['p50_le'])} / <= {fine(st['p99_le'])}"


def latency_plot(results: list[R]) -> str:
    """The CDF of the largest size: change -> applied and -> visible, syncd and baseline."""
    big = results[-1]
    series: dict[str, list[float]] = {}
    for who in ("syncd", "baseline"):
        samples = ((big.get(who) or {}).get("latency") or {}).get("samples") or {}
        series[f"{who}: applied (slurmctld log)"] = samples.get("applied", [])
        series[f"{who}: visible (observer)"] = samples.get("visible", [])
    return plots.latency_cdf(series, f"Kubernetes change -> Slurm at {big['nodes']:,} nodes "
                                     f"/ {big['pods']:,} pods, with churn")


def goals(results: list[R]) -> list[str]:
    if not results:
        return []
    big = results[-1]
    s = big["syncd"]
    mass = s["mass"]
    drains = mass.get("drainable", mass["nodes"])
    # 10 calls per 1,000 drains; a smaller event may still take one call.
    allowed = max(1, math.ceil(drains * 10 / 1000))
    rows = [
        ("p99 latency < 1 s", "1 s", ms(s["latency"]["p99"]), s["latency"]["p99"] < 1.0),
        ("mean detection-to-drain >= 30x baseline", "30x",
         f"{f(big['ratios']['mean_latency'], 0)}x", big["ratios"]["mean_latency"] >= 30),
        ("peak RSS < 250 MB", "250 MB", f"{s['usage']['peak_rss_mb']:.0f} MB",
         s["usage"]["peak_rss_mb"] < 250),
        ("first sync < 10 s", "10 s", f"{s['first_sync']['seconds']:.1f} s",
         s["first_sync"]["seconds"] < 10),
        ("0 Slurm writes / min when idle", "0", f(s["steady"]["slurm_writes_per_min"], 1),
         s["steady"]["slurm_writes_per_min"] == 0),
        ("0 Kubernetes lists / min when idle", "0", f(s["steady"]["kube_lists_per_min"], 1),
         s["steady"]["kube_lists_per_min"] == 0),
        ("<= 10 slurmctld calls per 1,000 drains", "10",
         f"{mass['drain_calls']:.0f} calls for {drains} drains"
         f"{'' if mass.get('all_drained') else ' (NOT all drained)'}",
         mass["drain_calls"] <= allowed and bool(mass.get("all_drained"))),
    ]
    out = [f"## Goals (issue 7) at {big['nodes']:,} nodes", "",
           _row(["goal", "target", "measured", "met"]), _row(["---"] * 4)]
    out += [_row([g, t, m, "yes" if ok else "**no**"]) for g, t, m, ok in rows]
    return [*out, ""]


NOTES = """## How it is measured

- **Cluster**: the simulator (`python -m kubesim`, own process) holds N nodes with 8 GPUs and
  10 pods each: 6 one-GPU pods and 4 CPU-only pods, so every node should carry `gpu_avail_2`.
  Slurm is `scripts/slurm-sandbox`: a real slurmctld, real slurmd for the first nodes, ghosts
  (no slurmd) for the rest. Each system has a world of its own, built the same way (its own
  sandbox and simulator process holding the same cluster), so neither sees the other's
  changes and both start from the same state.
- **Schedule** (`bench/runs.py`, `side_by_side`): the baseline is idle between its polls, so
  syncd's phases run in those gaps instead of after it. syncd's first sync runs alone; its
  steady window (counted, not timed) runs while the baseline does its first sync; its latency
  run and mass event go into gaps between two baseline polls; the breaker run too, when the
  gap left is long enough. When a whole gap is too short (at 10,000 nodes an idle poll takes
  longer than the 8.5 s a 30 s interval leaves for syncd's 21.5 s latency run), the baseline
  is held between two polls (no poll starts; bench/baseline.py) while syncd runs, and its own
  latency run follows in its next gap; the breaker run after the baseline's last poll is
  held for too. The table's "overlap" row shows how long syncd's latency and breaker runs
  shared the machine with a baseline poll (0 s means never) and how long the baseline was
  held.
- **Ghosts**: slurmctld shows them `UNKNOWN+NOT_RESPONDING`. syncd drains a node that is out
  only because its slurmd is silent (it would take jobs the moment slurmd answered), so every
  node of a mass event is drained and counted; NotReady latency changes use real-slurmd nodes,
  GPU changes and churn use ghosts.
- **Visible** means the benchmark's observer sees it in slurmctld: one
  `scontrol -o show node <hostlist of pending nodes>` every 50 ms (about 30 ms a call at 10,000
  nodes; a full `scontrol -o show node` every 0.5 s when more than 300 are pending). A change's
  time is taken before its API call; its visibility when the answer arrived (an upper bound).
  The baseline's observer reads only while a poll runs and once after it ends: nothing else
  writes to the baseline's Slurm, and the reads would otherwise cost CPU during syncd's phases.
- **Applied** means slurmctld applied the update, by its own log: the update lines carry
  millisecond timestamps (feature updates are logged only at `debug2`, so the benchmark runs
  `scontrol setdebug debug2` for the latency runs and `info` again after; bench/slurmlog.py),
  set against the wall-clock time taken beside the change's start. It has no observer delay;
  it is the number to compare with a latency goal. `latency-cdf.svg` beside this file shows
  both distributions, syncd's and the baseline's, for the largest size.
- **First full sync**: from spawning the process to every node showing its `gpu_avail_N`.
- **Latency**: 200 changes, every 5th a node going NotReady (expect DRAIN), the rest a 2-GPU
  pod starting (expect `gpu_avail_0`), with 10 pod replacements per second (every other one a
  GPU pod) on other nodes. syncd: spread evenly over 20 s. Baseline: spread evenly over the gap
  between two polls, so each waits a uniformly distributed share of the 30 s interval, as in
  production.
- **Steady**: syncd: a 30 s window after the first sync with nothing changing, from its
  `/metrics` and the simulator's request counters (lists = GETs minus watches). Baseline: the
  poll after its first sync (nothing to do), per poll times 2 per minute.
- **Mass event**: 10 % of the nodes NotReady through 64 concurrent API calls; the time is until
  every drainable node shows DRAIN. The baseline's event lands half an interval before its
  next poll (its average wait; right after a poll it would be the full 30 s). Calls are
  syncd's `drain` operations (the baseline's are its `scontrol update` count).
  **Breaker on**: a second syncd with a fresh state directory and `max_drain_percent` set
  below the drainable nodes of a second mass event.
- **syncd settings**: production defaults (50 Slurm calls/s, burst 20; debounce 50 ms; Redis
  events on, a unique stream deleted afterwards) except `drain_after: 0s`, leader election off,
  breaker off (except the breaker run) and `capacity.hold_jobs: false`: hold jobs submit and
  cancel one placeholder job per node change, which at 10,000 nodes measures sbatch, not syncd.
- **Baseline** (`bench/baseline.py`): every 30 s (start to start), full list of nodes and pods
  with kubernetes-asyncio, `scontrol -o show node`, then one `scontrol update` per node action.
  Charity: list bodies are parsed as plain JSON instead of kubernetes-asyncio models.
- **CPU / RSS**: psutil `cpu_times` of the process (own, and reaped children = scontrol) and the
  kernel's `VmHWM` (peak RSS), read just before the process is stopped.
"""
