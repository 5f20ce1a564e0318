"""Persists the planner's memory (timers, ledger, breaker) across restarts.

Written atomically (temp file + rename) off the event loop; a corrupt or unreadable file is
logged and replaced by an empty memory, never a crash loop: ownership tokens in the reasons
mean syncd still recognises its own drains without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

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
