"""The narrow interfaces between the engine and the outside world.

Adapters implement these; the engine and the tests depend only on them. One doc line per
method, like Slinky's slurmcontrol interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from syncd.core.model import Action, DriftEvent, KubeView, SlurmNode, SlurmView


class SlurmPort(Protocol):
    """Reads and changes slurmctld's node table."""

    #: Backend name for logs and metrics (``scontrol`` or ``pyslurm``).
    backend: str

    async def read(self) -> SlurmView:
        """Every node in one call, plus slurmctld's boot time; raises SlurmError."""
        ...

    async def read_nodes(self, names: Sequence[str]) -> Mapping[str, SlurmNode]:
        """Only these (existing) nodes, for an incremental reconcile; raises SlurmError."""
        ...

    async def apply(self, action: Action) -> None:
        """Write one batched action; raises a typed SlurmError subclass on failure."""
        ...

    async def boot_time(self) -> str:
        """slurmctld's boot time alone (cheap), to notice a restart between reconciles."""
        ...


class KubeSource(Protocol):
    """The watcher's current, slim picture of the cluster."""

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
