"""Runs syncd as a real subprocess, the way an operator would, and talks to its HTTP port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.events.helpers import read_stream
from tests.fixtures.brokers import Addr, free_port


def syncd_config(
    path: Path,
    *,
    kubeconfig: Path,
    slurm_conf: str,
    state_dir: Path,
    redis_url: str,
    stream: str,
    mqtt_host: str,
    mqtt_port: int,
    mqtt_prefix: str,
    identity: str,
    lease: str,
    port: int,
    overrides: dict[str, Any] | None = None,
) -> Path:
    cfg: dict[str, Any] = {
        "cluster": "e2e",
        "kubernetes": {"kubeconfig": str(kubeconfig), "stale_after": "10s"},
        # The sandbox's wrappers sit in DIR/bin beside DIR/etc/slurm.conf and run its release.
        "slurm": {"backend": "scontrol", "conf": slurm_conf, "retries": 1,
                  "bin_dir": str(Path(slurm_conf).parent.parent / "bin"),
                  "retry_wait": "100ms", "calls_per_second": 100.0, "burst": 50},
        "policy": {"drain_after": "2s", "resume_after": "2s",
                   "breaker": {"max_drain_percent": 50.0}},
        "events": {"redis": {"url": redis_url, "stream": stream},
                   "mqtt": {"enabled": True, "host": mqtt_host, "port": mqtt_port,
                            "topic_prefix": mqtt_prefix}},
        "daemon": {"listen": f"0.0.0.0:{port}", "state_dir": str(state_dir),
                   "debounce": "20ms", "resync_every": "5m", "slurm_probe_every": "1s",
                   # 8 s: a leader starved for a few seconds on a loaded machine must not
                   # lose the lease to the standby mid-test; renewals stay every second.
                   "leader_election": {"lease_name": lease, "lease_namespace": "default",
                                       "identity": identity, "lease_duration": "8s",
                                       "renew_every": "1s"}},
        "logging": {"format": "json", "level": "info"},
    }
    for dotted, value in (overrides or {}).items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


@dataclass
class Syncd:
    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: Starts again on a new port: a port found free can be taken by another test process
    #: (a sandbox of a release phase picking its slurmd ports) before syncd binds it.
    rebinds: int = 0

    @classmethod
    def start(cls, config: Path, port: int, log: Path, env: dict[str, str]) -> Syncd:
        s = cls(config, port, log, env=env)
        s._spawn()
        return s

    def _spawn(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 (handed to the child; closed with it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(self.config)],
            stdout=out, stderr=out, env=self.env)
        out.close()

    def _rebind(self) -> bool:
        """syncd exited because its HTTP port was taken meanwhile: start it on a new one."""
        if self.rebinds >= 3 or "address already in use" not in self.tail(3):
            return False
        cfg = yaml.safe_load(self.config.read_text())
        host = cfg["daemon"]["listen"].rpartition(":")[0]
        self.port = free_port()
        cfg["daemon"]["listen"] = f"{host}:{self.port}"
        self.config.write_text(yaml.safe_dump(cfg))
        self.rebinds += 1
        self._spawn()
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket(self) -> str:
        """The operator socket (every route; the only way in for changes)."""
        daemon = yaml.safe_load(self.config.read_text())["daemon"]
        return str(daemon.get("operator_socket") or Path(daemon["state_dir"]) / "operator.sock")

    @property
    def operator_url(self) -> str:
        return f"unix:{self.socket}"

    def get(self, path: str) -> tuple[int, Any]:
        try:
            # /api/v1/status reads Slurm first: seconds, not milliseconds, on a loaded machine.
            with urllib.request.urlopen(self.url + path, timeout=30) as r:
                body = r.read()
                status = r.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        ctype = "json" if body[:1] in (b"{", b"[") else "text"
        return status, json.loads(body) if ctype == "json" else body.decode()

    def ready(self) -> dict[str, Any] | None:
        try:
            status, body = self.get("/readyz")
        except (urllib.error.URLError, OSError):
            return None
        return body if status == 200 and isinstance(body, dict) else None

    def ready_as(self, role: str | None = None) -> dict[str, Any] | None:
        """/readyz's body once ready (in ``role``, if given), else None; fails if syncd exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            if self._rebind():
                return None
            raise AssertionError(f"syncd exited {self.proc.returncode}:\n{self.tail()}")
        r = self.ready()
        return r if r is not None and (role is None or r.get("role") == role) else None

    def metric(self, name: str, **labels: str) -> float:
        _, text = self.get("/metrics")
        total = 0.0
        for line in str(text).splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def writes(self) -> float:
        """Slurm writes made by this process (every op but reads)."""
        _, text = self.get("/metrics")
        total = 0.0
        for line in str(text).splitlines():
            if line.startswith("syncd_slurm_calls_total{") and not re.search(
                    r'op="read(_nodes)?"', line):
                total += float(line.rpartition(" ")[2])
        return total

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def child_env(slurm_conf: str) -> dict[str, str]:
    env = dict(os.environ, SLURM_CONF=slurm_conf, PYTHONUNBUFFERED="1")
    for key in [k for k in env if k.startswith("SYNCD_")]:
        del env[key]
    return env


def new_port() -> int:
    return free_port()


def outside_address() -> str:
    """This machine's address on its first non-loopback interface (no packet is sent)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        addr: str = s.getsockname()[0]
    assert not addr.startswith("127."), "the test needs a non-loopback IPv4 address"
    return addr


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def stream_events(addr: Addr, stream: str) -> list[dict[str, Any]]:
    """Every event syncd put on the Redis ``stream``, decoded, in stream order (with the
    entry fields checked against the event: tests/events/helpers.read_stream)."""
    return read_stream(addr.redis_url, stream)
