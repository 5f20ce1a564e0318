"""The last few events of each node, for ``syncd why`` (kept in memory, never persisted)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from syncd.core.model import DriftEvent
from syncd.core.reporting import summary

#: Entries kept per node: enough for on-call to see a flap, small at 10,000 nodes.
HISTORY = 20


class History:
    def __init__(self, size: int = HISTORY) -> None:
        self.size = size
        self._by_node: dict[str, deque[tuple[float, str]]] = {}

    def record(self, events: Sequence[DriftEvent], now: float) -> None:
        for e in events:
            if e.subject:
                h = self._by_node.setdefault(e.subject, deque(maxlen=self.size))
                h.append((now, summary(e)))

    def of(self, node: str) -> list[tuple[float, str]]:
        return list(self._by_node.get(node, ()))

    def forget(self, node: str) -> None:
        self._by_node.pop(node, None)
