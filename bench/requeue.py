"""How long a job on a lost machine stays "running" in Slurm, with and without syncd.

Two nodes of one real sandbox lose their machine at the same moment: slurmd and the job's
processes are killed, as when Karpenter or ``kubectl delete node`` takes a GPU node away. On
one node that is all (slurmctld notices after ``SlurmdTimeout``, 60 s in the sandbox, plus its
ping interval); on the other, the Kubernetes Node is deleted too and syncd (with
``policy.down_on.deleted``, grace 15 s) sets the node DOWN. The script reports, side by side,
when each ``--requeue`` job was PENDING again.

    python -m bench.requeue [--grace 15]      # about 2 minutes; needs root (the sandbox)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from bench.harness import Sandbox, Syncd, child_env, free_port, sim_process
from kubesim.client import SimClient

TOKEN = "bench-token"


def _job(box: Sandbox, node: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", "--requeue", f"--nodelist={node}",
                          "--gres=gpu:1", "--output=/dev/null", "--wrap", "sleep 900"],
                         capture_output=True, text=True, env=box.env, check=True).stdout
    return out.strip().split(";")[0]


def _state(box: Sandbox, job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                          text=True, env=box.env, check=False).stdout.strip()


def _kill_machine(box: Sandbox, node: str, job: str) -> int:
    """SIGKILL the node's slurmd and the job's slurmstepd and processes (the machine is gone)."""
    killed = 0
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or ())
        mine = ("slurmd" in cmd and f"-N {node}" in cmd and str(box.dir) in cmd) or (
            "slurmstepd" in cmd and f"[{job}." in cmd)
        if mine:
            for q in [*p.children(recursive=True), p]:
                try:
                    q.send_signal(signal.SIGKILL)
                    killed += 1
                except psutil.Error:
                    pass
    return killed


async def run(grace: float) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="syncd-requeue-"))
    box = Sandbox.start(work / "slurm", total=4, real=4)
    kubeconfig = work / "kubeconfig"
    syncd: Syncd | None = None
    try:
        with sim_process(TOKEN, kubeconfig, 10_000, work / "sim.log") as (_, url):
            async with SimClient(url, TOKEN) as sim:
                await sim.pool(4)
                port = free_port()
                cfg = {"cluster": "bench", "kubernetes": {"kubeconfig": str(kubeconfig)},
                       "slurm": {"backend": "scontrol", "conf": box.conf},
                       "policy": {"capacity": {"hold_jobs": False},
                                  "down_on": {"deleted": {"enabled": True,
                                                          "grace": f"{grace}s"}}},
                       "events": {"redis": {"enabled": False}},
                       "daemon": {"listen": f"127.0.0.1:{port}",
                                  "state_dir": str(work / "state"),
                                  "leader_election": {"enabled": False}}}
                (work / "syncd.yaml").write_text(yaml.safe_dump(cfg))
                syncd = Syncd(work / "syncd.yaml", port, work / "syncd.log",
                              child_env(box.conf))
                # polling other processes: there is no event to wait on
                while not syncd.metrics().get("syncd_reconciles_total{trigger=\"resync\"}"):  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                jobs = {"gpu001": _job(box, "gpu001"), "gpu002": _job(box, "gpu002")}
                while not all(_state(box, j) == "RUNNING" for j in jobs.values()):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                t0 = time.monotonic()
                for node, job in jobs.items():
                    _kill_machine(box, node, job)
                await sim.delete_node("gpu002")  # only this machine's Node is deleted
                pending: dict[str, float] = {}
                while len(pending) < 2 and time.monotonic() - t0 < 600:
                    for node, job in jobs.items():
                        if node not in pending and _state(box, job) == "PENDING":
                            pending[node] = time.monotonic() - t0
                    await asyncio.sleep(0.1)
        return {"without_syncd_s": pending.get("gpu001", float("nan")),
                "with_syncd_s": pending.get("gpu002", float("nan")), "grace_s": grace}
    finally:
        if syncd is not None:
            syncd.stop()
        box.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grace", type=float, default=15.0,
                    help="policy.down_on.deleted.grace in seconds (default 15)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench.requeue: the Slurm sandbox needs root")
    r = asyncio.run(run(args.grace))
    print(f"requeue after the machine was lost: without syncd {r['without_syncd_s']:.1f} s, "
          f"with syncd (down_on.deleted, grace {r['grace_s']:.0f} s) {r['with_syncd_s']:.1f} s"
          f" ({r['without_syncd_s'] / r['with_syncd_s']:.1f}x sooner)")


if __name__ == "__main__":
    main()
