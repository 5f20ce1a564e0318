"""The narrow interfaces between the engine and the outside world.

Adapters implement these; the engine and the tests depend only on them. One doc line per
method, like Slinky's slurmcontrol interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from syncd.core.model import (
    Action,
    DriftEvent,
    KubeView,
    NodeCondition,
    NodeMark,
    SlurmNode,
    SlurmView,
    Taint,
)


class SlurmPort(Protocol):
    """Reads and changes slurmctld's node table.

    Reuse contract: for a node whose state did not change since the previous read, ``read``
    and ``read_nodes`` return an object *equal* to the one returned before, and should return
    the *same* object (keep the last objects and hand them out again). The planner skips a
    node whose snapshots equal those of its last settled plan; identity makes that check O(1)
    at 10,000 nodes. tests/slurm/test_contract.py holds every backend to it.
    """

    #: Backend name for logs and metrics (``scontrol``, ``pyslurm`` or ``rest``).
    backend: str

    @property
    def slurm_version(self) -> str:
        """The Slurm release the backend found at start (``24.11.5``), or empty if unknown."""
        ...

    async def read(self) -> SlurmView:
        """Every node in one call, plus slurmctld's boot time; raises SlurmError."""
        ...

    async def read_nodes(self, names: Sequence[str]) -> Mapping[str, SlurmNode]:
        """Only these (existing) nodes, for an incremental reconcile; raises SlurmError."""
        ...

    async def read_marks(self, names: Sequence[str]) -> Mapping[str, NodeMark]:
        """State and reason of these few nodes, by the cheapest read the backend has (one
        single-node request each, not the node table): what confirms a state write planned
        on the last view. A node missing from the answer is unknown to slurmctld now;
        raises SlurmError."""
        ...

    async def apply(self, action: Action) -> None:
        """Write one batched action; raises a typed SlurmError subclass on failure."""
        ...

    async def boot_time(self) -> str:
        """slurmctld's boot time alone (cheap), to notice a restart between reconciles."""
        ...

    async def close(self) -> None:
        """Release what the port holds open (the rest backend's HTTP session); at shutdown,
        and when start-up fails after the port was made."""
        ...


class KubeSource(Protocol):
    """The watcher's current, slim picture of the cluster (same reuse contract as SlurmPort:
    an unchanged node keeps its KubeNode object from one view to the next)."""

    def view(self) -> KubeView:
        """A consistent snapshot keyed by Slurm node name; ``synced`` false while stale."""
        ...

    def take_skips(self) -> list[str]:
        """Values refused since the last call (bogus quantities...), to publish as events."""
        ...


class EventPublisher(Protocol):
    """Durably accepts events; delivery to the sinks happens later, in order."""

    def publish(self, events: Sequence[DriftEvent]) -> None:
        """Queue for the local spool (never blocks on disk or broker); see WriteAheadLog.durable."""
        ...

    def remove_node(self, node: str, why: str = "node removed") -> None:
        """The node left both worlds: subscribers drop their retained state for it."""
        ...


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A Lease as leader election sees it (times in seconds since the epoch)."""

    holder: str
    renewed: float
    acquired: float
    duration: float
    transitions: int
    revision: str = ""


class LeaseError(Exception):
    """The Lease could not be read or written (API server down, refused, timed out)."""


class LeaseConflict(LeaseError):
    """The Lease changed since it was read: another replica renewed or took it first."""


class LeaseStore(Protocol):
    """One Lease object on the API server."""

    async def get(self) -> LeaseRecord | None:
        """The lease, or None when it does not exist; raises LeaseError."""
        ...

    async def create(self, rec: LeaseRecord) -> None:
        """Create it; raises LeaseConflict when it exists already, LeaseError otherwise."""
        ...

    async def replace(self, rec: LeaseRecord) -> None:
        """Overwrite the version ``rec.revision``; raises LeaseConflict when it moved on."""
        ...


class MarkError(Exception):
    """A Node could not be marked (API server down or refusing, RBAC missing, Node gone)."""


class MarkConflict(MarkError):
    """The Node changed between the read and the write of its taints (HTTP 409); the next
    pass reads it again and retries."""


class NodeMarker(Protocol):
    """syncd's own marks on Kubernetes Node objects (``policy.mirror``): one condition type and
    one taint key, and nothing else of the Node is ever written."""

    async def set_condition(self, node: str, condition: NodeCondition) -> None:
        """Set this one condition in the Node's status (merged by type: the Node's other
        conditions are left as they are); raises MarkError."""
        ...

    async def set_taint(self, node: str, taint: Taint, present: bool) -> bool:
        """Add ``taint`` (present) or remove every taint with its key, leaving all other taints
        as they are: a read, then a write guarded by the resourceVersion read. Returns False
        when the Node already was so (nothing written); raises MarkConflict when the Node
        changed in between, MarkError otherwise."""
        ...


class SpoolUnavailable(Exception):
    """The spool cannot be written now (disk full, I/O error, read-only): not durable."""


@dataclass(frozen=True, slots=True)
class Intent:
    """A Slurm write about to be made, stored before the call; ``created`` is epoch seconds."""

    key: str
    record: Mapping[str, object]
    created: float


class WriteAheadLog(Protocol):
    """Durability for Slurm writes: an intent before the call, the outcome events after it.

    Every coroutine here raises SpoolUnavailable instead of waiting for a failing spool.
    """

    async def durable(self) -> None:
        """Returns once every event published before the call is in the spool (per fsync)."""
        ...

    async def intend(self, key: str, record: Mapping[str, object]) -> None:
        """Store the intent ``key`` (JSON-compatible ``record``) durably, before the write."""
        ...

    async def settle(self, key: str, events: Sequence[DriftEvent]) -> None:
        """Spool the outcome events and delete the intent, in one transaction."""
        ...

    def open_intents(self) -> list[Intent]:
        """Intents never settled (left by a crashed run), oldest first."""
        ...

    def writes_allowed(self) -> bool:
        """False while Slurm writes must wait (``on_spool_failure: hold`` and a failing spool)."""
        ...
