"""The state the engine's parts share: the planner's memory and the lock that serialises
every change to Slurm (a pass, an operator request, a breaker reset)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from syncd.core.memory import Memory


@dataclass
class Shared:
    memory: Memory
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: True once a pass has planned on a complete Kubernetes list (see core.passes.may_plan).
    ever_synced: bool = False
