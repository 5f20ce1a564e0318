"""Write-ahead records of Slurm writes, and what a restarted syncd makes of those a crash left
open: each node's outcome is read back from Slurm's state, so every write that reached Slurm
has its action event (at least once), and one that did not says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from syncd.core.model import Action, ActionKind, BaseState, DriftEvent, EventType, SlurmView
from syncd.core.snapshots import slurm_json

#: Text of the ``error`` field of a recovered action event.
RECOVERED = "syncd stopped during this write; the outcome was read back from Slurm at restart"


def intent_record(action: Action, events: Sequence[DriftEvent]) -> dict[str, Any]:
    """What is stored before the write: the action and the events to publish after it."""
    return {
        "action": action.kind.value,
        "nodes": list(action.nodes),
        "reason": action.reason,
        "features": list(action.features),
        "hold_gpus": action.hold_gpus,
        "events": [{"subject": e.subject, "data": dict(e.data)} for e in events],
    }


def _applied(kind: str, record: Mapping[str, Any], slurm: SlurmView, node: str) -> bool:
    s = slurm.nodes.get(node)
    if s is None:
        return False
    if kind == ActionKind.DRAIN.value:
        return s.drained and s.reason == record.get("reason")
    if kind == ActionKind.DOWN.value:
        return s.state is BaseState.DOWN and s.reason == record.get("reason")
    if kind == ActionKind.RESUME.value:
        return not s.drained and s.state is not BaseState.DOWN
    if kind == ActionKind.SET_FEATURES.value:
        want = set(record.get("features") or ())
        return set(s.available_features) == want and set(s.active_features) == want
    if kind == ActionKind.SET_HOLD.value:
        return s.hold_gpus == int(record.get("hold_gpus") or 0)
    return False


def resolve(record: Mapping[str, Any], slurm: SlurmView) -> list[DriftEvent]:
    """The action events of an intent left open by a crash, with outcomes from Slurm now."""
    kind = str(record.get("action", ""))
    out: list[DriftEvent] = []
    for raw in record.get("events") or ():
        if not isinstance(raw, Mapping):
            continue
        node = str(raw.get("subject", ""))
        data = dict(raw.get("data") or {})
        done = _applied(kind, record, slurm, node)
        data.update(outcome="recovered" if done else "not_applied", error=RECOVERED,
                    slurm=slurm_json(slurm.nodes.get(node)))
        out.append(DriftEvent(EventType.ACTION, node, data))
    return out
