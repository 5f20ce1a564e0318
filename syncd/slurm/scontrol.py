"""The default SlurmPort: Slurm's own CLI, run as argv lists through the Runner.

One read is three cheap commands run concurrently: ``scontrol show node -o -d`` (every node in
one call; ``-d`` adds GresUsed), ``scontrol show config`` (BOOT_TIME, to notice a restart that
reset our features; docs/facts/slurm.md §3) and one ``squeue`` for syncd's hold jobs. With
``read_format: json`` nodes come from ``scontrol --json show node`` instead (24.11+; measured
about 10x dearer than the text at 2,000 nodes, so ``auto`` reads text: docs/slurm-backends.md).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import hostlist

from syncd.core.model import Action, NodeMark, SlurmNode, SlurmView, in_use
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.commands import Update, apply_checked, check_nodes, scontrol_argv
from syncd.slurm.errors import SlurmError
from syncd.slurm.holds import CliJobs, Holds, per_node
from syncd.slurm.jsonnodes import NodeKey, nodes_from_json
from syncd.slurm.parse import ParseStats, parse_boot_time, parse_nodes
from syncd.slurm.runner import Runner, make_runner
from syncd.slurm.sinfo import NODE_FORMAT, parse_sinfo_node

#: Partial reads of at most this many nodes use one single-node ``sinfo`` each (~6 ms apiece
#: at 10,000 nodes, where one ``scontrol show node`` costs ~85 ms): the verify read after a
#: write under churn names a handful.
SINGLE_READS = 16


class ScontrolPort:
    """SlurmPort over scontrol/squeue/sbatch/scancel."""

    backend = "scontrol"

    def __init__(self, settings: SlurmSettings, *, runner: Runner | None = None,
                 read_format: str = "text", slurm_version: str = "") -> None:
        self.settings = settings
        #: ``text`` or ``json``, chosen at start (syncd.slurm.select).
        self.read_format = read_format
        #: The release ``scontrol --version`` printed at start, e.g. ``24.11.5``.
        self.slurm_version = slurm_version
        self.runner = runner or make_runner(settings)
        self.holds = Holds(CliJobs(self.runner, job_name=settings.hold_job_name,
                                   partition=settings.hold_partition,
                                   priority=settings.hold_priority))
        self.stats = ParseStats()
        #: Actions applied per kind (one action may take several Slurm calls).
        self.applied: Counter[str] = Counter()
        self._last: dict[str, SlurmNode] = {}
        self._lines: dict[str, SlurmNode] = {}
        self._fields: dict[NodeKey, SlurmNode] = {}

    async def _show(self, *names: str, evict: bool = True) -> dict[str, SlurmNode]:
        """Nodes (all, or a hostlist) in the chosen format; the same object for a node whose
        line or fields did not change since the last read."""
        if self.read_format == "json":
            text = await self.runner.run("show_node", ["scontrol", "--json", "show", "node",
                                                       *names])
            try:
                items = json.loads(text).get("nodes") or []
            except (ValueError, AttributeError):
                raise SlurmError("scontrol --json show node: output is not a JSON object") \
                    from None
            return nodes_from_json(items, self.stats, self._fields, evict=evict)
        text = await self.runner.run("show_node", ["scontrol", "-o", "-d", "show", "node",
                                                   *names])
        return parse_nodes(text, self.stats, self._lines, evict=evict)

    async def close(self) -> None:
        """Nothing stays open between commands."""

    async def boot_time(self) -> str:
        """slurmctld's start time, one cheap call: a change means features were reset."""
        return parse_boot_time(
            await self.runner.run("show_config", ["scontrol", "show", "config"]))

    async def read(self) -> SlurmView:
        nodes, config_text, holds = await asyncio.gather(
            self._show(),
            self.runner.run("show_config", ["scontrol", "show", "config"]),
            self.holds.list(),
        )
        for name, gpus in per_node(holds).items():
            if name in nodes:
                nodes[name] = replace(nodes[name], hold_gpus=gpus)
        # Hand back the previous object for a node that did not change: the planner skips
        # nodes whose snapshots are the very same objects (syncd.core.memory.Memory.settled).
        last = self._last
        for name, node in nodes.items():
            prev = last.get(name)
            if prev is not None and prev == node:
                nodes[name] = prev
        self._last = nodes
        return SlurmView(nodes=nodes, ok=True, boot_time=parse_boot_time(config_text))

    async def read_nodes(self, names: Sequence[str]) -> dict[str, SlurmNode]:
        """Only ``names``, with their hold counts: what an incremental reconcile needs.
        Unchanged nodes come back as the same objects.

        Up to ``SINGLE_READS`` nodes are read one ``sinfo -n NODE`` at a time: slurmctld
        answers a single named node without packing its node table, where ``scontrol show
        node <hostlist>`` has it pack every node under its node lock (an update waits behind
        it) and scontrol unpack them all (~85 ms of CPU at 10,000 nodes) to print a few.
        A node sinfo does not print (it is in no partition) is read with scontrol."""
        wanted = check_nodes(names)
        part, holds = await asyncio.gather(self._read_some(wanted), self.holds.list())
        held = per_node(holds)
        out: dict[str, SlurmNode] = {}
        for name, node in part.items():
            if held.get(name):
                node = replace(node, hold_gpus=held[name])
            prev = self._last.get(name)
            if prev is not None and prev == node:
                node = prev
            self._last[name] = out[name] = node
        return out

    async def _read_some(self, names: Sequence[str]) -> dict[str, SlurmNode]:
        out: dict[str, SlurmNode] = {}
        if len(names) <= SINGLE_READS:
            # one after another: a background read should not take both cores from the loop
            for name in names:
                node = await self._sinfo_node(name)
                if node is not None:
                    out[name] = self._as_scontrol(node)
        rest = [n for n in names if n not in out]
        if rest:
            out.update(await self._show(hostlist.collect_hostlist(rest), evict=False))
        return out

    async def _sinfo_node(self, name: str) -> SlurmNode | None:
        """One node by a single-node request (``sinfo -n NODE``); None if sinfo prints none."""
        text = await self.runner.run("sinfo_node", [
            "sinfo", "-h", "-N", "-n", name, "-O", NODE_FORMAT])
        try:
            node = parse_sinfo_node(text, self.stats)
        except ValueError as exc:
            raise SlurmError(str(exc)) from None
        return node if node is not None and node.name == name else None

    def _as_scontrol(self, node: SlurmNode) -> SlurmNode:
        """sinfo prints ALLOCATED for a moment after a job starts where scontrol prints
        MIXED (scontrol derives MIXED from CPU counts), so between these two the last full
        read's word stands until the next one: no decision tells them apart, and reads
        must not flip a node back and forth."""
        prev = self._last.get(node.name)
        if (prev is not None and prev.state is not node.state
                and in_use(prev.state) is in_use(node.state)):
            return replace(node, state=prev.state)
        return node

    async def read_marks(self, names: Sequence[str]) -> dict[str, NodeMark]:
        """``sinfo -n NODE`` per node, concurrently: slurmctld answers one named node with a
        single-node request (~6 ms at 10,000 nodes), where ``scontrol show node NODE`` loads
        the whole table (~85 ms) and filters it on the client."""
        wanted = sorted(set(check_nodes(names)))
        found = await asyncio.gather(*(self._sinfo_node(n) for n in wanted))
        return {n: NodeMark.of(node) for n, node in zip(wanted, found, strict=True)
                if node is not None}

    async def apply(self, action: Action) -> None:
        async def write(update: Update) -> None:
            await self.runner.run("update", scontrol_argv(update))

        await apply_checked(action, per_call=self.settings.max_nodes_per_call,
                            set_holds=self.holds.set, write=write)
        self.applied[action.kind.value] += 1
