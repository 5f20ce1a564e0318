"""Typed ``data`` of every event type, one frozen dataclass each, matching the published schemas.

The JSON Schemas in ``syncd/events/schema/`` are the contract with consumers; these classes
are the producer's side of it, so a payload that misses a required field, or carries one the
schema does not know, fails at construction (a type error under mypy) instead of at a
consumer. ``to_json()`` gives the JSON-ready dict a :class:`DriftEvent` carries, and
``event(subject)`` the event itself. tests/events/test_payloads.py validates each against its
schema, so the two cannot drift apart.

Node views are the snapshots themselves (:class:`KubeNode`, :class:`SlurmNode`), rendered by
:mod:`syncd.core.snapshots` exactly as the events carry them today.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from syncd.core.model import (
    ActionKind,
    DriftEvent,
    EventType,
    KubeNode,
    NodeCondition,
    SlurmNode,
)
from syncd.core.snapshots import kube_json, slurm_json

__all__ = [
    "ActionData",
    "ActionFailedData",
    "Actor",
    "BreakerData",
    "BreakerState",
    "DriftData",
    "MirrorOutcome",
    "MirrorState",
    "MirroredData",
    "Outcome",
    "OverflowCause",
    "OverflowData",
    "Payload",
    "SkippedData",
    "TaintChange",
]


class Outcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    #: Not written: the spool could not take its intent (``events.on_spool_failure: hold``).
    HELD = "held"
    #: syncd stopped during the write; at restart Slurm showed it done / not done.
    RECOVERED = "recovered"
    NOT_APPLIED = "not_applied"


class MirrorState(enum.StrEnum):
    #: Out of service in Slurm by someone other than syncd.
    UNAVAILABLE = "unavailable"
    AVAILABLE = "available"


class MirrorOutcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    #: The Node changed while its taints were written; retried on the next pass.
    CONFLICT = "conflict"
    DRY_RUN = "dry_run"


class Actor(enum.StrEnum):
    PLANNER = "planner"
    OPERATOR = "operator"


class BreakerState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    STALE = "stale"
    FRESH = "fresh"
    RESET = "reset"


class OverflowCause(enum.StrEnum):
    #: ``spool_max_events`` / ``spool_max_age`` dropped events a sink had not received.
    SPOOL_BOUND = "spool_bound"
    #: The spool could not be written and ``memory_buffer`` was full: events never spooled.
    MEMORY_BUFFER = "memory_buffer"


class Payload:
    """What every payload class offers; ``TYPE`` is the event type it is the data of."""

    __slots__ = ()
    TYPE: ClassVar[EventType]

    def to_json(self) -> dict[str, object]:
        raise NotImplementedError

    def event(self, subject: str = "") -> DriftEvent:
        """The event carrying this payload; ``subject`` is the node ("" for cluster-wide)."""
        return DriftEvent(self.TYPE, subject, self.to_json())


def _count(name: str, value: int, minimum: int = 0) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be {minimum} or more, got {value}")


@dataclass(frozen=True, slots=True)
class DriftData(Payload):
    """``io.syncd.node.drift.v1``; both views None means the node is gone from both worlds."""

    TYPE: ClassVar[EventType] = EventType.DRIFT
    kubernetes: KubeNode | None
    slurm: SlurmNode | None
    drift: tuple[str, ...]  # the kinds, e.g. ("not_ready",)
    why: str
    boot_time: str | None = None  # slurmctld's boot time, when it changed

    def __post_init__(self) -> None:
        if any(not kind for kind in self.drift):
            raise ValueError("drift kinds must be non-empty strings")

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kubernetes": kube_json(self.kubernetes), "slurm": slurm_json(self.slurm),
            "drift": [{"kind": kind} for kind in self.drift], "why": self.why,
        }
        if self.boot_time is not None:
            out["boot_time"] = self.boot_time
        return out


@dataclass(frozen=True, slots=True)
class ActionData(Payload):
    """``io.syncd.node.action.v1``: a Slurm write syncd made, tried, or would make (dry run)."""

    TYPE: ClassVar[EventType] = EventType.ACTION
    action: ActionKind
    why: str
    reason: str
    features: tuple[str, ...]
    hold_gpus: int
    hostlist: str
    outcome: Outcome
    error: str
    kubernetes: KubeNode | None
    slurm: SlurmNode | None
    actor: Actor
    requested_by: str = ""  # for the operator: who asked (uid and channel)

    def __post_init__(self) -> None:
        _count("hold_gpus", self.hold_gpus)

    def to_json(self) -> dict[str, object]:
        extra: dict[str, object] = {"requested_by": self.requested_by} if self.requested_by else {}
        return {
            "action": str(self.action), "why": self.why, "reason": self.reason,
            "features": list(self.features), "hold_gpus": self.hold_gpus,
            "hostlist": self.hostlist, "outcome": str(self.outcome), "error": self.error,
            "kubernetes": kube_json(self.kubernetes), "slurm": slurm_json(self.slurm),
            "actor": str(self.actor), **extra,
        }


@dataclass(frozen=True, slots=True)
class ActionFailedData(ActionData):
    """``io.syncd.node.action.failed.v1``: the same shape as an action, for a failed write."""

    TYPE: ClassVar[EventType] = EventType.ACTION_FAILED


@dataclass(frozen=True, slots=True)
class BreakerData(Payload):
    """``io.syncd.breaker.v1``: the safety breaker changed state; ``withheld`` are nodes."""

    TYPE: ClassVar[EventType] = EventType.BREAKER
    state: BreakerState
    why: str
    withheld: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"state": str(self.state), "why": self.why, "withheld": list(self.withheld)}


@dataclass(frozen=True, slots=True)
class SkippedData(Payload):
    """``io.syncd.node.skipped.v1``: input syncd ignored, and where it came from."""

    TYPE: ClassVar[EventType] = EventType.SKIP
    why: str
    value: str
    source: str

    def to_json(self) -> dict[str, object]:
        return {"why": self.why, "value": self.value, "source": self.source}


@dataclass(frozen=True, slots=True)
class OverflowData(Payload):
    """``io.syncd.outbox.overflow.v1``: ``dropped`` events ``sink`` will never receive.

    The range fields are set when the dropped events form one run of sequence numbers
    (always for ``memory_buffer``); times are RFC 3339 strings, as in the envelope.
    """

    TYPE: ClassVar[EventType] = EventType.OVERFLOW
    sink: str
    dropped: int
    why: str
    cause: OverflowCause | None = None
    first_sequence: int | None = None
    last_sequence: int | None = None
    first_time: str | None = None
    last_time: str | None = None

    def __post_init__(self) -> None:
        if not self.sink:
            raise ValueError("sink must be non-empty")
        _count("dropped", self.dropped, 1)
        if (self.first_sequence is None) != (self.last_sequence is None):
            raise ValueError("first_sequence and last_sequence go together")
        if self.first_sequence is not None and self.last_sequence is not None:
            _count("first_sequence", self.first_sequence, 1)
            _count("last_sequence", self.last_sequence, self.first_sequence)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"sink": self.sink, "dropped": self.dropped, "why": self.why}
        optional = {
            "cause": None if self.cause is None else str(self.cause),
            "first_sequence": self.first_sequence, "last_sequence": self.last_sequence,
            "first_time": self.first_time, "last_time": self.last_time,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass(frozen=True, slots=True)
class TaintChange:
    """syncd's own ``NoSchedule`` taint, added (``present``) or removed by the mirror."""

    key: str
    present: bool

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a taint change needs the taint's key")


@dataclass(frozen=True, slots=True)
class MirroredData(Payload):
    """``io.syncd.node.mirrored.v1``: Slurm's out-of-service state written onto (or cleared
    from) a Kubernetes Node; ``condition``/``taint`` are None when they were right already."""

    TYPE: ClassVar[EventType] = EventType.MIRRORED
    kubernetes_node: str
    state: MirrorState
    why: str
    condition: NodeCondition | None
    taint: TaintChange | None
    outcome: MirrorOutcome
    error: str
    slurm: SlurmNode | None

    def __post_init__(self) -> None:
        if not self.kubernetes_node:
            raise ValueError("kubernetes_node must be non-empty")

    def to_json(self) -> dict[str, object]:
        cond, taint = self.condition, self.taint
        return {
            "kubernetes_node": self.kubernetes_node,
            "state": str(self.state),
            "why": self.why,
            "condition": None if cond is None else {
                "type": cond.type, "status": cond.status, "reason": cond.reason,
                "message": cond.message},
            "taint": None if taint is None else {
                "key": taint.key, "effect": "NoSchedule", "present": taint.present},
            "outcome": str(self.outcome),
            "error": self.error,
            "slurm": slurm_json(self.slurm),
        }
