"""The polling baseline syncd is compared with: what slurm-gcp's slurmsync and ParallelCluster's
clustermgtd do, pointed at Kubernetes.

    python -m bench.baseline --kubeconfig PATH [--interval 30]     (SLURM_CONF from the env)

Every ``interval`` seconds (start to start; an overrunning poll is followed at once): list
every node and every pod from the API server with kubernetes-asyncio (one full list each, no
watch), read ``scontrol -o show node``, decide drains, resumes and ``gpu_avail_<N>`` features,
then run ONE ``scontrol update`` per node action, one after the other, no hostlist batching.

Charity to the baseline, so the comparison is not a straw man: the list bodies are parsed as
plain JSON (``_preload_content=False``) instead of kubernetes-asyncio's model objects, which
at 100,000 pods would take longer than the poll interval on this machine.

Each poll prints ``{"event": "start", "at": T}`` when it begins and, when it has finished, one
JSON line with ``start``/``listed``/``end`` (CLOCK_MONOTONIC, comparable across processes) and
the calls it made.

The benchmark may hold it between polls, so a phase of syncd's that is longer than the idle
gap between two polls still runs while the baseline uses no CPU: SIGUSR1 holds (a running
poll finishes first; then ``{"event": "held", "at": T}``), SIGUSR2 releases (the next poll
starts at once, and the interval counts from it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config

REASON = "baseline: Kubernetes node not ready"
_FEATURE = re.compile(r"gpu_avail_\d+")
_NAME = re.compile(r"NodeName=(\S+)")
_STATE = re.compile(r" State=(\S+)")
_FEATURES = re.compile(r" AvailableFeatures=(\S+)")
_REASON = re.compile(r" Reason=(.*?)(?: \[[^\]]*\])?$")


@dataclass(frozen=True, slots=True)
class SlurmNode:
    states: frozenset[str]
    features: tuple[str, ...]
    reason: str


def parse_slurm(text: str) -> dict[str, SlurmNode]:
    out: dict[str, SlurmNode] = {}
    for line in text.splitlines():
        m = _NAME.match(line)
        if m is None:
            continue
        st, ft, rs = _STATE.search(line), _FEATURES.search(line), _REASON.search(line)
        feats = ft.group(1) if ft else ""
        out[m.group(1)] = SlurmNode(
            frozenset(st.group(1).split("+")) if st else frozenset(),
            tuple(f for f in feats.split(",") if f and f != "(null)"),
            rs.group(1) if rs else "")
    return out


def gpus_of(pod: Mapping[str, Any], resource: str) -> int:
    total = 0
    for c in pod.get("spec", {}).get("containers") or ():
        limits = (c.get("resources") or {}).get("limits") or {}
        if resource in limits:
            total += int(limits[resource])
    return total


def decide(nodes: list[dict[str, Any]], pods: list[dict[str, Any]],
           slurm: Mapping[str, SlurmNode], resource: str) -> list[list[str]]:
    """One ``scontrol update`` argv per node action."""
    used: dict[str, int] = {}
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if node and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            used[node] = used.get(node, 0) + gpus_of(pod, resource)
    out: list[list[str]] = []
    for n in nodes:
        name = n["metadata"]["name"]
        s = slurm.get(name)
        if s is None:
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in n.get("status", {}).get("conditions") or ())
        bad = not ready or bool(n.get("spec", {}).get("unschedulable"))
        drained = "DRAIN" in s.states
        if bad and not drained:
            out.append(["scontrol", "update", f"NodeName={name}", "State=DRAIN",
                        f"Reason={REASON}"])
        elif not bad and drained and s.reason.startswith("baseline:"):
            out.append(["scontrol", "update", f"NodeName={name}", "State=RESUME"])
        alloc = int((n.get("status", {}).get("allocatable") or {}).get(resource, 0))
        want = f"gpu_avail_{max(0, alloc - used.get(name, 0))}"
        if want not in s.features:
            feats = ",".join([f for f in s.features if not _FEATURE.fullmatch(f)] + [want])
            out.append(["scontrol", "update", f"NodeName={name}",
                        f"AvailableFeatures={feats}", f"ActiveFeatures={feats}"])
    return out


async def scontrol(argv: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        print(json.dumps({"error": err.decode(errors="replace")[:300]}), file=sys.stderr)
    return out.decode(errors="replace")


async def raw_list(call: Any) -> list[dict[str, Any]]:
    resp = await call(_preload_content=False)
    body = json.loads(await resp.read())
    items: list[dict[str, Any]] = body.get("items") or []
    return items


async def poll(core: client.CoreV1Api, resource: str) -> dict[str, Any]:
    start = time.monotonic()
    nodes = await raw_list(core.list_node)
    pods = await raw_list(core.list_pod_for_all_namespaces)
    slurm = parse_slurm(await scontrol(["scontrol", "-o", "show", "node"]))
    listed = time.monotonic()
    actions = decide(nodes, pods, slurm, resource)
    for argv in actions:
        await scontrol(argv)
    return {"start": start, "listed": listed, "end": time.monotonic(), "kube_lists": 2,
            "slurm_reads": 1, "slurm_writes": len(actions),
            "drains": sum(1 for a in actions if a[-1].startswith("Reason=")),
            "nodes": len(nodes), "pods": len(pods)}


class Pacing:
    """When the next poll starts: ``interval`` after the last one began, at once after a
    release, never while stopped or held. Signal handlers flip the flags and wake the loop."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next_at = time.monotonic()
        self.stopped = False
        self.held = False
        self.wake = asyncio.Event()

    def stop(self) -> None:
        self.stopped = True
        self.wake.set()

    def hold(self, on: bool) -> None:
        self.held = on
        self.wake.set()

    def holding(self) -> bool:
        return self.held and not self.stopped

    async def until_due(self) -> bool:
        """Waits until a poll is due; False once stopped."""
        while not self.stopped:
            if self.holding():
                print(json.dumps({"event": "held", "at": time.monotonic()}), flush=True)
                while self.holding():
                    self.wake.clear()
                    await self.wake.wait()
                self.next_at = time.monotonic()
                continue
            delay = self.next_at - time.monotonic()
            if delay <= 0:
                return True
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), delay)
        return False


async def run(kubeconfig: str, interval: float, resource: str) -> None:
    await config.load_kube_config(config_file=kubeconfig)
    pace = Pacing(interval)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, pace.stop)
    loop.add_signal_handler(signal.SIGUSR1, pace.hold, True)
    loop.add_signal_handler(signal.SIGUSR2, pace.hold, False)
    async with client.ApiClient() as api:
        core = client.CoreV1Api(api)
        while await pace.until_due():
            t = time.monotonic()
            pace.next_at = t + interval
            # Announced, so the benchmark's observer reads Slurm only while a poll may write.
            print(json.dumps({"event": "start", "at": t}), flush=True)
            print(json.dumps(await poll(core, resource)), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--resource", default="nvidia.com/gpu")
    args = ap.parse_args(argv)
    if not os.environ.get("SLURM_CONF"):
        ap.error("SLURM_CONF must name the cluster's slurm.conf")
    asyncio.run(run(args.kubeconfig, args.interval, args.resource))
    return 0


if __name__ == "__main__":
    sys.exit(main())
