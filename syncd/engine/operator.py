"""Operator requests from the runbook API: drain, resume, breaker reset.

They take the same lock as a pass and are decided by the same ownership rules
(:mod:`syncd.core.manual`) against a fresh Slurm read, so an operator never races the planner
and never undoes someone else's drain without ``force``. Every request that changes something
is published as an event naming who asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from syncd.core import manual
from syncd.core.batching import batch
from syncd.core.events import BreakerData, BreakerState
from syncd.core.memory import reset_breaker
from syncd.core.model import ActionKind
from syncd.core.policy import Policy
from syncd.core.ports import KubeSource
from syncd.engine.executor import Executor
from syncd.engine.metrics import Metrics
from syncd.engine.publishing import Publisher
from syncd.engine.shared import Shared
from syncd.engine.slurm_reader import SlurmReader
from syncd.engine.state import StateSaver
from syncd.engine.triggers import VERIFY_AFTER, Triggers


class OperatorDesk:
    def __init__(self, *, kube: KubeSource, reader: SlurmReader, executor: Executor,
                 publisher: Publisher, policy: Policy, shared: Shared, saver: StateSaver,
                 triggers: Triggers, metrics: Metrics, is_leader: Callable[[], bool]) -> None:
        self.kube = kube
        self.reader = reader
        self.executor = executor
        self.publisher = publisher
        self.policy = policy
        self.shared = shared
        self.saver = saver
        self.triggers = triggers
        self.metrics = metrics
        self.is_leader = is_leader

    async def request(self, kind: ActionKind, node: str, *, reason: str = "",
                      force: bool = False, who: str = "operator") -> manual.Decision:
        async with self.shared.lock:
            slurm = await self.reader.read_full()
            memory = self.shared.memory
            if not slurm.ok:
                return manual.Decision(None, memory,
                                       refused=f"Slurm unreachable: {self.reader.health.error}")
            if kind is ActionKind.DRAIN:
                d = manual.drain(self.policy, slurm, memory, node, reason)
            else:
                d = manual.resume(self.policy, slurm, memory, node, force=force)
            if d.change is None:
                return d
            if not self.is_leader():
                return replace(d, change=None, refused="this replica is a standby; run the "
                               "command against the leader")
            actions = list(batch([d.change], 1))
            out = await self.executor.execute([d.change], actions,
                                              k8s=self.kube.view(), slurm=slurm,
                                              actor="operator", requested_by=who)
            self.publisher.publish(out.events)
            self.publisher.spooled(out.spooled)
            if out.failed:
                return replace(d, change=None, refused=out.failed[0])
            if not out.written:
                return replace(d, change=None, refused="not written: the event spool cannot be "
                               "written and events.on_spool_failure is hold")
            self.shared.memory = d.memory
            self.reader.assume(actions)
            self.triggers.written(out.written, verify_after=VERIFY_AFTER)
            self.saver.save(d.memory)
            await self.saver.flush()
        self.triggers.notify([node])
        return d

    async def reset_breaker(self, *, who: str = "operator") -> None:
        async with self.shared.lock:
            was = self.shared.memory.breaker
            self.shared.memory = reset_breaker(self.shared.memory)
            self.publisher.publish([BreakerData(
                BreakerState.RESET, f"reset by {who} (was: {was.why or 'closed'})").event()])
            self.metrics.breaker_open.set(0)
            self.saver.save(self.shared.memory)
            await self.saver.flush()
        self.triggers.notify()
