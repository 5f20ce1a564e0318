"""SlurmPort over slurmrestd (``slurm.backend: rest``): no Slurm binary, no slurm.conf.

Slinky and many sites reach slurmctld only through slurmrestd with a JWT. One read is one
``GET nodes/`` (every node), one ``GET jobs/`` (syncd's hold jobs) and one ``GET diag/``
(slurmctld's start time, which changes when it restarts), run concurrently; a node update is
one ``POST nodes/`` per hostlist of up to ``max_nodes_per_call`` nodes; holds are submitted
and cancelled through ``job/submit`` and ``DELETE jobs/``. Request bodies and the measured
answers of 24.11 and 26.05: docs/slurm-backends.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import hostlist

from syncd.core.model import Action, NodeMark, SlurmNode, SlurmView
from syncd.settings.slurm import SlurmSettings
from syncd.slurm.commands import Update, apply_checked, check_nodes
from syncd.slurm.holds import TOP_PRIORITY, HoldJob, Holds, marker, per_node
from syncd.slurm.jsonnodes import NodeKey, holds_from_json, nodes_from_json
from syncd.slurm.parse import ParseStats
from syncd.slurm.rest_client import RestClient

#: read_nodes of up to this many names reads each node on its own (one small GET each);
#: more read everything at once.
SINGLE_READS = 4
#: slurmctld resets its statistics (diag's req_time_start) in its first background pass after
#: 00:00 UTC; a new start this many seconds after midnight is that reset, not a restart.
DAILY_RESET_WINDOW = 120


def boot_marker(previous: int, start: int) -> int:
    """The restart marker from diag's ``req_time_start``. REST has no BOOT_TIME; slurmctld
    sets req_time_start in its first background pass (0 before that: ``previous`` stays) and
    again at the daily statistics reset (controller.c, ``next_stats_reset = now - (now % 86400)
    + 86400``; measured 0 in 2 of 5 fresh 24.11 starts), which keeps ``previous`` too. Any other
    new value is a restart (or an ``sdiag --reset``: one needless re-check of features)."""
    if not start:
        return previous
    if previous and start > previous and start % 86400 < DAILY_RESET_WINDOW:
        return previous
    return start


class RestJobs:
    """Hold jobs through slurmrestd (the token's user owns them, like ``squeue --me``)."""

    def __init__(self, client: RestClient, settings: SlurmSettings) -> None:
        self._c = client
        self._s = settings

    async def list(self) -> list[HoldJob]:
        data = await self._c.request("jobs", "GET", self._c.path("jobs/"))
        return holds_from_json(data.get("jobs") or (), job_name=self._s.hold_job_name,
                               user=self._c.user)

    async def cancel(self, job_ids: Sequence[str]) -> None:
        await self._c.request("cancel", "DELETE", self._c.path("jobs/"),
                              {"jobs": list(job_ids)})

    async def submit(self, node: str, count: int) -> None:
        s = self._s
        job: dict[str, Any] = {
            "name": s.hold_job_name, "comment": marker(s.hold_job_name, node),
            "required_nodes": [node], "tres_per_node": "gres/gpu:1", "cpus_per_task": 1,
            "memory_per_node": {"set": True, "number": 1}, "array": f"0-{count - 1}",
            "standard_output": "/dev/null", "standard_error": "/dev/null",
            "current_working_directory": "/", "requeue": False,
            # Like sbatch --export=NONE: nothing of the daemon's environment goes into the job.
            "environment": ["PATH=/usr/bin:/bin"],
            "script": "#!/bin/sh\nexec /bin/sleep infinity\n",
        }
        if s.hold_priority:
            number = TOP_PRIORITY if s.hold_priority == "TOP" else int(s.hold_priority)
            job["priority"] = {"set": True, "number": number}
        if s.hold_partition:
            job["partition"] = s.hold_partition
        await self._c.request("submit", "POST", self._c.path("job/submit"), {"job": job},
                              idempotent=False)


def update_body(update: Update) -> dict[str, Any]:
    """The ``update_node_msg`` of one checked update (features set as available and active
    together: active ones must stay a subset, error 2031)."""
    # A list (hostlist_string): v0.0.45 warns about a plain string.
    body: dict[str, Any] = {"name": [hostlist.collect_hostlist(list(update.nodes))]}
    if update.features is not None:
        body["features"] = list(update.features)
        body["features_act"] = list(update.features)
    if update.state:
        body["state"] = [update.state]
    if update.reason:
        body["reason"] = update.reason
    return body


class RestPort:
    """SlurmPort over slurmrestd; build it with :func:`make_rest_port` (it needs ``start``)."""

    backend = "rest"

    def __init__(self, settings: SlurmSettings, client: RestClient) -> None:
        self.settings = settings
        self.client = client
        self.holds = Holds(RestJobs(client, settings))
        self.stats = ParseStats()
        self.applied: Counter[str] = Counter()
        self._cache: dict[NodeKey, SlurmNode] = {}
        self._last: dict[str, SlurmNode] = {}
        self._boot = 0

    @property
    def slurm_version(self) -> str:
        return self.client.release

    async def close(self) -> None:
        """Close the HTTP session (at shutdown)."""
        await self.client.close()

    async def boot_time(self) -> str:
        """slurmctld's start as :func:`boot_marker` reads it. Unknown yet (slurmctld in its
        first second): asked again for up to 5 s, then empty, which the planner reads as
        unknown (no restart)."""
        for attempt in range(11):
            if attempt:
                await asyncio.sleep(0.5)
            data = await self.client.request("diag", "GET", self.client.path("diag/"))
            start = (data.get("statistics") or {}).get("req_time_start")
            if isinstance(start, dict):
                start = start.get("number")
            with contextlib.suppress(TypeError, ValueError):
                self._boot = boot_marker(self._boot, int(start or 0))
            if self._boot:
                return str(self._boot)
        return ""

    async def _nodes(self, path: str) -> list[Any]:
        data = await self.client.request("nodes", "GET", self.client.path(path))
        return list(data.get("nodes") or ())

    async def read(self) -> SlurmView:
        raw, boot, holds = await asyncio.gather(self._nodes("nodes/"), self.boot_time(),
                                                self.holds.list())
        nodes = nodes_from_json(raw, self.stats, self._cache)
        self._last = _with_holds(nodes, holds, self._last)
        return SlurmView(nodes=dict(self._last), ok=True, boot_time=boot)

    async def read_nodes(self, names: Sequence[str]) -> dict[str, SlurmNode]:
        wanted = set(check_nodes(names))
        if len(wanted) <= SINGLE_READS:
            parts = await asyncio.gather(*(self._nodes(f"node/{n}") for n in sorted(wanted)),
                                         self.holds.list())
            raw = [r for part in parts[:-1] for r in part]
            holds: list[HoldJob] = parts[-1]
        else:
            raw, holds = await asyncio.gather(self._nodes("nodes/"), self.holds.list())
        nodes = nodes_from_json([r for r in raw if isinstance(r, dict)
                                 and r.get("name") in wanted], self.stats, self._cache,
                                evict=False)
        fresh = _with_holds(nodes, holds, self._last)
        self._last.update(fresh)
        return fresh

    async def read_marks(self, names: Sequence[str]) -> dict[str, NodeMark]:
        """``GET node/NAME`` per node (slurmctld answers one node, not the table), no jobs."""
        wanted = sorted(set(check_nodes(names)))
        parts = await asyncio.gather(*(self._nodes(f"node/{n}") for n in wanted))
        raw = [r for part in parts for r in part
               if isinstance(r, dict) and r.get("name") in wanted]
        return {name: NodeMark.of(node)
                for name, node in nodes_from_json(raw, self.stats, {}, evict=False).items()}

    async def apply(self, action: Action) -> None:
        async def write(update: Update) -> None:
            await self.client.request("update", "POST", self.client.path("nodes/"),
                                      update_body(update))

        await apply_checked(action, per_call=self.settings.max_nodes_per_call,
                            set_holds=self.holds.set, write=write)
        self.applied[action.kind.value] += 1


def _with_holds(nodes: dict[str, SlurmNode], holds: Sequence[HoldJob],
                last: dict[str, SlurmNode]) -> dict[str, SlurmNode]:
    """Nodes with their hold counts; a node equal to the last one read is that object."""
    held = per_node(holds)
    out: dict[str, SlurmNode] = {}
    for name, node in nodes.items():
        if held.get(name):
            node = replace(node, hold_gpus=held[name])
        prev = last.get(name)
        out[name] = prev if prev is not None and prev == node else node
    return out


async def make_rest_port(settings: SlurmSettings) -> RestPort:
    """A started RestPort: the API version is chosen and the server answered; raises
    SlurmError (and closes the session) when it cannot be."""
    client = RestClient(settings)
    port = RestPort(settings, client)
    try:
        await client.start()
        # openapi/v3 and ping/ answer a token slurmctld would refuse: diag/ proves it works.
        await port.boot_time()
    except BaseException:
        await client.close()
        raise
    return port
