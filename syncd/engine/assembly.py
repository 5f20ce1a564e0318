"""Builds the engine from its ports: one place that knows how the parts fit, so the daemon
and the tests (which run it on fake time with in-process ports) assemble it the same way."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from syncd.core.policy import Policy
from syncd.core.ports import EventPublisher, KubeSource, NodeMarker, SlurmPort, WriteAheadLog
from syncd.engine.clock import LoopClock
from syncd.engine.executor import Executor
from syncd.engine.history import History
from syncd.engine.looping import reconcile_forever
from syncd.engine.metrics import Metrics
from syncd.engine.mirroring import Mirroring
from syncd.engine.operator import OperatorDesk
from syncd.engine.publishing import Publisher
from syncd.engine.readmodel import ReadModel
from syncd.engine.reconciler import Reconciler
from syncd.engine.shared import Shared
from syncd.engine.slurm_reader import SlurmReader
from syncd.engine.state import StateSaver, StateStore
from syncd.engine.triggers import Triggers
from syncd.settings.daemon import DaemonSettings


@dataclass
class Engine:
    clock: LoopClock
    shared: Shared
    triggers: Triggers
    reader: SlurmReader
    saver: StateSaver
    reconciler: Reconciler
    desk: OperatorDesk
    model: ReadModel

    def notify(self, names: Iterable[str] = ()) -> None:
        self.triggers.notify(names)

    def loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The engine's long-running coroutines, by task name."""
        return {
            "reconciler": reconcile_forever(self.reconciler),
            "state-saver": self.saver.run(),
        }

    def stop(self) -> None:
        self.triggers.stop()

    async def close(self) -> None:
        """Wait for the in-flight pass, then save the memory one last time."""
        await self.reader.stop()
        async with self.shared.lock:
            self.saver.save(self.shared.memory)
            await self.saver.flush()


def build(*, kube: KubeSource, slurm: SlurmPort, outbox: EventPublisher, policy: Policy,
          daemon: DaemonSettings, store: StateStore, metrics: Metrics,
          is_leader: Callable[[], bool], marker: NodeMarker | None = None,
          wal: WriteAheadLog | None = None) -> Engine:
    """``marker`` writes the mirror onto Kubernetes nodes; it is used (and needed) only when
    ``policy.mirror.enabled``. ``wal`` (the outbox) makes every Slurm write write-ahead."""
    clock = LoopClock()
    shared = Shared(memory=store.load())
    triggers = Triggers(clock, debounce=daemon.debounce, debounce_max=daemon.debounce_max,
                        resync_every=daemon.resync_every,
                        probe_every=daemon.slurm_probe_every)
    reader = SlurmReader(slurm, metrics, clock)
    executor = Executor(slurm, metrics, dry_run=daemon.dry_run, wal=wal, clock=clock.now)
    history = History()
    publisher = Publisher(outbox, metrics, clock, history)
    saver = StateSaver(store)
    parts: dict[str, Any] = {"kube": kube, "reader": reader, "executor": executor,
                             "publisher": publisher, "policy": policy, "shared": shared,
                             "saver": saver, "triggers": triggers, "metrics": metrics,
                             "is_leader": is_leader}
    mirroring = None
    if policy.mirror.enabled:
        if marker is None:
            raise ValueError("policy.mirror.enabled needs a NodeMarker")
        mirroring = Mirroring(marker, policy=policy, metrics=metrics, clock=clock,
                              dry_run=daemon.dry_run, more=triggers.notify)
    reconciler = Reconciler(clock=clock, mirroring=mirroring, **parts)
    desk = OperatorDesk(**parts)
    model = ReadModel(kube=kube, reader=reader, shared=shared, policy=policy, history=history,
                      clock=clock, is_leader=is_leader, dry_run=daemon.dry_run)
    return Engine(clock=clock, shared=shared, triggers=triggers, reader=reader, saver=saver,
                  reconciler=reconciler, desk=desk, model=model)
