"""Every timer the planner runs, defined once: when a NotReady node drains, when a cleared node
resumes, and when the planner next needs to run even if nothing changes (a timer comes due).
The planner, ``syncd why``/``status`` and the reconcile loop all read them from here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from syncd.core.memory import Memory, NodeMemory
from syncd.core.policy import Policy


def drain_at(not_ready_since: float, policy: Policy) -> float:
    """When a node NotReady since ``not_ready_since`` gets the NotReady cause."""
    return not_ready_since + policy.drain_after


def resume_at(clear_since: float, m: NodeMemory, policy: Policy) -> float:
    """When a syncd drain whose causes cleared at ``clear_since`` may be lifted: after
    ``resume_after``, and never before a flap back-off ends."""
    return max(clear_since + policy.resume_after, m.flap_until)


def next_deadline(memory: Memory, policy: Policy, now: float) -> float | None:
    """The earliest *future* time a running timer (drain_after, resume_after, flap back-off,
    write back-off, breaker auto reset) could change the plan, or None.

    A deadline already passed has been acted on by the plan that ran after it (or is held
    back by something else, such as the breaker or a node Slurm reports as not responding);
    returning it would make the loop re-plan without pause for as long as the node stays so.
    """
    best: float | None = None
    # Only unsettled nodes can have a running timer (a settled node is idle), so the last
    # plan's watch list is enough; before the first plan every node is looked at.
    nodes = (memory.nodes.values() if memory.watch is None
             else [memory.nodes[n] for n in memory.watch if n in memory.nodes])
    for m in nodes:
        if m.not_ready_since is not None:
            best = _future(best, drain_at(m.not_ready_since, policy), now)
            if policy.down_on.not_ready.enabled:
                best = _future(best, m.not_ready_since + policy.down_on.not_ready.grace, now)
        if m.gone_since is not None:
            best = _future(best, m.gone_since + policy.down_on.deleted.grace, now)
        if m.condition_since is not None:
            best = _future(best, drain_at(m.condition_since, policy), now)
        if m.clear_since is not None:
            best = _future(best, resume_at(m.clear_since, m, policy), now)
        if m.retry_at:
            best = _future(best, m.retry_at, now)
    b = memory.breaker
    if b.open and policy.breaker.auto_reset_after > 0:
        best = _future(best, b.opened_at + policy.breaker.auto_reset_after, now)
    return best


def _future(best: float | None, t: float, now: float) -> float | None:
    if t <= now:
        return best
    return t if best is None or t < best else best


def record_writes(memory: Memory, policy: Policy, *, failed: Iterable[str],
                  succeeded: Iterable[str], now: float) -> Memory:
    """The memory after a pass's writes: a failed node backs off (``policy.write_backoff``),
    doubling per consecutive failure; a node written successfully starts again from nothing."""
    nodes = dict(memory.nodes)
    cfg = policy.write_backoff
    for n in set(failed):
        m = nodes.get(n, NodeMemory())
        count = m.write_failures + 1
        wait = min(cfg.base * 2 ** (count - 1), cfg.max)
        nodes[n] = replace(m, write_failures=count, retry_at=now + wait)
    for n in set(succeeded) - set(failed):
        cur = nodes.get(n)
        if cur is not None and (cur.write_failures or cur.retry_at):
            nodes[n] = replace(cur, write_failures=0, retry_at=0.0)
    return replace(memory, nodes=nodes)
