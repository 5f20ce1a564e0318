"""The syncd demo: a simulated 16-node GPU cluster synced into a real local Slurm.

Run through scripts/demo.sh, as root (slurmd runs as root). It starts what it needs (Slurm
sandbox, Kubernetes simulator, Redis if none answers), runs ``syncd run`` as a real process,
plays a short story, shows ``syncd status``, ``syncd why`` and the event stream as it goes,
and stops everything it started (``--keep``: only after Ctrl-C, so the printed commands can be
tried in another terminal). Exit code 0 means every step of the story happened as told.

``--slinky`` plays the same story in a SchedMD Slinky-shaped cluster: Kubernetes nodes
``k8s-node-NN`` run slurmd pods ``slinky-001``.. of a StatefulSet-mode NodeSet (template
hostname ``gpu``), so Slurm node gpu001 is the pod on k8s-node-16, and syncd maps names from
the pods (``kubernetes.name_mapping.mode: pod``, docs/slinky.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml

from kubesim.client import PodSpec, SimClient
from kubesim.server import start_sim_process

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
VENV_BIN = ROOT / ".venv" / "bin"
# The installed command when there is one (what the user types), else this Python's module.
SYNCD = [str(VENV_BIN / "syncd")] if (VENV_BIN / "syncd").exists() else [PY, "-m", "syncd"]
NODES = 16
TOKEN = secrets.token_hex(16)  # the simulator accepts any token it is started with
BOLD, DIM, OFF = ("\x1b[1m", "\x1b[2m", "\x1b[0m") if sys.stdout.isatty() else ("", "", "")


class DemoFailed(Exception):
    pass


def say(text: str) -> None:
    print(f"\n{BOLD}== {text}{OFF}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait(check: Callable[[], bool], within: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if check():
            return time.monotonic() - t0
        time.sleep(0.2)
    raise DemoFailed(f"timed out after {within:.0f}s waiting for {what}")


class Demo:
    def __init__(self, work: Path, *, slinky: bool = False) -> None:
        self.work = work
        self.slinky = slinky
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sandbox = work / "slurm"
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        for key in [k for k in self.env if k.startswith("SYNCD_")]:
            del self.env[key]
        self.sim_url = ""
        self.syncd: subprocess.Popen[bytes] | None = None
        self.tail_file = work / "events.txt"
        self.stack = contextlib.ExitStack()
        self.tail_seen = 0
        self.redis_port = 6379
        self.stream = ""
        self.config = work / "syncd.yaml"

    # --- plumbing ---------------------------------------------------------------------------

    def run(self, *argv: str, check: bool = True, show: bool = False) -> str:
        p = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=120,
                           check=False)
        if check and p.returncode != 0:
            raise DemoFailed(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
        if show:
            print(f"{DIM}$ {' '.join(a if ' ' not in a else repr(a) for a in argv)}{OFF}")
            print(p.stdout.rstrip() or p.stderr.rstrip())
        return p.stdout

    def syncd_cmd(self, *args: str, show: bool = True, expect: int | None = 0) -> str:
        # SYNCD_CONFIG lets the CLI find the daemon's operator socket (and the event stream),
        # as on a real host: the printed command is exactly what runs.
        argv = [*SYNCD, *args]
        env = self.cli_env()
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                           check=False)
        if show:
            print(f"{DIM}$ syncd {' '.join(shlex.quote(a) for a in args)}{OFF}")
            print((p.stdout + p.stderr).rstrip())
        if expect is not None and p.returncode != expect:
            raise DemoFailed(f"syncd {' '.join(args)} exited {p.returncode}, expected {expect}")
        return p.stdout

    def sim(self, fn: Callable[[SimClient], Coroutine[Any, Any, Any]]) -> Any:
        async def go() -> Any:
            async with SimClient(self.sim_url, TOKEN) as c:
                return await fn(c)
        return asyncio.run(go())

    def node(self, name: str) -> str:
        return self.run("scontrol", "-o", "show", "node", name)

    def k8s(self, slurm: str) -> str:
        """The Kubernetes node a Slurm node follows: the same name, or (Slinky) the node its
        slurmd pod runs on, in reverse order so that the two namings visibly disagree."""
        if not self.slinky:
            return slurm
        return f"k8s-node-{NODES + 1 - int(slurm[3:]):02d}"

    def features(self, name: str) -> str:
        for part in self.node(name).split():
            if part.startswith("AvailableFeatures="):
                return part.split("=", 1)[1]
        return ""

    def events(self) -> None:
        """Print the event lines ``syncd events tail`` wrote since the last call."""
        lines = self.tail_file.read_text(errors="replace").splitlines()
        new = lines[self.tail_seen:]
        self.tail_seen = len(lines)
        if new:
            print(f"{DIM}-- new lines of `syncd events tail --from-start` (time, sequence, "
                  f"type, node, what) --{OFF}")
            if len(new) > 12:
                print(f"{DIM}   ({len(new) - 12} earlier lines not shown){OFF}")
            for line in new[-12:]:
                print(f"{DIM}{line}{OFF}")

    # --- the parts --------------------------------------------------------------------------

    def start(self) -> None:
        say("Starting a real Slurm (16 slurmd on loopback), the Kubernetes simulator and Redis")
        self.run(str(ROOT / "scripts" / "slurm-sandbox"), "start", str(self.sandbox),
                 "--nodes", str(NODES))
        self.env["SLURM_CONF"] = str(self.sandbox / "etc" / "slurm.conf")
        print(self.run("sinfo", "-s").rstrip())

        if not redis_answers(6379):
            self.redis_port = free_port()
            self.spawn([shutil.which("redis-server") or "/usr/bin/redis-server", "--port",
                        str(self.redis_port), "--save", "", "--appendonly", "no"],
                       self.work / "redis.log")
            wait(lambda: redis_answers(self.redis_port), 10, "our redis-server")
            print(f"started redis-server on port {self.redis_port}")
        else:
            print("using the Redis already running on 127.0.0.1:6379")

        kubeconfig = self.work / "kubeconfig"
        try:
            _, self.sim_url = self.stack.enter_context(start_sim_process(
                "--token", TOKEN, "--write-kubeconfig", str(kubeconfig),
                "--nodes", "0" if self.slinky else str(NODES), log=self.work / "sim.log"))
        except RuntimeError as exc:
            raise DemoFailed(str(exc)) from None
        print(f"Kubernetes simulator at {self.sim_url} with {NODES} GPU nodes (8 GPUs each)")
        mapping: dict[str, Any] = {}
        if self.slinky:
            slurm = [f"gpu{i:03d}" for i in range(1, NODES + 1)]

            async def slinky(c: SimClient) -> None:
                await c.pool(NODES, prefix="k8s-node-", digits=2)
                pods = await c.nodeset("slinky", [self.k8s(n) for n in slurm], hostname="gpu",
                                       padding=3, start=1)
                for pod in pods[:3]:
                    print(f"  slurmd pod {pod.namespace}/{pod.name} on {pod.node}: "
                          f"Slurm node {pod.slurm_name}")
            self.sim(slinky)
            print("  ... a Slinky NodeSet (StatefulSet mode): slurmd pods name the Slurm nodes")
            mapping = {"name_mapping": {"mode": "pod"}}

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stream = f"syncd:demo:{os.getpid()}"
        config = {
            "cluster": "demo",
            "kubernetes": {"kubeconfig": str(kubeconfig), **mapping},
            "slurm": {"backend": "scontrol", "conf": self.env["SLURM_CONF"]},
            "policy": {"drain_after": "3s", "resume_after": "4s"},
            "events": {"redis": {"url": f"redis://127.0.0.1:{self.redis_port}/0",
                                 "stream": self.stream}},
            "daemon": {"listen": f"127.0.0.1:{self.port}", "state_dir": str(self.work / "state"),
                       "leader_election": {"identity": "demo", "lease_duration": "6s",
                                           "renew_every": "2s"}},
            "logging": {"format": "text"},
        }
        self.config.write_text(yaml.safe_dump(config))
        say("To try syncd yourself in another terminal, paste this line there (scripts/demo.sh "
            "--keep leaves everything running until Ctrl-C):")
        print(f"export PATH={shlex.quote(str(VENV_BIN))}:$PATH SYNCD_CONFIG="
              f"{shlex.quote(str(self.config))} SLURM_CONF="
              f"{shlex.quote(self.env['SLURM_CONF'])}")
        self.syncd_cmd("check-config", str(self.config))
        self.syncd = self.spawn([*SYNCD, "run", "--config", str(self.config)],
                                self.work / "syncd.log")
        print(f"{DIM}$ syncd run --config {self.config}   # the daemon, logging to "
              f"{self.work / 'syncd.log'}{OFF}")
        self.spawn([*SYNCD, "events", "tail", "--from-start"], self.tail_file,
                   env=self.cli_env())

    def cli_env(self) -> dict[str, str]:
        return dict(self.env, SYNCD_CONFIG=str(self.config))

    def spawn(self, argv: list[str], log: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                 env=env or self.env)
        self.procs.append(p)
        return p

    def story(self) -> None:
        say("syncd starts: it reads both worlds and writes each node's usable GPUs into Slurm")
        took = wait(lambda: all("gpu_avail_8" in self.features(f"gpu{i:03d}")
                                for i in range(1, NODES + 1)), 40, "initial sync")
        print(f"all {NODES} Slurm nodes carry gpu_avail_8 after {took:.1f}s")
        wait(lambda: '"drifted": 0' in self.syncd_cmd("status", "--output", "json", show=False,
                                                      expect=None), 15, "drift to resolve")
        print("GPU A/H/U = allocatable in Kubernetes / held by Kubernetes pods / usable by "
              "Slurm (A - H); FEATURES are the ones syncd wrote")
        self.syncd_cmd("status", expect=None)

        say("Kubernetes pods take GPUs: 3 on gpu001, all 8 on gpu002")
        pods: list[PodSpec] = [{"name": f"infer-{i}", "node": self.k8s("gpu001"), "gpus": 1,
                                "namespace": "serving"} for i in range(3)]
        pods.append({"name": "train-big", "node": self.k8s("gpu002"), "gpus": 8,
                     "namespace": "ml"})
        self.sim(lambda c: c.start_pods(pods))
        took = wait(lambda: "gpu_avail_5" in self.features("gpu001")
                    and "gpu_avail_0" in self.features("gpu002"), 20, "capacity features")
        print(f"Slurm features follow in {took:.1f}s; placeholder jobs hold the pods' GPUs:")
        self.run("squeue", "-n", "syncd-hold", "-o", "%.8i %.12j %.8T %.10N %b", show=True)
        self.syncd_cmd("status", "--drifted", expect=None)
        self.events()

        say("A job that would deadlock is held: it asks for 2 GPUs on gpu002, where pods hold 8")
        job = self.run("sbatch", "--parsable", "-w", "gpu002", "--gres=gpu:2", "-J", "needs-2",
                       "-o", str(self.work / "job-%j.out"), "--wrap", "sleep 3"
                       ).strip().split(";")[0]
        time.sleep(2)
        state = self.run("squeue", "-h", "-j", job, "-o", "%T %r").strip()
        print(f"job {job}: {state}  (Slurm knows the GPUs are taken; nothing hangs)")
        if not state.startswith("PENDING"):
            raise DemoFailed(f"job {job} should be pending, is {state!r}")

        say(f"{self.k8s('gpu005')} (gpu005) goes NotReady in Kubernetes: syncd drains gpu005 "
            "after drain_after (3s)")
        t0 = time.monotonic()
        self.sim(lambda c: c.set_ready(self.k8s("gpu005"), False))
        wait(lambda: "DRAIN" in self.node("gpu005"), 20, "gpu005 drained")
        print(f"gpu005 drained {time.monotonic() - t0:.1f}s after going NotReady")
        self.syncd_cmd("why", "gpu005")

        say("An operator drains gpu006 by hand; syncd leaves that drain alone")
        self.run("scontrol", "update", "NodeName=gpu006", "State=DRAIN",
                 "Reason=ops: replacing fan", show=True)
        self.syncd_cmd("resume", "gpu006", expect=1)

        say("gpu005 recovers: syncd resumes it after resume_after (4s)")
        t0 = time.monotonic()
        self.sim(lambda c: c.set_ready(self.k8s("gpu005"), True))
        wait(lambda: "DRAIN" not in self.node("gpu005"), 30, "gpu005 resumed")
        print(f"gpu005 back in service {time.monotonic() - t0:.1f}s after recovering")
        if "replacing fan" not in self.node("gpu006"):
            raise DemoFailed("the operator's drain on gpu006 was touched")
        print("gpu006 keeps the operator's drain: " + self.run(
            "sinfo", "-h", "-n", "gpu006", "-o", "%N %T %E").strip())

        say("The training pod on gpu002 finishes: the GPUs come back and the held job runs")
        self.sim(lambda c: c.finish_pod("ml", "train-big"))
        took = wait(lambda: self.run("squeue", "-h", "-j", job, "-o", "%T").strip()
                    in ("RUNNING", "COMPLETING", "") , 40, f"job {job} to start")
        print(f"job {job} started on gpu002 {took:.1f}s after the pod finished")
        self.events()

        say("Where we are now (syncd reads Slurm back after each write)")
        wait(lambda: '"drifted": 0' in self.syncd_cmd("status", "--output", "json", show=False,
                                                      expect=None), 15, "drift to resolve")
        self.syncd_cmd("status", "--drifted", expect=None)
        self.syncd_cmd("plan", expect=None)
        count = self.run("redis-cli", "-p", str(self.redis_port), "XLEN", self.stream).strip()
        print(f"{count} CloudEvents on Redis stream {self.stream}")

    def stop(self) -> None:
        say("Stopping everything the demo started")
        if self.syncd is not None and self.syncd.poll() is None:
            self.syncd.send_signal(signal.SIGTERM)
            try:
                code = self.syncd.wait(timeout=30)
                print(f"syncd stopped cleanly (exit {code}) after flushing its outbox")
            except subprocess.TimeoutExpired:
                self.syncd.kill()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.stack.close()
        if self.sandbox.exists():
            self.run("scancel", "-n", "syncd-hold", check=False)
            self.run(str(ROOT / "scripts" / "slurm-sandbox"), "stop", str(self.sandbox),
                     check=False)
        if redis_answers(self.redis_port) and self.stream:
            self.run("redis-cli", "-p", str(self.redis_port), "DEL", self.stream, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description="The syncd demo (run it as root).")
    parser.add_argument("--keep", action="store_true",
                        help="after the story, keep everything running until Ctrl-C, to try "
                             "the printed commands")
    parser.add_argument("--slinky", action="store_true",
                        help="the same story in a SchedMD Slinky-shaped cluster: Slurm nodes "
                             "named after slurmd pods (docs/slinky.md)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("demo: run it as root (sudo scripts/demo.sh): it starts a Slurm with 16 slurmd, "
              "and slurmd runs as root", file=sys.stderr)
        return 1
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    demo = Demo(work, slinky=args.slinky)
    ok = False
    try:
        demo.start()
        demo.story()
        ok = True
        if args.keep:
            say("Everything keeps running; press Ctrl-C to stop it")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except (DemoFailed, subprocess.TimeoutExpired) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        log = work / "syncd.log"
        if log.exists():
            print("last lines of the syncd log:", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-25:]), file=sys.stderr)
    finally:
        demo.stop()
    print(f"\ndemo {'finished' if ok else 'FAILED'} in {time.monotonic() - started:.0f}s "
          f"(logs in {work})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
