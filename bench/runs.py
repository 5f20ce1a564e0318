"""The two systems under test, phase by phase: syncd (event-driven) and the polling baseline.

Each runs in its own :class:`World` (its own Slurm sandbox and simulator, built the same way),
so neither sees the other's changes and the two can share the clock: :func:`side_by_side` puts
syncd's phases in the baseline's idle gaps between polls. Both are measured the same way, by a
:class:`~bench.harness.SlurmObserver` reading their slurmctld; counters come from syncd's
/metrics, the baseline's per-poll JSON lines and each world's simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import slurmlog
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
from bench.stages import gc_stats, stage_stats
from bench.workload import Cluster, sim_requests, with_churn

#: The baseline's observer reads Slurm until a read started this long after a poll ended (its
#: last write is then certainly visible).
AFTER_POLL = 0.2

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
    redis_url: str = "redis://127.0.0.1:6379/0"  # where syncd publishes its events
    baseline: bool = True
    #: hold the baseline for syncd's runs even when a gap between polls would fit them (the
    #: schedule a large cluster falls back to; --hold-baseline)
    hold: bool = False


Result = dict[str, Any]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def distribution(values: list[float]) -> Result:
    return {"mean": statistics.fmean(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "p99": pct(values, 99), "max": max(values)}


def latency_stats(items: list[Expect]) -> Result:
    lat = [e.latency for e in items if e.seen_at is not None]
    out: Result = {"n": len(items), "seen": len(lat)}
    got = [e.applied for e in items if e.applied_wall is not None]
    # every change, for the distribution plot (bench/plots.py)
    out["samples"] = {"applied": got, "visible": lat}
    # when each change was made, its kind and latency: to line a slow one up with syncd's log
    out["trace"] = [(e.wall0, e.kind, e.applied if e.applied_wall is not None else None)
                    for e in items]
    if got:
        out["applied"] = {"n": len(got), **distribution(got)}
    if lat:
        out.update(distribution(lat))
        for kind in ("notready", "gpus"):
            k = [e.latency for e in items if e.kind == kind and e.seen_at is not None]
            if k:
                out[f"mean_{kind}"] = statistics.fmean(k)
    return out


def first_sync_expects(obs: SlurmObserver, cluster: Cluster, t0: float) -> list[Expect]:
    return [obs.expect(n, f"gpu_avail_{cluster.avail[n]}", t0, "first") for n in cluster.names]


def done_at(items: list[Expect]) -> float:
    return max((e.seen_at or float("nan")) for e in items)


def debug_level(box: Sandbox) -> str:
    """slurmctld's log level now (``SlurmctldDebug`` of ``scontrol show config``)."""
    for line in box.scontrol("show", "config").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "SlurmctldDebug":
            return value.strip()
    raise RuntimeError("scontrol show config names no SlurmctldDebug")


async def applied_clock(box: Sandbox,
                        run: Callable[[], Awaitable[list[Expect]]]) -> list[Expect]:
    """Runs ``run`` with slurmctld logging feature updates (debug2), then stamps what it
    returns with when slurmctld applied each change (bench/slurmlog.py)."""
    log = box.dir / "log" / "slurmctld.log"
    level = await asyncio.to_thread(debug_level, box)
    await asyncio.to_thread(box.scontrol, "setdebug", "debug2")
    offset = log.stat().st_size
    try:
        items = await run()
    finally:
        await asyncio.to_thread(box.scontrol, "setdebug", level)
    slurmlog.stamp(items, await asyncio.to_thread(slurmlog.read_from, log, offset))
    return items


# --- a world ---------------------------------------------------------------------------------


@dataclass
class World:
    """One Slurm sandbox and one simulator with its cluster, for one system under test."""

    box: Sandbox
    cluster: Cluster
    kubeconfig: Path
    work: Path


# --- syncd -----------------------------------------------------------------------------------


@dataclass
class SyncdRun:
    world: World
    knobs: Knobs
    stream: str = field(default_factory=lambda: f"syncd:bench:{uuid.uuid4().hex[:12]}")
    out: Result = field(default_factory=dict)
    sd: Syncd | None = None
    obs: SlurmObserver | None = None

    @property
    def cluster(self) -> Cluster:
        return self.world.cluster

    def _spawn(self, name: str, breaker: dict[str, Any]) -> Syncd:
        w = self.world
        port = free_port()
        cfg = syncd_config(w.work / f"syncd-{name}.yaml", kubeconfig=w.kubeconfig,
                           slurm_conf=w.box.conf, state_dir=w.work / f"state-{name}",
                           port=port, redis_url=self.knobs.redis_url, stream=self.stream,
                           breaker=breaker)
        return Syncd(cfg, port, w.work / f"syncd-{name}.log", child_env(w.box.conf),
                     module=self.knobs.syncd_module)

    @property
    def main(self) -> Syncd:
        assert self.sd is not None, "syncd is not running"
        return self.sd

    async def first_sync(self) -> None:
        """Starts the main syncd and waits until slurmctld shows every node's capacity."""
        self.sd = sd = self._spawn("main", {"enabled": False})
        self.obs = obs = SlurmObserver(self.world.box.env).start()
        first = first_sync_expects(obs, self.cluster, sd.started)
        if not await obs.wait(first, 300):
            raise RuntimeError(f"syncd first sync incomplete:\n{sd.tail()}")
        self.out["first_sync"] = {"seconds": done_at(first) - sd.started,
                                  "slurm_ops": slurm_calls(sd.metrics()),
                                  "cpu": usage(sd.pid).cpu}

    async def close(self) -> None:
        if self.obs is not None:
            await self.obs.stop()
            self.obs = None
        self.stop_main()
        redis_drop(self.knobs.redis_url, self.stream)

    def stop_main(self) -> None:
        if self.sd is not None:
            u = usage(self.sd.pid)
            self.out["usage"] = {"cpu": u.cpu, "children_cpu": u.children_cpu,
                                 "peak_rss_mb": u.peak_rss_mb}
            self.sd.stop()
            self.sd = None

    async def _quiet(self, sd: Syncd, seconds: float = 2.0, most: float = 20.0) -> None:
        """Until syncd wrote nothing to Slurm for ``seconds`` (at most ``most`` seconds)."""
        last, start = -1.0, time.monotonic()
        since = start
        while time.monotonic() - since < seconds and time.monotonic() - start < most:
            ops = slurm_calls(sd.metrics())
            n = sum(v for o, v in ops.items() if o not in READS)
            if n != last:
                last, since = n, time.monotonic()
            await asyncio.sleep(0.2)

    async def steady(self) -> None:
        sd = self.main
        await self._quiet(sd)
        sim = self.cluster.sim
        m0, r0, t0 = sd.metrics(), await sim_requests(sim), time.monotonic()
        await asyncio.sleep(self.knobs.steady)
        m1, r1, t1 = sd.metrics(), await sim_requests(sim), time.monotonic()
        per_min = 60.0 / (t1 - t0)
        ops0, ops1 = slurm_calls(m0), slurm_calls(m1)
        writes = sum(v for o, v in ops1.items() if o not in READS) - sum(
            v for o, v in ops0.items() if o not in READS)
        lists = (r1["GET"] - r1["watches"]) - (r0["GET"] - r0["watches"])
        self.out["steady"] = {
            "window": t1 - t0,
            "slurm_reads_per_min": sum(ops1.get(o, 0) - ops0.get(o, 0) for o in READS) * per_min,
            "slurm_writes_per_min": writes * per_min,
            "kube_requests_per_min": (r1["total"] - r0["total"]) * per_min,
            "kube_lists_per_min": lists * per_min,
            "reconciles_per_min": (metric_sum(m1, "syncd_reconciles_total")
                                   - metric_sum(m0, "syncd_reconciles_total")) * per_min}

    async def latency(self) -> None:
        k, sd, obs = self.knobs, self.main, self.obs
        assert obs is not None
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
                        k.profile / "py-spy.log", child_env(self.world.box.conf))

        async def body() -> list[Expect]:
            items = await self.cluster.spread(obs, changes, k.change_span, "s")
            await obs.wait(items, 120)
            return items

        t0 = time.monotonic()
        items = await applied_clock(
            self.world.box, lambda: with_churn(self.cluster, k.churn_rate, body))
        if spy is not None:
            await asyncio.to_thread(spy.proc.wait, 60)
        m1, u1 = sd.metrics(), usage(sd.pid)
        res = latency_stats(items)
        res.update(cpu=u1.cpu - u0.cpu, churned=self.cluster.churned, began=t0,
                   ended=time.monotonic(),
                   reconciles=metric_sum(m1, "syncd_reconciles_total")
                   - metric_sum(m0, "syncd_reconciles_total"),
                   slurm_ops={o: v - slurm_calls(m0).get(o, 0)
                              for o, v in slurm_calls(m1).items()},
                   stages=stage_stats(m0, m1), gc=gc_stats(m0, m1),
                   gc_pause_max=metric_sum(m1, "syncd_gc_pause_max_seconds"),
                   confirms={o: metric_sum(m1, "syncd_confirmed_nodes_total", outcome=o)
                             - metric_sum(m0, "syncd_confirmed_nodes_total", outcome=o)
                             for o in ("agreed", "disagreed")})
        self.out["latency"] = res

    async def mass(self) -> None:
        sd, obs = self.main, self.obs
        assert obs is not None
        await self._quiet(sd)
        nodes, real = self.cluster.take_mass(self.knobs.mass_real)
        m0 = sd.metrics()
        t0, items = await self.cluster.mass_notready(obs, nodes, nodes)
        api_done = time.monotonic() - t0
        ok = await obs.wait(items, 300)
        await self._quiet(sd)
        ops0, ops1 = slurm_calls(sd.metrics()), slurm_calls(m0)
        delta = {o: v - ops1.get(o, 0) for o, v in ops0.items() if v - ops1.get(o, 0)}
        self.out["mass"] = {"nodes": len(nodes), "drainable": len(nodes), "real": len(real),
                            "all_drained": ok,
                            "api_seconds": api_done, "seconds": done_at(items) - t0,
                            "drain_calls": delta.get("drain", 0), "slurm_ops": delta}

    def breaker_needs(self) -> float:
        """A generous guess of the breaker run's wall time: a fresh syncd's first sync plus
        the two quiet waits and the event."""
        return 1.5 * float(self.out.get("first_sync", {}).get("seconds", 10.0)) + 10.0

    async def breaker(self) -> None:
        """A second syncd (fresh state, breaker on) and a second mass event; the main syncd
        must be stopped first, or it would drain what the breaker withholds."""
        assert self.sd is None, "stop the main syncd first"
        k = self.knobs
        n = len(self.cluster.names)
        # The limit must sit below the drainable (real) nodes of the event to be tested.
        percent = 100.0 * max(1, k.mass_real // 2) / n
        sd = self._spawn("breaker", {"enabled": True, "max_drain_percent": percent,
                                     "min_nodes": 1})
        began = time.monotonic()
        try:
            # Synced, not merely started: at 10,000 nodes the initial list takes seconds and
            # drains (and so the breaker) wait for it.
            while metric_sum(sd.metrics(), "syncd_kubernetes_synced") < 1 or metric_sum(
                    sd.metrics(), "syncd_reconciles_total") < 1:
                if not sd.alive():
                    raise RuntimeError(f"syncd (breaker run) exited:\n{sd.tail()}")
                await asyncio.sleep(0.1)
            await self._quiet(sd)
            nodes, _real = self.cluster.take_mass(k.mass_real)
            m0 = sd.metrics()
            obs = self.obs
            assert obs is not None
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
            shown = self.world.box.scontrol("-o", "show", "node")
            wanted = set(nodes)
            drained = sum(1 for line in shown.splitlines() if _drained(line, wanted))
            events = [e for e in redis_events(self.knobs.redis_url, self.stream,
                                                 "io.syncd.breaker.v1")
                      if e.get("data", {}).get("state") == "open"]
            self.out["breaker"] = {
                "nodes": len(nodes), "drainable": len(nodes), "limit_percent": percent,
                "opened_after": opened, "drained_in_slurm": drained,
                "withheld_gauge": metric_sum(m1, "syncd_withheld_drains"),
                "drain_calls": slurm_calls(m1).get("drain", 0) - slurm_calls(m0).get("drain", 0),
                "breaker_events": len(events),
                "event_withheld": len(events[-1]["data"].get("withheld", [])) if events else 0,
                "event_why": events[-1]["data"].get("why", "") if events else "",
                "began": began, "ended": time.monotonic()}
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
        self.interval = interval
        self.polls: list[dict[str, Any]] = []
        self.poll_began: float | None = None  # the running poll's start, None between polls
        self.held_at: float | None = None  # when it said it holds (bench/baseline.py)
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
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "start":
                self.poll_began = float(record["at"])
            elif record.get("event") == "held":
                self.held_at = float(record["at"])
            else:
                self.polls.append(record)
                self.poll_began = None

    def may_write(self, since: float) -> bool:
        """The observer's gate: True while a poll runs, and until one read that started after
        the last poll's end (with a margin)."""
        if self.poll_began is not None or not self.polls:
            return True
        return since < float(self.polls[-1]["end"]) + AFTER_POLL

    def next_poll_at(self) -> float:
        """When the next poll starts (start to start; an overrunning poll is followed at once)."""
        if self.poll_began is not None:
            return time.monotonic()
        last = self.polls[-1]
        return max(float(last["start"]) + self.interval, float(last["end"]))

    async def hold(self, within: float) -> float:
        """Holds the baseline after its running poll (if any); returns when it holds."""
        self.held_at = None
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + within
        while (at := self._held()) is None:
            if not self.alive():
                raise RuntimeError(f"baseline exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"baseline did not hold within {within:g}s")
            await asyncio.sleep(0.05)
        return at

    def _held(self) -> float | None:
        return self.held_at  # set by the reader thread

    def release(self) -> None:
        """Its next poll starts at once."""
        self.held_at = None
        self.proc.send_signal(signal.SIGUSR2)

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
    world: World
    knobs: Knobs
    out: Result = field(default_factory=dict)
    bl: Baseline | None = None
    obs: SlurmObserver | None = None
    _mass: tuple[float, list[Expect], int] | None = None

    @property
    def cluster(self) -> Cluster:
        return self.world.cluster

    @property
    def proc(self) -> Baseline:
        assert self.bl is not None, "the baseline is not running"
        return self.bl

    def start(self) -> None:
        w = self.world
        self.bl = Baseline(w.kubeconfig, self.knobs.interval, w.work / "baseline.log",
                           child_env(w.box.conf))

    async def first_sync_and_steady(self) -> None:
        """Poll 1 is the first sync; poll 2 (nothing changed since) is the steady one."""
        bl, I = self.proc, self.knobs.interval  # noqa: E741 - the poll interval, as in the docs
        self.obs = obs = SlurmObserver(self.world.box.env, gate=bl.may_write).start()
        first = first_sync_expects(obs, self.cluster, bl.started)
        if not await obs.wait(first, 900):
            raise RuntimeError(f"baseline first sync incomplete:\n{bl.tail()}")
        p1 = await bl.poll_done(1, 900)
        self.out["first_sync"] = {"seconds": done_at(first) - bl.started,
                                  "slurm_writes": p1["slurm_writes"],
                                  "poll_seconds": p1["end"] - p1["start"]}
        p2 = await bl.poll_done(2, 2 * I + 600)
        per_min = 60.0 / I
        # From the poll's own counts: the simulator's counters would also hold the scenario's.
        self.out["steady"] = {
            "window": I, "slurm_reads_per_min": p2["slurm_reads"] * per_min,
            "slurm_writes_per_min": p2["slurm_writes"] * per_min,
            "kube_requests_per_min": p2["kube_lists"] * per_min,
            "kube_lists_per_min": p2["kube_lists"] * per_min,
            "poll_seconds": p2["end"] - p2["start"]}

    async def gap(self, need: float, *, whole: bool = False) -> float | None:
        """Waits, if it must, for a gap between two polls at least ``need`` seconds long, and
        returns when it ends (the next poll's start): the rest of the gap the baseline is in,
        else (or with ``whole``) the next whole gap. None when even a whole gap is shorter:
        the baseline's polls take longer than ``interval - need`` (its idle poll at 10,000
        nodes / 100,000 pods took 13-16 s on a loaded 2-core machine), and waiting for a
        longer gap would wait forever."""
        bl, I = self.proc, self.knobs.interval  # noqa: E741 - the poll interval
        if need >= I:
            raise ValueError(f"a {need:g} s gap never fits a {I:g} s interval")
        if not whole and bl.poll_began is None and bl.polls:
            until = bl.next_poll_at()
            if until - time.monotonic() >= need:
                return until
        # The next poll's record: right after it, a whole gap lies ahead.
        last = await bl.poll_done(len(bl.polls) + 1, 2 * I + 600)
        until = max(float(last["start"]) + I, float(last["end"]))
        return until if until - time.monotonic() >= need else None

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """The baseline holds (no poll starts; a running one finishes first) for the body."""
        bl = self.proc
        began = await bl.hold(2 * self.knobs.interval + 600)
        try:
            yield
        finally:
            self.out.setdefault("held", []).append([began, time.monotonic()])
            bl.release()

    async def latency(self, until: float) -> None:
        """The changes land evenly spread before the poll at ``until``: each waits a uniformly
        distributed share of the interval, as in production."""
        k, bl, obs = self.knobs, self.proc, self.obs
        assert obs is not None
        changes = self.cluster.take_changes(k.changes, k.notready_every)
        span = max(1.0, until - 0.5 - time.monotonic())
        u0 = usage(bl.pid)

        async def body() -> list[Expect]:
            items = await self.cluster.spread(obs, changes, span, "b")
            await obs.wait(items, 2 * k.interval + 300)
            return items

        items = await applied_clock(
            self.world.box, lambda: with_churn(self.cluster, k.churn_rate, body))
        res = latency_stats(items)
        res.update(cpu=usage(bl.pid).cpu - u0.cpu, span=span)
        self.out["latency"] = res
        # The poll that wrote the last change has finished, too.
        began = bl.poll_began
        if began is not None and began < done_at(items):
            await bl.poll_done(len(bl.polls) + 1, 2 * k.interval + 300)

    async def inject_mass(self) -> None:
        """The mass event between two polls, half an interval before the next one (or as the
        gap begins, when polls take longer than half an interval): the baseline's average
        wait for an event that lands at a random moment."""
        obs, bl = self.obs, self.proc
        assert obs is not None
        if bl.poll_began is not None:
            await bl.poll_done(len(bl.polls) + 1, 2 * self.knobs.interval + 600)
        at = bl.next_poll_at() - self.knobs.interval / 2
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        nodes, _real = self.cluster.take_mass(self.knobs.mass_real)
        before = len(self.proc.polls)
        t0, items = await self.cluster.mass_notready(obs, nodes, nodes)
        self._mass = (t0, items, before)
        self.out["mass"] = {"nodes": len(nodes), "drainable": len(nodes),
                            "api_seconds": time.monotonic() - t0}

    async def mass_done(self) -> None:
        assert self._mass is not None
        assert self.obs is not None
        t0, items, before = self._mass
        bl = self.proc
        ok = await self.obs.wait(items, 2 * self.knobs.interval + 600)
        await bl.poll_done(before + 1, 2 * self.knobs.interval + 600)
        drains = sum(p["drains"] for p in bl.polls[before:])
        self.out["mass"].update(all_drained=ok, seconds=done_at(items) - t0, drain_calls=drains,
                                slurm_ops={"drain": drains, "read": len(bl.polls) - before})

    async def close(self) -> None:
        if self.obs is not None:
            await self.obs.stop()
            self.obs = None
        if self.bl is not None:
            u = usage(self.bl.pid)
            self.out["usage"] = {"cpu": u.cpu, "children_cpu": u.children_cpu,
                                 "peak_rss_mb": u.peak_rss_mb}
            self.out["polls"] = self.bl.polls
            self.bl.stop()
            self.bl = None


# --- both, side by side ---------------------------------------------------------------------


def overlap(polls: list[dict[str, Any]], began: float, ended: float) -> float:
    """Seconds of [began, ended] during which a baseline poll ran."""
    return sum(max(0.0, min(ended, float(p["end"])) - max(began, float(p["start"])))
               for p in polls)


async def side_by_side(sw: World, bw: World | None, knobs: Knobs) -> tuple[Result, Result | None]:
    """syncd's phases placed in the baseline's idle time, each system in its own world.

    The phases that are timed (syncd's first sync, its latency run, its mass event, its
    breaker run) never overlap a baseline poll, the only time the baseline uses CPU: syncd's
    first sync runs alone; its steady window (only counted, not timed) overlaps the
    baseline's first sync; its latency run and mass event go into gaps between polls, and the
    breaker run too if it fits, else after the baseline's last poll. The baseline's mass event
    lands half an interval before its next poll, its average case.
    """
    s = SyncdRun(sw, knobs)
    b = BaselineRun(bw, knobs) if bw is not None else None
    try:
        await s.first_sync()
        if b is None:
            await s.steady()
            await s.latency()
            await s.mass()
            s.stop_main()
            await s.breaker()
            return s.out, None
        b.start()
        await asyncio.gather(s.steady(), b.first_sync_and_steady())
        # syncd's changes are spread over change_span, then it waits for them to show.
        until = None if knobs.hold else await b.gap(knobs.change_span + 1.5)
        if until is not None:
            await asyncio.gather(s.latency(), b.latency(until))
            await s.mass()
        else:
            # No gap between two polls is long enough: syncd's runs happen while the
            # baseline is held, and the baseline's own run follows in a whole gap.
            async with b.held():
                await s.latency()
                await s.mass()
            until = await b.gap(1.0, whole=True)
            if until is None:
                raise RuntimeError("the baseline polls without a gap between its polls")
            await b.latency(until)
        s.stop_main()
        await b.inject_mass()
        fits = b.proc.next_poll_at() - time.monotonic() > s.breaker_needs()
        if fits and b.proc.poll_began is None and not knobs.hold:
            await s.breaker()
            await b.mass_done()
        else:
            await b.mass_done()
            async with b.held():
                await s.breaker()
        # The proof of the schedule: how long each timed syncd phase overlapped a poll.
        polls = b.proc.polls
        for phase in ("latency", "breaker"):
            s.out[phase]["baseline_poll_overlap"] = overlap(
                polls, s.out[phase]["began"], s.out[phase]["ended"])
        return s.out, b.out
    finally:
        await s.close()
        if b is not None:
            await b.close()
