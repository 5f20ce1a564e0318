"""Persists the planner's memory (timers, ledger, breaker) across restarts.

Written atomically (temp file + rename) off the event loop and off the reconcile lock: a pass
only hands the latest memory to :class:`StateSaver`, which writes the newest one it has when the
previous write is done, so a burst of passes costs one or two writes, not one each. A corrupt or
unreadable file is logged and replaced by an empty memory, never a crash loop: ownership tokens
in the reasons mean syncd still recognises its own drains without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Final

from syncd.core.memory import Memory

log = logging.getLogger(__name__)


class StateStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "memory.json"

    def load(self) -> Memory:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return Memory.from_json(raw)
        except FileNotFoundError:
            return Memory()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("state file unreadable, starting with empty memory",
                        extra={"path": str(self.path), "error": str(exc)})
            return Memory()

    def save_now(self, memory: Memory) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(memory.to_json(), f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    async def save(self, memory: Memory) -> None:
        try:
            await asyncio.to_thread(self.save_now, memory)
        except OSError as exc:
            log.error("cannot save state", extra={"path": str(self.path), "error": str(exc)})


class StateSaver:
    """Coalesces saves: :meth:`save` is cheap; :meth:`run` writes the newest memory given."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._pending: Memory | None = None
        self._wake = asyncio.Event()
        self._writing: Final = asyncio.Lock()
        self.writes = 0

    def save(self, memory: Memory) -> None:
        self._pending = memory
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write the newest pending memory now (for operator requests and shutdown)."""
        async with self._writing:
            self._wake.clear()
            memory, self._pending = self._pending, None
            if memory is None:
                return
            await self.store.save(memory)
            self.writes += 1
