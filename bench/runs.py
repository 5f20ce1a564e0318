"""One system under test through the scenarios: syncd (event-driven) or the polling baseline.

Both are measured the same way, by the :class:`~bench.harness.SlurmObserver` reading
slurmctld; the only difference is how each is started and where its counters come from
(syncd's /metrics, the baseline's per-poll JSON lines), plus the simulator's request counters.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    Child,
    Expect,
    Sandbox,
    SlurmObserver,
    Syncd,
    child_env,
    free_port,
    metric_sum,
    redis_drop,
    redis_events,
    slurm_calls,
    syncd_config,
    usage,
)
from bench.workload import Cluster, sim_requests, with_churn

#: syncd_slurm_calls_total ops that only read (full and incremental reads).
READS = frozenset({"read", "read_nodes"})


@dataclass
class Knobs:
    changes: int = 200
    change_span: float = 20.0  # syncd: changes spread over this many seconds
    churn_rate: float = 10.0  # pod replacements per second during the latency scenario
    steady: float = 30.0
    interval: float = 30.0  # the baseline's poll interval
    notready_every: int = 5  # every 5th change is a NotReady (needs a real slurmd node)
    mass_real: int = 40  # real slurmd nodes in each mass event
    profile: Path | None = None
    syncd_module: str = "syncd"
    baseline: bool = True


Result = dict[str, Any]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def latency_stats(items: list[Expect]) -> Result:
    lat = [e.latency for e in items if e.seen_at is not None]
    out: Result = {"n": len(items), "seen": len(lat)}
    if lat:
        out.update(mean=statistics.fmean(lat), p50=pct(lat, 50), p95=pct(lat, 95),
                   p99=pct(lat, 99), max=max(lat))
        for kind in ("notready", "gpus"):
            k = [e.latency for e in items if e.kind == kind and e.seen_at is not None]
            if k:
                out[f"mean_{kind}"] = statistics.fmean(k)
    return out


def first_sync_expects(obs: SlurmObserver, cluster: Cluster, t0: float) -> list[Expect]:
    return [obs.expect(n, f"gpu_avail_{cluster.avail[n]}", t0, "first") for n in cluster.names]


def done_at(items: list[Expect]) -> float:
    return max((e.seen_at or float("nan")) for e in items)


# --- syncd -----------------------------------------------------------------------------------


@dataclass
class SyncdRun:
    box: Sandbox
    cluster: Cluster
    kubeconfig: Path
    work: Path
    knobs: Knobs
    stream: str = field(default_factory=lambda: f"syncd:bench:{uuid.uuid4().hex[:12]}")

    def start(self, name: str, breaker: dict[str, Any]) -> Syncd:
        port = free_port()
        state = self.work / f"state-{name}"
        cfg = syncd_config(self.work / f"syncd-{name}.yaml", kubeconfig=self.kubeconfig,
                           slurm_conf=self.box.conf, state_dir=state, port=port,
                           stream=self.stream, breaker=breaker)
        return Syncd(cfg, port, self.work / f"syncd-{name}.log", child_env(self.box.conf),
                     module=self.knobs.syncd_module)

    async def run(self) -> Result:
        try:
            return await self._run()
        finally:
            redis_drop(self.stream)

    async def _run(self) -> Result:
        out: Result = {}
        sd = self.start("main", {"enabled": False})
        try:
            async with SlurmObserver(self.box.env) as obs:
                first = first_sync_expects(obs, self.cluster, sd.started)
                if not await obs.wait(first, 300):
                    raise RuntimeError(f"syncd first sync incomplete:\n{sd.tail()}")
                m = sd.metrics()
                out["first_sync"] = {"seconds": done_at(first) - sd.started,
                                     "slurm_ops": slurm_calls(m),
                                     "cpu": usage(sd.pid).cpu}
                out["steady"] = await self._steady(sd)
                out["latency"] = await self._latency(sd, obs)
                out["mass"] = await self._mass(sd, obs)
            u = usage(sd.pid)
            out["usage"] = {"cpu": u.cpu, "children_cpu": u.children_cpu,
                            "peak_rss_mb": u.peak_rss_mb}
        finally:
            sd.stop()
        out["breaker"] = await self._breaker()
        return out

    async def _quiet(self, sd: Syncd, seconds: float = 2.0, most: float = 20.0) -> None:
        """Until syncd wrote nothing to Slurm for ``seconds`` (at most ``most`` seconds).

        Reconciles are not the measure: while a node is NotReady syncd's drain_after timer
        stays due and it reconciles back to back (see RESULTS.md, profiling)."""
        last, start = -1.0, time.monotonic()
        since = start
        while time.monotonic() - since < seconds and time.monotonic() - start < most:
            ops = slurm_calls(sd.metrics())
            n = sum(v for o, v in ops.items() if o not in READS)
            if n != last:
                last, since = n, time.monotonic()
            await asyncio.sleep(0.2)

    async def _steady(self, sd: Syncd) -> Result:
        await self._quiet(sd)
        m0, r0, t0 = sd.metrics(), await sim_requests(self.cluster.sim), time.monotonic()
        await asyncio.sleep(self.knobs.steady)
        m1, r1, t1 = sd.metrics(), await sim_requests(self.cluster.sim), time.monotonic()
        per_min = 60.0 / (t1 - t0)
        ops0, ops1 = slurm_calls(m0), slurm_calls(m1)
        writes = sum(v for o, v in ops1.items() if o not in READS) - sum(
            v for o, v in ops0.items() if o not in READS)
        lists = (r1["GET"] - r1["watches"]) - (r0["GET"] - r0["watches"])
        return {"window": t1 - t0,
                "slurm_reads_per_min": sum(ops1.get(o, 0) - ops0.get(o, 0) for o in READS)
                * per_min,
                "slurm_writes_per_min": writes * per_min,
                "kube_requests_per_min": (r1["total"] - r0["total"]) * per_min,
                "kube_lists_per_min": lists * per_min,
                "reconciles_per_min": (metric_sum(m1, "syncd_reconciles_total")
                                       - metric_sum(m0, "syncd_reconciles_total")) * per_min}

    async def _latency(self, sd: Syncd, obs: SlurmObserver) -> Result:
        k = self.knobs
        changes = self.cluster.take_changes(k.changes, k.notready_every)
        m0, u0 = sd.metrics(), usage(sd.pid)
        spy = None
        if k.profile is not None:
            k.profile.mkdir(parents=True, exist_ok=True)
            pyspy = str(Path(sys.executable).parent / "py-spy")
            spy = Child([pyspy, "record", "--pid", str(sd.pid), "--rate", "100",
                         "--duration", str(int(k.change_span) + 5), "--format", "raw",
                         "--nonblocking", "-o",
                         str(k.profile / f"syncd-{len(self.cluster.names)}.txt")],
                        k.profile / "py-spy.log", child_env(self.box.conf))

        async def body() -> list[Expect]:
            items = await self.cluster.spread(obs, changes, k.change_span, "s")
            await obs.wait(items, 120)
            return items

        items = await with_churn(self.cluster, k.churn_rate, body)
        if spy is not None:
            await asyncio.to_thread(spy.proc.wait, 60)
        m1, u1 = sd.metrics(), usage(sd.pid)
        res = latency_stats(items)
        res.update(cpu=u1.cpu - u0.cpu, churned=self.cluster.churned,
                   reconciles=metric_sum(m1, "syncd_reconciles_total")
                   - metric_sum(m0, "syncd_reconciles_total"),
                   slurm_ops={o: v - slurm_calls(m0).get(o, 0)
                              for o, v in slurm_calls(m1).items()})
        return res

    async def _mass(self, sd: Syncd, obs: SlurmObserver) -> Result:
        await self._quiet(sd)
        nodes, real = self.cluster.take_mass(self.knobs.mass_real)
        m0 = sd.metrics()
        t0, items = await self.cluster.mass_notready(obs, nodes, real)
        api_done = time.monotonic() - t0
        ok = await obs.wait(items, 300)
        await self._quiet(sd)
        ops0, ops1 = slurm_calls(sd.metrics()), slurm_calls(m0)
        delta = {o: v - ops1.get(o, 0) for o, v in ops0.items() if v - ops1.get(o, 0)}
        return {"nodes": len(nodes), "drainable": len(real), "all_drained": ok,
                "api_seconds": api_done,
                "seconds": done_at(items) - t0, "drain_calls": delta.get("drain", 0),
                "slurm_ops": delta}

    async def _breaker(self) -> Result:
        k = self.knobs
        n = len(self.cluster.names)
        # The limit must sit below the drainable (real) nodes of the event to be tested.
        percent = 100.0 * max(1, k.mass_real // 2) / n
        sd = self.start("breaker", {"enabled": True, "max_drain_percent": percent,
                                    "min_nodes": 1})
        try:
            # Synced, not merely started: at 10,000 nodes the initial list takes seconds and
            # drains (and so the breaker) wait for it.
            while metric_sum(sd.metrics(), "syncd_kubernetes_synced") < 1 or metric_sum(
                    sd.metrics(), "syncd_reconciles_total") < 1:
                if not sd.alive():
                    raise RuntimeError(f"syncd (breaker run) exited:\n{sd.tail()}")
                await asyncio.sleep(0.1)
            await self._quiet(sd)
            nodes, real = self.cluster.take_mass(k.mass_real)
            m0 = sd.metrics()
            async with SlurmObserver(self.box.env) as obs:
                t0, _ = await self.cluster.mass_notready(obs, nodes, [])
                opened = None
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if metric_sum(sd.metrics(), "syncd_breaker_open") >= 1:
                        opened = time.monotonic() - t0
                        break
                    await asyncio.sleep(0.05)
                await self._quiet(sd)
            m1 = sd.metrics()
            shown = self.box.scontrol("-o", "show", "node")
            wanted = set(nodes)
            drained = sum(1 for line in shown.splitlines() if _drained(line, wanted))
            events = [e for e in redis_events(self.stream, "io.syncd.breaker.v1")
                      if e.get("data", {}).get("state") == "open"]
            return {"nodes": len(nodes), "drainable": len(real), "limit_percent": percent,
                    "opened_after": opened, "drained_in_slurm": drained,
                    "withheld_gauge": metric_sum(m1, "syncd_withheld_drains"),
                    "drain_calls": slurm_calls(m1).get("drain", 0)
                    - slurm_calls(m0).get("drain", 0),
                    "breaker_events": len(events),
                    "event_withheld": len(events[-1]["data"].get("withheld", []))
                    if events else 0,
                    "event_why": events[-1]["data"].get("why", "") if events else ""}
        finally:
            sd.stop()


def _drained(line: str, nodes: set[str]) -> bool:
    name = line.split(" ", 1)[0].removeprefix("NodeName=")
    if name not in nodes:
        return False
    state = line.split(" State=", 1)[1].split(" ", 1)[0] if " State=" in line else ""
    return "DRAIN" in state.split("+")


# --- the baseline ---------------------------------------------------------------------------


class Baseline(Child):
    """``python -m bench.baseline`` with its per-poll JSON lines collected by a thread."""

    def __init__(self, kubeconfig: Path, interval: float, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.polls: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline", "--kubeconfig", str(kubeconfig),
             "--interval", str(interval)],
            stdout=subprocess.PIPE, stderr=open(log, "ab"),  # noqa: SIM115 - the child's
            env=env)
        self.started = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.polls.append(json.loads(line))
            except ValueError:
                continue

    async def poll_done(self, count: int, within: float) -> dict[str, Any]:
        """The ``count``-th poll's record (1-based), once it finished."""
        deadline = time.monotonic() + within
        while len(self.polls) < count:
            if not self.alive():
                raise RuntimeError(f"baseline exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"baseline poll {count} not done within {within:g}s")
            await asyncio.sleep(0.05)
        return self.polls[count - 1]


@dataclass
class BaselineRun:
    box: Sandbox
    cluster: Cluster
    kubeconfig: Path
    work: Path
    knobs: Knobs

    async def run(self) -> Result:
        k = self.knobs
        out: Result = {}
        I = k.interval  # noqa: E741 - the poll interval, as in the docs
        self.box.reset_features()
        bl = Baseline(self.kubeconfig, I, self.work / "baseline.log", child_env(self.box.conf))
        try:
            async with SlurmObserver(self.box.env) as obs:
                first = first_sync_expects(obs, self.cluster, bl.started)
                if not await obs.wait(first, 900):
                    raise RuntimeError(f"baseline first sync incomplete:\n{bl.tail()}")
                p1 = await bl.poll_done(1, 900)
                out["first_sync"] = {"seconds": done_at(first) - bl.started,
                                     "slurm_writes": p1["slurm_writes"],
                                     "poll_seconds": p1["end"] - p1["start"]}
                # Poll 2 is the steady one (nothing changed since poll 1's writes).
                r0 = await sim_requests(self.cluster.sim)
                p2 = await bl.poll_done(2, 2 * I + 600)
                r1 = await sim_requests(self.cluster.sim)
                per_min = 60.0 / I
                out["steady"] = {
                    "window": I, "slurm_reads_per_min": p2["slurm_reads"] * per_min,
                    "slurm_writes_per_min": p2["slurm_writes"] * per_min,
                    # From the poll's own count: an overrunning poll 1 is followed at once,
                    # so poll 2 may have listed before r0 was read (r1 - r0 is then short).
                    "kube_requests_per_min": p2["kube_lists"] * per_min,
                    "kube_lists_per_min": p2["kube_lists"] * per_min,
                    "sim_requests_in_window": r1["total"] - r0["total"],
                    "poll_seconds": p2["end"] - p2["start"]}
                # The changes land between poll 2's end and poll 3's start, evenly spread:
                # each waits a uniformly distributed share of the interval, as in production.
                changes = self.cluster.take_changes(k.changes, k.notready_every)
                span = max(1.0, p2["start"] + I - 0.5 - time.monotonic())
                u0 = usage(bl.pid)

                async def body() -> list[Expect]:
                    items = await self.cluster.spread(obs, changes, span, "b")
                    await obs.wait(items, 2 * I + 300)
                    return items

                items = await with_churn(self.cluster, k.churn_rate, body)
                res = latency_stats(items)
                res.update(cpu=usage(bl.pid).cpu - u0.cpu, span=span)
                out["latency"] = res
                done = len(bl.polls)
                await bl.poll_done(done + 1 if bl.polls[-1]["end"] < done_at(items) else done,
                                   2 * I + 300)
                nodes, _real = self.cluster.take_mass(k.mass_real)
                before = len(bl.polls)
                t0, mass = await self.cluster.mass_notready(obs, nodes, nodes)
                api_done = time.monotonic() - t0
                ok = await obs.wait(mass, 2 * I + 600)
                await asyncio.sleep(0.2)
                drains = sum(p["drains"] for p in bl.polls[before:])
                out["mass"] = {"nodes": len(nodes), "drainable": len(nodes), "all_drained": ok,
                               "api_seconds": api_done,
                               "seconds": done_at(mass) - t0, "drain_calls": drains,
                               "slurm_ops": {"drain": drains,
                                             "read": len(bl.polls) - before}}
            u = usage(bl.pid)
            out["usage"] = {"cpu": u.cpu, "children_cpu": u.children_cpu,
                            "peak_rss_mb": u.peak_rss_mb}
            out["polls"] = bl.polls
        finally:
            bl.stop()
        return out
