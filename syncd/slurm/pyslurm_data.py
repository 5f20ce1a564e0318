"""pyslurm 25.11's objects turned into snapshots (pure: attributes in, snapshots out).

The attribute names are pyslurm 25.11.2's (pyslurm/core/node.pyx and job/job.pyx; measured
behaviour in docs/slurm-backends.md): ``Nodes.load()`` is a map whose iteration yields node
*names*, so nodes come from ``.values()``; a Node has no ``gres_used``, and its
``allocated_gres`` comes from TRES accounting, which is empty without slurmdbd. GPUs in use are
therefore summed from the running jobs' per-node GRES (``Job.get_resource_layout_per_node()``,
built from the job's ``gres_detail``, what ``scontrol -d`` prints as GresUsed), read by the same
``Jobs.load()`` that finds syncd's hold jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from syncd.core.model import SlurmNode
from syncd.slurm.holds import LIVE_STATES, HoldJob, marker
from syncd.slurm.jsonnodes import tasks_of
from syncd.slurm.parse import ParseStats, live_reason, parse_gpus, parse_state

#: Job states whose GRES are allocated on their nodes.
_HOLDING = frozenset({"RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING"})


def gpus(gres: Any) -> int:
    """GPUs in pyslurm's GRES dicts: ``{'gpu': 8}``, ``{'gpu:a100': 2}``, or with indexes
    ``{'gpu': {'count': 1, 'indexes': '0'}}``; a string is read like scontrol's."""
    if not isinstance(gres, Mapping):
        return parse_gpus(str(gres)) if gres else 0
    total = 0
    for key, value in gres.items():
        if str(key).split(":", 1)[0] != "gpu":
            continue
        if isinstance(value, Mapping):
            value = value.get("count", 0)
        try:
            total += int(value)
        except (TypeError, ValueError):
            continue
    return total


def node_values(loaded: Any) -> list[Any]:
    """The Node objects of ``Nodes.load()`` (iterating it yields names, not nodes)."""
    values = getattr(loaded, "values", None)
    if callable(values):
        return list(values())
    return list(loaded)


def node_key(raw: Any, used: int) -> tuple[Any, ...]:
    return (raw.name, raw.state, raw.reason, getattr(raw, "reason_user", None),
            tuple(raw.available_features or ()), tuple(raw.active_features or ()),
            repr(raw.configured_gres), used)


def to_node(raw: Any, used: int, stats: ParseStats) -> SlurmNode:
    state, flags = parse_state(str(raw.state or ""), stats)
    # 24.11 and 25.11 keep a reason after RESUME: it counts only while it holds the node.
    reason, user = live_reason(state, flags, str(raw.reason or "").strip(),
                               str(getattr(raw, "reason_user", "") or ""))
    return SlurmNode(
        name=str(raw.name), state=state, flags=flags, reason=reason, reason_user=user,
        available_features=tuple(raw.available_features or ()),
        active_features=tuple(raw.active_features or ()),
        gres_gpus=gpus(raw.configured_gres), gres_used_gpus=used)


def _state(job: Any) -> str:
    return str(getattr(job, "state", "") or "").split("+", 1)[0].upper()


def gpus_in_use(jobs: Iterable[Any]) -> dict[str, int]:
    """GPUs allocated per node, summed over the jobs that hold theirs."""
    out: dict[str, int] = {}
    for job in jobs:
        if _state(job) not in _HOLDING:
            continue
        layout = job.get_resource_layout_per_node() or {}
        for node, res in layout.items():
            n = gpus((res or {}).get("gres"))
            if n:
                out[str(node)] = out.get(str(node), 0) + n
    return out


def holds_of(jobs: Iterable[Any], *, job_name: str, user: str) -> list[HoldJob]:
    """syncd's live hold jobs of ``user``, one per array task, ids as scancel takes them."""
    found: list[HoldJob] = []
    for job in jobs:
        node = str(getattr(job, "required_nodes", "") or "")
        if getattr(job, "name", None) != job_name or not node:
            continue
        if getattr(job, "comment", None) != marker(job_name, node):
            continue
        state = _state(job)
        if state not in LIVE_STATES or (user and getattr(job, "user_name", user) != user):
            continue
        count = gpus(getattr(job, "gres_per_node", None)) or 1
        array = getattr(job, "array_id", None)
        task = getattr(job, "array_task_id", None)
        waiting = str(getattr(job, "array_tasks_waiting", "") or "")
        if array and task is None and waiting:
            found.extend(HoldJob(f"{array}_{t}", node, state, count) for t in tasks_of(waiting))
        elif array and task is not None:
            found.append(HoldJob(f"{array}_{task}", node, state, count))
        else:
            found.append(HoldJob(str(job.id), node, state, count))
    return found
