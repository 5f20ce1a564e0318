"""SlurmPort on pyslurm 25.11 (the ``syncd[pyslurm]`` extra).

pyslurm 25.11 builds only against Slurm 25.11, which no Debian suite ships, so CI cannot run it:
``scripts/test-pyslurm`` runs the contract suite against any Slurm 25.11 (docs/slurm-backends.md
says how to build one). The read path makes no subprocess: nodes, jobs (syncd's holds and the
GPUs in use, syncd.slurm.pyslurm_data) and slurmctld's boot time are pyslurm RPCs, each in a
worker thread because they block. Node updates are ``Node.modify``/``Nodes.modify`` (one RPC per
hostlist); hold jobs are submitted and cancelled through the same verified CLI code as the
scontrol backend (writes only, and rare).
"""

from __future__ import annotations

import asyncio
import getpass
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from syncd.core.model import Action, NodeMark, SlurmNode, SlurmView
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.commands import Update, apply_checked, check_nodes
from syncd.slurm.errors import SlurmError, Timeout, UnknownNode, from_text
from syncd.slurm.holds import CliJobs, HoldJob, Holds
from syncd.slurm.parse import ParseStats
from syncd.slurm.pyslurm_data import gpus_in_use, holds_of, node_key, node_values, to_node
from syncd.slurm.runner import Runner, make_runner
from syncd.slurm.throttle import TokenBucket

#: read_nodes of up to this many names loads each node alone (slurm_load_node_single).
SINGLE_READS = 4


class _PyslurmJobs:
    """Hold jobs: listed through pyslurm's Jobs.load, written through sbatch/scancel."""

    def __init__(self, port: PyslurmPort, cli: CliJobs) -> None:
        self._port = port
        self._cli = cli

    async def list(self) -> list[HoldJob]:
        return (await self._port.jobs())[1]

    async def cancel(self, job_ids: Sequence[str]) -> None:
        await self._cli.cancel(job_ids)

    async def submit(self, node: str, count: int) -> None:
        await self._cli.submit(node, count)


class PyslurmPort:
    """SlurmPort over pyslurm's RPCs; the module is imported by the caller (after setting
    SLURM_CONF, syncd.slurm.select) and injected."""

    backend = "pyslurm"

    def __init__(
        self, settings: SlurmSettings, pyslurm: Any, *, runner: Runner | None = None
    ) -> None:
        self.settings = settings
        self._ps = pyslurm
        #: The Slurm release pyslurm was built for (it builds for exactly one).
        self.slurm_version = str(getattr(pyslurm, "__version__", ""))
        # One bucket for the RPCs and the commands (hold writes): the configured rate is the
        # rate of every call this backend makes.
        self._bucket = TokenBucket(rate=settings.calls_per_second, burst=settings.burst)
        self.runner = runner or make_runner(settings, bucket=self._bucket)
        cli = CliJobs(self.runner, job_name=settings.hold_job_name,
                      partition=settings.hold_partition, priority=settings.hold_priority)
        self.holds = Holds(_PyslurmJobs(self, cli))
        self._user = getpass.getuser()
        self.stats = ParseStats()
        self.calls: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        self._by_key: dict[tuple[Any, ...], SlurmNode] = {}
        self._last: dict[str, SlurmNode] = {}

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

    async def close(self) -> None:
        """pyslurm's RPCs keep no connection open."""

    async def boot_time(self) -> str:
        """slurmctld's start time (``slurmctld.Config.load``): a change means a restart."""
        conf = await self._rpc("load_config", self._ps.slurmctld.Config.load)
        return str(getattr(conf, "slurmctld_boot_time", "") or "")

    async def jobs(self) -> tuple[dict[str, int], list[HoldJob]]:
        """GPUs in use per node, and syncd's hold jobs, from one Jobs.load."""
        loaded = await self._rpc("load_jobs", self._ps.Jobs.load)
        jobs = node_values(loaded)
        return gpus_in_use(jobs), holds_of(jobs, job_name=self.settings.hold_job_name,
                                           user=self._user)

    def _build(self, raws: Sequence[Any], used: dict[str, int], holds: list[HoldJob],
               *, evict: bool) -> dict[str, SlurmNode]:
        """Nodes from pyslurm objects; an unchanged node is the very object read before."""
        held: dict[str, int] = {}
        for h in holds:
            held[h.node] = held.get(h.node, 0) + h.gpus
        seen: dict[tuple[Any, ...], SlurmNode] = {}
        out: dict[str, SlurmNode] = {}
        for raw in raws:
            if not getattr(raw, "name", None):
                continue
            key = node_key(raw, used.get(str(raw.name), 0))
            node = self._by_key.get(key) or to_node(raw, key[-1], self.stats)
            seen[key] = node
            if held.get(node.name):
                node = replace(node, hold_gpus=held[node.name])
            prev = self._last.get(node.name)
            out[node.name] = prev if prev is not None and prev == node else node
        if evict:
            self._by_key.clear()
        self._by_key.update(seen)
        return out

    async def read(self) -> SlurmView:
        loaded = await self._rpc("load_nodes", self._ps.Nodes.load)
        used, holds = await self.jobs()
        boot = await self.boot_time()
        self._last = self._build(node_values(loaded), used, holds, evict=True)
        return SlurmView(nodes=dict(self._last), ok=True, boot_time=boot)

    async def read_nodes(self, names: Sequence[str]) -> dict[str, SlurmNode]:
        wanted = sorted(set(check_nodes(names)))
        raws: list[Any] = []
        if len(wanted) <= SINGLE_READS:
            for name in wanted:
                try:
                    raws.append(await self._rpc("load_node", self._ps.Node.load, name))
                except UnknownNode:
                    continue  # gone since the last full read: the next one drops it
        else:
            loaded = await self._rpc("load_nodes", self._ps.Nodes.load)
            raws = [r for r in node_values(loaded) if getattr(r, "name", None) in set(wanted)]
        used, holds = await self.jobs()
        fresh = self._build(raws, used, holds, evict=False)
        self._last.update(fresh)
        return fresh

    async def read_marks(self, names: Sequence[str]) -> dict[str, NodeMark]:
        """``Node.load`` per node (one single-node RPC each), no jobs."""
        out: dict[str, NodeMark] = {}
        for name in sorted(set(check_nodes(names))):
            try:
                raw = await self._rpc("load_node", self._ps.Node.load, name)
            except UnknownNode:
                continue
            out[name] = NodeMark.of(to_node(raw, 0, self.stats))
        return out

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
        async def write(update: Update) -> None:
            changes = self._changes(update)
            if len(update.nodes) == 1:
                await self._rpc("modify", self._ps.Node(update.nodes[0]).modify, changes)
            else:
                # Nodes("a,b") builds the collection from a comma list; one RPC for all.
                target = self._ps.Nodes(",".join(update.nodes))
                await self._rpc("modify", target.modify, changes)

        await apply_checked(action, per_call=self.settings.max_nodes_per_call,
                            set_holds=self.holds.set, write=write)
        self.applied[action.kind.value] += 1
