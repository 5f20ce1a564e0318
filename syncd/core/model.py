"""Snapshots of both worlds and the decisions syncd makes about them.

Everything here is a frozen, slotted dataclass so a snapshot can be shared between the
watcher, the planner and the runbook commands without anyone mutating it under the others.
Adapters build these from raw API data; the planner only ever reads them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

EMPTY: Mapping[str, int] = MappingProxyType({})


_NO_NOTES: Mapping[str, str] = MappingProxyType({})


def _empty() -> Mapping[str, int]:
    return EMPTY


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class KubeNode:
    """What Kubernetes says about one node, reduced to what syncd needs.

    GPU mappings are keyed by extended-resource name (``nvidia.com/gpu``, MIG names, ...);
    ``gpu_held`` counts GPUs requested by pods that are not Slurm's own.
    """

    name: str
    slurm_name: str
    ready: bool = True
    cordoned: bool = False
    taints: tuple[Taint, ...] = ()
    gpu_capacity: Mapping[str, int] = field(default_factory=_empty)
    gpu_allocatable: Mapping[str, int] = field(default_factory=_empty)
    gpu_held: Mapping[str, int] = field(default_factory=_empty)
    gone: bool = False
    #: Node conditions the policy watches (``policy.conditions``): (type, status, text),
    #: ``text`` being the condition's reason and message, already checked for a Slurm reason.
    conditions: tuple[tuple[str, str, str], ...] = ()
    #: syncd's own mirror of Slurm's state on this node (``policy.mirror``): its condition as
    #: (status, reason, message), None when the node has none, and whether a taint with its
    #: key is there. Read so the mirror writes only what differs; never a cause.
    mirror: tuple[str, str, str] | None = None
    mirror_taint: bool = False
    #: Pod mapping: the other Slurm nodes whose slurmd pods sit on the same Kubernetes node.
    #: The node's GPUs cannot be told apart between them, so syncd writes capacity for none.
    shares_node_with: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KubeView:
    """All mapped Kubernetes nodes, keyed by their *Slurm* name.

    ``synced`` is false until the watcher has completed a list of nodes and pods, and again
    when its watches stay broken; a view that is not synced may be missing nodes.
    ``contested`` names Slurm nodes that two or more live Kubernetes nodes map to: which one is
    meant is unknown, so syncd drives such a node in neither direction.
    """

    nodes: Mapping[str, KubeNode]
    synced: bool = True
    problems: tuple[str, ...] = ()
    contested: frozenset[str] = frozenset()
    #: What the watcher knows about a Slurm name beyond its node, for ``syncd why`` (a slurmd
    #: pod that is Pending and unscheduled, terminating, on a node syncd does not watch...).
    notes: Mapping[str, str] = field(default_factory=lambda: _NO_NOTES)
    #: The name mapping in words, to say why a Slurm node has no Kubernetes counterpart.
    mapping: str = ""


class BaseState(enum.StrEnum):
    IDLE = "IDLE"
    MIXED = "MIXED"
    ALLOCATED = "ALLOCATED"
    COMPLETING = "COMPLETING"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"
    FUTURE = "FUTURE"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """What slurmctld says about one node.

    ``reason`` is the stored reason text only, without the ``[user@time]`` suffix that
    ``scontrol show node`` appends. ``hold_gpus`` counts GPUs held by syncd's placeholder
    jobs on this node (running or pending), see docs/capacity.md.
    """

    name: str
    state: BaseState = BaseState.IDLE
    flags: frozenset[str] = frozenset()
    reason: str = ""
    reason_user: str = ""
    available_features: tuple[str, ...] = ()
    active_features: tuple[str, ...] = ()
    gres_gpus: int = 0
    gres_used_gpus: int = 0
    hold_gpus: int = 0

    @property
    def drained(self) -> bool:
        return "DRAIN" in self.flags

    @property
    def not_responding(self) -> bool:
        return "NOT_RESPONDING" in self.flags

    @property
    def unavailable(self) -> bool:
        """Slurm will not schedule here, whoever made it so."""
        return (
            self.drained
            or self.state in (BaseState.DOWN, BaseState.FUTURE)
            or "FAIL" in self.flags
            or self.not_responding
        )

    @property
    def state_text(self) -> str:
        return "+".join([self.state.value, *sorted(self.flags)])


@dataclass(frozen=True, slots=True)
class NodeMark:
    """The part of a Slurm node that says who has it out of service: its state and reason.

    A state write (drain, down, resume) planned on the last Slurm view is made only when a
    cheap read of this part still agrees with that view (:meth:`SlurmPort.read_marks`), so an
    operator's drain made since the view was read is never overwritten or lifted.
    """

    state: BaseState
    flags: frozenset[str]
    reason: str
    reason_user: str = ""

    @classmethod
    def of(cls, s: SlurmNode) -> NodeMark:
        return cls(s.state, s.flags, s.reason, s.reason_user)

    def agrees(self, s: SlurmNode) -> bool:
        """Same state, flags and reason text as ``s`` (the user is not compared: sinfo and
        scontrol name it differently, and the reason text is what ownership reads). MIXED
        and ALLOCATED agree: scontrol derives MIXED from CPU counts while sinfo prints the
        stored state for a moment after a job starts, and no decision tells them apart."""
        return (in_use(self.state) is in_use(s.state) and self.flags == s.flags
                and self.reason == s.reason)


def in_use(state: BaseState) -> BaseState:
    """``state`` with MIXED read as ALLOCATED (see :meth:`NodeMark.agrees`)."""
    return BaseState.ALLOCATED if state is BaseState.MIXED else state


@dataclass(frozen=True, slots=True)
class SlurmView:
    """All Slurm nodes. ``boot_time`` changes when slurmctld restarts (features are reset then)."""

    nodes: Mapping[str, SlurmNode]
    ok: bool = True
    boot_time: str = ""


class ActionKind(enum.StrEnum):
    SET_FEATURES = "set_features"
    DRAIN = "drain"
    DOWN = "down"
    RESUME = "resume"
    SET_HOLD = "set_hold"


@dataclass(frozen=True, slots=True)
class NodeChange:
    """One change to one node, with the cause in words (for ``syncd why``)."""

    node: str
    kind: ActionKind
    why: str
    reason: str = ""
    features: tuple[str, ...] = ()
    hold_gpus: int = 0

    @property
    def group_key(self) -> tuple[ActionKind, str, tuple[str, ...], int]:
        return (self.kind, self.reason, self.features, self.hold_gpus)


@dataclass(frozen=True, slots=True)
class NodeCondition:
    """One Kubernetes Node condition as syncd writes it (``policy.mirror``). ``transition``:
    the status changes with this write, so ``lastTransitionTime`` is set to now."""

    type: str
    status: str
    reason: str
    message: str
    transition: bool = True


@dataclass(frozen=True, slots=True)
class Action:
    """One Slurm write: the same change applied to a hostlist of at most ``batch_size`` nodes.

    For ``SET_FEATURES`` the features are written as both available and active features,
    since slurmctld refuses active features that are not a subset of available ones.
    """

    kind: ActionKind
    hostlist: str
    nodes: tuple[str, ...]
    reason: str = ""
    features: tuple[str, ...] = ()
    hold_gpus: int = 0


class EventType(enum.StrEnum):
    DRIFT = "io.syncd.node.drift.v1"
    ACTION = "io.syncd.node.action.v1"
    ACTION_FAILED = "io.syncd.node.action.failed.v1"
    BREAKER = "io.syncd.breaker.v1"
    SKIP = "io.syncd.node.skipped.v1"
    OVERFLOW = "io.syncd.outbox.overflow.v1"
    MIRRORED = "io.syncd.node.mirrored.v1"


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """Something syncd saw or decided, ready to be wrapped in a CloudEvent by the outbox.

    ``data`` holds only JSON-compatible values; ``subject`` is the Slurm node name, or the
    empty string for cluster-wide events such as the breaker.
    """

    type: EventType
    subject: str
    data: Mapping[str, object] = field(default_factory=dict)
    #: When it happened (epoch seconds): the observation, or the Slurm write. It becomes the
    #: CloudEvents ``time``; None means when the outbox took it.
    occurred_at: float | None = None


def stamped(events: Iterable[DriftEvent], at: float) -> list[DriftEvent]:
    """``events`` with ``occurred_at`` set to ``at`` where it is not set yet."""
    return [e if e.occurred_at is not None else replace(e, occurred_at=at) for e in events]
