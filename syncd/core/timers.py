"""When the planner next needs to run even if nothing changes (a timer comes due)."""

from __future__ import annotations

from syncd.core.memory import Memory
from syncd.core.policy import Policy


def next_deadline(memory: Memory, policy: Policy, now: float) -> float | None:
    """The earliest *future* time a running timer (drain_after, resume_after, flap back-off,
    breaker auto reset) could change the plan, or None.

    A deadline already passed has been acted on by the plan that ran after it (or is held
    back by something else, such as the breaker or a node Slurm reports as not responding);
    returning it would make the loop re-plan without pause for as long as the node stays so.
    """
    best: float | None = None
    for m in memory.nodes.values():
        if m.not_ready_since is not None:
            best = _future(best, m.not_ready_since + policy.drain_after, now)
        if m.clear_since is not None:
            best = _future(best, max(m.clear_since + policy.resume_after, m.flap_until), now)
    b = memory.breaker
    if b.open and policy.breaker.auto_reset_after > 0:
        best = _future(best, b.opened_at + policy.breaker.auto_reset_after, now)
    return best


def _future(best: float | None, t: float, now: float) -> float | None:
    if t <= now:
        return best
    return t if best is None or t < best else best
