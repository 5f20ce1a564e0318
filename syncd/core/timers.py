"""When the planner next needs to run even if nothing changes (a timer comes due)."""

from __future__ import annotations

from syncd.core.memory import Memory
from syncd.core.policy import Policy


def next_deadline(memory: Memory, policy: Policy, now: float) -> float | None:
    """The earliest time a running timer (drain_after, resume_after, flap back-off, breaker
    auto reset) could change the plan, or None when no timer runs."""
    best: float | None = None
    for m in memory.nodes.values():
        if m.not_ready_since is not None:
            best = _min(best, m.not_ready_since + policy.drain_after)
        if m.clear_since is not None:
            best = _min(best, max(m.clear_since + policy.resume_after, m.flap_until))
    b = memory.breaker
    if b.open and policy.breaker.auto_reset_after > 0:
        best = _min(best, b.opened_at + policy.breaker.auto_reset_after)
    if best is not None and best < now:
        return now
    return best


def _min(a: float | None, b: float) -> float:
    return b if a is None or b < a else a
