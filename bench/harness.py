"""The moving parts of the scale benchmark: sandbox, simulator, syncd process, observer.

Everything here drives the real components (scripts/slurm-sandbox, ``python -m kubesim``,
``python -m syncd run``) as separate processes, so what is measured on a PID is that process
alone. The :class:`SlurmObserver` is the benchmark's only view of the outcome: a change counts
as delivered when slurmctld shows it, never when syncd says it wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hostlist
import psutil
import yaml

from kubesim.server import start_sim_process

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / "scripts" / "slurm-sandbox"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Slurm sandbox ---------------------------------------------------------------------------


@dataclass
class Sandbox:
    """A running ``scripts/slurm-sandbox``: ``real`` nodes with slurmd, the rest ghosts."""

    dir: Path
    total: int
    real: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def conf(self) -> str:
        return str(self.dir / "etc" / "slurm.conf")

    @property
    def width(self) -> int:
        return max(3, len(str(self.total)))

    @classmethod
    def start(cls, path: Path, total: int, real: int) -> Sandbox:
        # Slurm's default SlurmdTimeout (300 s, slurm.conf(5)), not the sandbox's 60 s for
        # tests: every SlurmdTimeout/3 slurmctld sends each ghost a registration request on a
        # thread of its own (9,800 at 10,000 nodes, ~1.5 s of slurmctld CPU and, under the
        # applied clock's debug2, 9,800 log lines), which a real cluster's slurmds answer
        # through the forwarding tree instead. At 20 s intervals one such round landed in
        # every 20 s latency run (bench/PROFILING.md).
        env = dict(os.environ, SANDBOX_QUIET="1", SANDBOX_SLURMD_TIMEOUT="300")
        env.pop("SLURM_CONF", None)
        box = cls(path, total, real, env)
        box._script("start", "--nodes", str(real), "--ghosts", str(total - real))
        box.env["SLURM_CONF"] = box.conf
        return box

    def _script(self, *args: str) -> None:
        proc = subprocess.run([str(SANDBOX), args[0], str(self.dir), *args[1:]],
                              capture_output=True, text=True, timeout=900, env=self.env,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"slurm-sandbox {args[0]}: {proc.stderr.strip()}")

    def stop(self) -> None:
        self._script("stop")

    def scontrol(self, *argv: str) -> str:
        proc = subprocess.run(["scontrol", *argv], capture_output=True, text=True, timeout=120,
                              env=self.env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"scontrol {' '.join(argv)}: {proc.stderr.strip()}")
        return proc.stdout

    def version(self) -> str:
        out = subprocess.run(["sinfo", "-V"], capture_output=True, text=True, env=self.env,
                             check=False).stdout
        return out.strip() or "unknown"


# --- what slurmctld shows ----------------------------------------------------------------------

_NAME = re.compile(r"NodeName=(\S+)")
_STATE = re.compile(r" State=(\S+)")
_ACTIVE = re.compile(r" ActiveFeatures=(\S+)")


def parse_show(text: str) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """node -> (state words, active features) from ``scontrol -o show node``."""
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for line in text.splitlines():
        name = _NAME.match(line)
        if name is None:
            continue
        state = _STATE.search(line)
        active = _ACTIVE.search(line)
        out[name.group(1)] = (
            frozenset(state.group(1).split("+")) if state else frozenset(),
            frozenset(active.group(1).split(",")) if active else frozenset())
    return out


def parse_sinfo(text: str) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """The same from ``sinfo -h -N -O NodeList:|,StateComplete:|,features_act:|`` lines."""
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 3 and parts[0].strip():
            out[parts[0].strip()] = (frozenset(parts[1].strip().upper().split("+")),
                                     frozenset(f for f in parts[2].strip().split(",") if f))
    return out


def visible(want: str, seen: tuple[frozenset[str], frozenset[str]]) -> bool:
    """``want`` is ``DRAIN`` (a state flag) or a feature name."""
    states, features = seen
    return want in states if want == "DRAIN" else want in features


@dataclass
class Expect:
    """One change the benchmark waits to see in slurmctld."""

    node: str
    want: str
    t0: float
    kind: str = ""
    seen_at: float | None = None
    #: wall-clock start (``time.time()`` beside ``t0``) and when slurmctld logged the update
    wall0: float = 0.0
    applied_wall: float | None = None

    @property
    def latency(self) -> float:
        assert self.seen_at is not None
        return self.seen_at - self.t0

    @property
    def applied(self) -> float:
        assert self.applied_wall is not None
        return self.applied_wall - self.wall0


class SlurmObserver:
    """Polls slurmctld for the pending expectations only.

    Up to ``single`` pending nodes are read with one ``sinfo -n NODE`` each, concurrently:
    slurmctld answers a single named node without packing its node table, so the observer
    neither waits ~30 ms a call at 10,000 nodes nor keeps slurmctld's node table locked for
    the system under test (a full dump every ~90 ms delayed syncd's own writes). Up to
    ``narrow`` are read with one ``scontrol -o show node <hostlist>`` per tick (which loads
    every node); more than that with one full ``scontrol -o show node`` at a slower tick, so
    the poller never costs more than a fraction of a core. A change's ``seen_at`` is the
    moment the answer arrived: an upper bound, late by at most one tick.
    """

    def __init__(self, env: dict[str, str], *, tick: float = 0.05, full_tick: float = 0.5,
                 narrow: int = 300, single: int = 8,
                 gate: Callable[[float], bool] | None = None) -> None:
        self.env = env
        # ``gate(t)``: may Slurm have changed since a read that started at ``t``? While it
        # says no (the system under test is between polls), the observer spends no CPU.
        self.gate = gate
        self._last_read = float("-inf")
        self.tick = tick
        self.full_tick = full_tick
        self.narrow = narrow
        self.single = single
        self.pending: dict[str, list[Expect]] = {}
        self.polls = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def expect(self, node: str, want: str, t0: float, kind: str = "",
               wall0: float = 0.0) -> Expect:
        e = Expect(node, want, t0, kind, wall0=wall0)
        self.pending.setdefault(node, []).append(e)
        self._wake.set()
        return e

    def start(self) -> SlurmObserver:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> SlurmObserver:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _show(self, nodes: Sequence[str]) -> str:
        argv = ["scontrol", "-o", "show", "node"]
        if nodes:
            argv.append(hostlist.collect_hostlist(list(nodes)))
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=self.env)
        out, _ = await proc.communicate()
        return out.decode(errors="replace")

    async def _one(self, node: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "sinfo", "-h", "-N", "-n", node, "-O", "NodeList:|,StateComplete:|,features_act:|",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=self.env)
        out, _ = await proc.communicate()
        return out.decode(errors="replace")

    async def _read(self, names: Sequence[str]) -> dict[str, tuple[frozenset[str],
                                                                   frozenset[str]]]:
        if len(names) <= self.single:
            return parse_sinfo("".join(await asyncio.gather(*(self._one(n) for n in names))))
        wide = len(names) > self.narrow
        return parse_show(await self._show(() if wide else names))

    async def _run(self) -> None:
        while True:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
            if self.gate is not None and not self.gate(self._last_read):
                await asyncio.sleep(self.tick)
                continue
            names = list(self.pending)
            wide = len(names) > self.narrow
            self._last_read = time.monotonic()
            shown = await self._read(names)
            now = time.monotonic()
            self.polls += 1
            for name in names:
                seen = shown.get(name)
                if seen is None:
                    continue
                left = []
                for e in self.pending.get(name, []):
                    if visible(e.want, seen):
                        e.seen_at = now
                    else:
                        left.append(e)
                if left:
                    self.pending[name] = left
                else:
                    self.pending.pop(name, None)
            await asyncio.sleep(self.full_tick if wide else self.tick)

    async def wait(self, items: Sequence[Expect], within: float) -> bool:
        """True once every item was seen; False after ``within`` seconds."""
        deadline = time.monotonic() + within
        while any(e.seen_at is None for e in items):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


# --- a process under test ------------------------------------------------------------------------


@dataclass
class Usage:
    """CPU seconds of a process (own, and its reaped children such as scontrol) and peak RSS."""

    cpu: float = 0.0
    children_cpu: float = 0.0
    peak_rss_mb: float = 0.0


def usage(pid: int) -> Usage:
    try:
        p = psutil.Process(pid)
        t = p.cpu_times()
        peak = 0.0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):  # the kernel's own high-water mark of RSS
                    peak = int(line.split()[1]) / 1024
        return Usage(t.user + t.system, t.children_user + t.children_system, peak)
    except psutil.Error:
        return Usage()


class Child:
    """A subprocess with its log in a file; stopped with SIGTERM, then SIGKILL, by PID."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                         env=env)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def child_env(slurm_conf: str) -> dict[str, str]:
    env = dict(os.environ, SLURM_CONF=slurm_conf, PYTHONUNBUFFERED="1")
    for key in [k for k in env if k.startswith("SYNCD_")]:
        del env[key]
    return env


def syncd_config(path: Path, *, kubeconfig: Path, slurm_conf: str, state_dir: Path, port: int,
                 redis_url: str,
                 stream: str, breaker: dict[str, Any]) -> Path:
    """The benchmark's syncd settings: production defaults except where a scenario needs
    otherwise (drain at once, no leader election, the breaker as given, no hold jobs)."""
    cfg: dict[str, Any] = {
        "cluster": "bench",
        "kubernetes": {"kubeconfig": str(kubeconfig)},
        "slurm": {"backend": "scontrol", "conf": slurm_conf},
        "policy": {"drain_after": "0s", "breaker": breaker,
                   "capacity": {"features": True, "hold_jobs": False}},
        "events": {"redis": {"enabled": True, "url": redis_url,
                             "stream": stream}},
        "daemon": {"listen": f"127.0.0.1:{port}", "state_dir": str(state_dir),
                   "leader_election": {"enabled": False}},
        "logging": {"format": "json", "level": "info"},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


class Syncd(Child):
    def __init__(self, config: Path, port: int, log: Path, env: dict[str, str],
                 wrap: Sequence[str] = (), module: str = "syncd") -> None:
        super().__init__([*wrap, sys.executable, "-m", module, "run", "--config", str(config)],
                         log, env)
        self.port = port
        self._own_pid: int | None = None if wrap else self.proc.pid

    @property
    def pid(self) -> int:
        """syncd's own PID (under py-spy, the child py-spy started)."""
        if self._own_pid is None:
            with contextlib.suppress(psutil.Error):
                for c in psutil.Process(self.proc.pid).children(recursive=True):
                    if "syncd" in " ".join(c.cmdline()):
                        self._own_pid = c.pid
                        break
        return self._own_pid or self.proc.pid

    def metrics(self) -> dict[str, float]:
        """``name{labels}`` -> value, from /metrics; empty while syncd does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=5) as r:
                text = r.read().decode()
        except (urllib.error.URLError, OSError):
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                out[head] = float(value)
        return out


def metric_sum(m: dict[str, float], name: str, **labels: str) -> float:
    total = 0.0
    for head, value in m.items():
        if (head == name or head.startswith(name + "{")) and all(
                f'{k}="{v}"' in head for k, v in labels.items()):
            total += value
    return total


def slurm_calls(m: dict[str, float]) -> dict[str, float]:
    """syncd's Slurm operations by op (``read`` is 3 commands: show node, show config, squeue)."""
    out: dict[str, float] = {}
    for head, value in m.items():
        if head.startswith("syncd_slurm_calls_total{"):
            op = re.search(r'op="([^"]*)"', head)
            if op:
                out[op.group(1)] = out.get(op.group(1), 0.0) + value
    return out


def sim_process(token: str, kubeconfig: Path, history: int,
                log: Path) -> contextlib.AbstractContextManager[tuple[int, str]]:
    """The simulator in its own process, its stderr in ``log``."""
    return start_sim_process("--token", token, "--write-kubeconfig", str(kubeconfig),
                             "--history", str(history), log=log)


def redis_events(url: str, stream: str, kind: str) -> list[dict[str, Any]]:
    """Events of one CloudEvents type from the Redis stream syncd wrote."""
    import redis

    r = redis.Redis.from_url(url, decode_responses=True)
    try:
        out: list[dict[str, Any]] = []
        entries: list[tuple[str, dict[str, str]]] = r.xrange(stream)  # type: ignore[assignment]
        for _id, fields in entries:
            if fields.get("type") == kind:
                out.append(json.loads(fields["event"]))
        return out
    finally:
        r.close()


def redis_drop(url: str, stream: str) -> int:
    import redis

    r = redis.Redis.from_url(url)
    try:
        return int(r.delete(stream))
    finally:
        r.close()
