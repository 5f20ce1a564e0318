"""SlurmPort on pyslurm 25.11 (the ``syncd[pyslurm]`` extra), written to docs/facts/pyslurm.md.

NOT run in CI: pyslurm 25.11 builds only against Slurm 25.11, which no Debian suite ships
(docs/facts/slurm.md §6); see docs/slurm-backends.md for what is and is not verified. Node reads
and node updates use pyslurm's RPCs (``Nodes.load``, ``Node.modify``, ``Nodes.modify``), each in a
worker thread because they block. Hold jobs and slurmctld's boot time go through the same
verified CLI code as the scontrol backend: they change rarely and are not on the hot path.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from syncd.core.model import Action, ActionKind, SlurmNode, SlurmView
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.commands import Update, check, check_hold, chunks
from syncd.slurm.errors import SlurmError, Timeout, from_text
from syncd.slurm.holds import Holds, per_node
from syncd.slurm.parse import (
    ParseStats,
    live_reason,
    parse_boot_time,
    parse_gpus,
    parse_state,
)
from syncd.slurm.runner import Runner, make_runner
from syncd.slurm.throttle import TokenBucket


def _gpus(gres: Any) -> int:
    """``{'gpu': 8}`` or ``{'gpu:a100': 8}`` (pyslurm's gres dicts) -> 8."""
    if not isinstance(gres, dict):
        return parse_gpus(str(gres)) if gres else 0
    total = 0
    for key, value in gres.items():
        if str(key).split(":", 1)[0] == "gpu":
            try:
                total += int(value)
            except (TypeError, ValueError):
                continue
    return total


def to_node(raw: Any, stats: ParseStats) -> SlurmNode:
    """A pyslurm.Node (attributes per docs/facts/pyslurm.md §1) -> SlurmNode."""
    state, flags = parse_state(str(raw.state or ""), stats)
    used = getattr(raw, "allocated_gres", None) or getattr(raw, "gres_used", None)
    # 25.11 keeps the reason after RESUME like 24.11: read it only while it holds the node.
    reason, user = live_reason(state, flags, str(raw.reason or ""),
                               str(getattr(raw, "reason_user", "") or ""))
    return SlurmNode(
        name=str(raw.name),
        state=state,
        flags=flags,
        reason=reason,
        reason_user=user,
        available_features=tuple(raw.available_features or ()),
        active_features=tuple(raw.active_features or ()),
        gres_gpus=_gpus(raw.configured_gres),
        # allocated_gres is {} without slurmdbd (docs/facts/pyslurm.md §3): 0 then.
        gres_used_gpus=_gpus(used),
    )


class PyslurmPort:
    """SlurmPort over pyslurm's RPCs; the module is imported by the caller and injected."""

    backend = "pyslurm"

    def __init__(
        self, settings: SlurmSettings, pyslurm: Any, *, runner: Runner | None = None
    ) -> None:
        self.settings = settings
        self._ps = pyslurm
        # One bucket for the RPCs and the commands (holds, reads): the configured rate is
        # the rate of every call this backend makes.
        self._bucket = TokenBucket(rate=settings.calls_per_second, burst=settings.burst)
        self.runner = runner or make_runner(settings, bucket=self._bucket)
        self.holds = Holds(self.runner, job_name=settings.hold_job_name,
                           partition=settings.hold_partition, priority=settings.hold_priority)
        self.stats = ParseStats()
        self.calls: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()

    async def _rpc(self, kind: str, fn: Any, *args: Any) -> Any:
        await self._bucket.acquire()
        self.calls[kind] += 1
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), self.settings.timeout)
        except TimeoutError:
            # The worker thread cannot be cancelled; it finishes on its own.
            raise Timeout(f"pyslurm {kind}: no answer within {self.settings.timeout:g}s") from None
        except SlurmError:
            raise
        except ValueError as exc:
            raise SlurmError(f"pyslurm {kind}: {exc}") from None
        except Exception as exc:  # pyslurm.RPCError carries Slurm's message text
            raise from_text(str(exc), command=f"pyslurm {kind}") from None

    async def boot_time(self) -> str:
        """slurmctld's start time, one cheap call: a change means features were reset."""
        return parse_boot_time(
            await self.runner.run("show_config", ["scontrol", "show", "config"]))

    async def read(self) -> SlurmView:
        raw, config_text, holds = await asyncio.gather(
            self._rpc("load_nodes", self._ps.Nodes.load),
            self.runner.run("show_config", ["scontrol", "show", "config"]),
            self.holds.list(),
        )
        items = raw.values() if isinstance(raw, dict) else raw
        nodes = {n.name: n for n in (to_node(r, self.stats) for r in items)}
        for name, gpus in per_node(holds).items():
            if name in nodes:
                nodes[name] = replace(nodes[name], hold_gpus=gpus)
        return SlurmView(nodes=nodes, ok=True, boot_time=parse_boot_time(config_text))

    async def read_nodes(self, names: Sequence[str]) -> dict[str, SlurmNode]:
        """Nodes.load has no cheaper per-node form worth a second code path: subset a read."""
        view = await self.read()
        return {n: view.nodes[n] for n in names if n in view.nodes}

    def _changes(self, update: Update) -> Any:
        kwargs: dict[str, Any] = {}
        if update.features is not None:
            kwargs["available_features"] = list(update.features)
            kwargs["active_features"] = list(update.features)
        if update.state:
            kwargs["state"] = update.state
        if update.reason:
            kwargs["reason"] = update.reason
        return self._ps.Node(**kwargs)

    async def apply(self, action: Action) -> None:
        if action.kind is ActionKind.SET_HOLD:
            nodes, want = check_hold(action)
            await self.holds.set(nodes, want)
        else:
            update = check(action)
            for part in chunks(update.nodes, self.settings.max_nodes_per_call):
                changes = self._changes(update)
                if len(part) == 1:
                    await self._rpc("modify", self._ps.Node(part[0]).modify, changes)
                else:
                    # Nodes("a,b") builds the collection from a comma list; one RPC for all.
                    target = self._ps.Nodes(",".join(part))
                    await self._rpc("modify", target.modify, changes)
        self.applied[action.kind.value] += 1
