"""The events syncd publishes about what it did and what it refused, and the one-line history
entries ``syncd why`` shows, built from the pass's inputs (pure: the engine only publishes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from syncd.core.events import ActionData, ActionFailedData, Actor, Outcome, SkippedData
from syncd.core.model import (
    Action,
    ActionKind,
    DriftEvent,
    EventType,
    KubeView,
    NodeChange,
    SlurmView,
)

#: Outcomes of one Slurm write, as the action event reports them.
OUTCOMES = ("ok", "failed", "dry_run", "held", "recovered", "not_applied")


def why_index(changes: Iterable[NodeChange]) -> Mapping[tuple[str, ActionKind], str]:
    return {(c.node, c.kind): c.why for c in changes}


def action_events(
    action: Action,
    *,
    outcome: str,
    error: str,
    why: Mapping[tuple[str, ActionKind], str],
    k8s: KubeView,
    slurm: SlurmView,
    actor: str,
    requested_by: str = "",
) -> list[DriftEvent]:
    """One event per node of a batched write: subscribers key on the node, not the batch."""
    cls = ActionFailedData if outcome == "failed" else ActionData
    return [
        cls(action=action.kind, why=why.get((node, action.kind), ""), reason=action.reason,
            features=action.features, hold_gpus=action.hold_gpus, hostlist=action.hostlist,
            outcome=Outcome(outcome), error=error, kubernetes=k8s.nodes.get(node),
            slurm=slurm.nodes.get(node), actor=Actor(actor),
            requested_by=requested_by).event(node)
        for node in action.nodes
    ]


def skip_events(
    skipped_values: Sequence[str], problems: frozenset[str], known_problems: frozenset[str]
) -> list[DriftEvent]:
    """Refused Kubernetes input: bogus values as they come, name-mapping problems once each,
    when they first appear."""
    out = [SkippedData("invalid value skipped", w[:500], "kubernetes").event()
           for w in skipped_values]
    out.extend(SkippedData("Kubernetes node not mapped to a Slurm node", p[:500],
                           "name_mapping").event() for p in sorted(problems - known_problems))
    return out


def summary(e: DriftEvent) -> str:
    """The line ``syncd why`` shows for an event in a node's history."""
    d = e.data
    if e.type is EventType.DRIFT:
        raw = d.get("drift", [])
        items = raw if isinstance(raw, list) else []
        kinds = [str(x.get("kind")) for x in items if isinstance(x, dict)]
        return "drift: " + (", ".join(kinds) or "resolved")
    if e.type in (EventType.ACTION, EventType.ACTION_FAILED):
        text = f"{d.get('action')} ({d.get('outcome')}) {d.get('why', '')}".strip()
        return text + (f": {d.get('error')}" if d.get("error") else "")
    return f"{e.type.value}: {d.get('why', '')}"
