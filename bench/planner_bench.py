"""Planner cost at scale: ``python -m bench.planner_bench [--nodes 10000]``.

Measures, side by side in one run: a no-change plan (the steady state), the same and a
one-node change planned incrementally (``plan(only=...)``: what a change pass does), a plan
where 10 % of nodes changed GPU usage, and a mass NotReady plan; median and p95 of repeated
runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

from syncd.core.memory import Memory
from syncd.core.model import KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.planner import Plan, plan
from syncd.core.policy import Breaker, Policy

GPU = "nvidia.com/gpu"


def world(n: int) -> tuple[KubeView, SlurmView]:
    names = [f"gpu{i:05d}" for i in range(n)]
    k = {x: KubeNode(x, x, gpu_capacity={GPU: 8}, gpu_allocatable={GPU: 8},
                     gpu_held={GPU: i % 3}) for i, x in enumerate(names)}
    s = {x: SlurmNode(x, available_features=("gpu", f"gpu_avail_{8 - i % 3}"),
                      active_features=("gpu", f"gpu_avail_{8 - i % 3}"), gres_gpus=8,
                      hold_gpus=i % 3) for i, x in enumerate(names)}
    return KubeView(k), SlurmView(s, boot_time="b")


def timed(fn: Callable[[], Plan], repeat: int) -> tuple[float, float, Plan]:
    times = []
    result = fn()
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    policy = Policy(breaker=Breaker(enabled=False))
    k, s = world(args.nodes)
    mem = plan(k, s, policy, Memory(), 0.0).memory

    med, p95, p = timed(lambda: plan(k, s, policy, mem, 1.0), args.repeat)
    assert not p.actions, p.actions[:3]
    print(f"no-change plan, {args.nodes} nodes, snapshots reused: median {med * 1e3:.1f} ms, "
          f"p95 {p95 * 1e3:.1f} ms")
    med, p95, p = timed(lambda: plan(k, s, policy, mem, 1.0, only=()), args.repeat)
    assert not p.actions
    print(f"no-change plan, {args.nodes} nodes, incremental (nothing named): median "
          f"{med * 1e3:.3f} ms, p95 {p95 * 1e3:.3f} ms")
    one = dict(k.nodes)
    first = next(iter(one))
    one[first] = replace(one[first], gpu_held={GPU: 5})
    k1 = replace(k, nodes=one)
    med, p95, p = timed(lambda: plan(k1, s, policy, mem, 1.0, only=(first,)), args.repeat)
    print(f"one node changed, {args.nodes} nodes, incremental: median {med * 1e3:.3f} ms, "
          f"p95 {p95 * 1e3:.3f} ms, {len(p.changes)} changes")
    cold = replace(mem, settled={})
    med, p95, p = timed(lambda: plan(k, s, policy, cold, 1.0), args.repeat)
    assert not p.actions
    print(f"no-change plan, {args.nodes} nodes, every node re-evaluated: median "
          f"{med * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")

    changed = dict(k.nodes)
    for i, name in enumerate(list(changed)[: args.nodes // 10]):
        changed[name] = replace(changed[name], gpu_held={GPU: (i + 1) % 8})
    k2 = replace(k, nodes=changed)
    med, p95, p = timed(lambda: plan(k2, s, policy, mem, 2.0), args.repeat)
    print(f"10% GPU usage changed: median {med * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, "
          f"{len(p.changes)} changes in {len(p.actions)} Slurm calls")

    down = dict(k.nodes)
    for name in list(down)[: args.nodes // 10]:
        down[name] = replace(down[name], ready=False)
    k3 = replace(k, nodes=down)
    mem3 = plan(k3, s, policy, mem, 10.0).memory
    med, p95, p = timed(lambda: plan(k3, s, policy, mem3, 100.0), args.repeat)
    drains = sum(1 for c in p.changes if c.kind.value == "drain")
    print(f"10% NotReady past drain_after: median {med * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, "
          f"{drains} drains in {len(p.actions)} Slurm calls")


if __name__ == "__main__":
    main()
