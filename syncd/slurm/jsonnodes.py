"""Nodes and jobs as Slurm's data_parser (v0.0.40 and later) prints them, turned into snapshots.

The same JSON comes from slurmrestd (``GET /slurm/vX/nodes/``) and from ``scontrol --json show
node`` (24.11: v0.0.42, 26.05: v0.0.45; docs/slurm-releases.md): ``state`` is a list
(``["IDLE", "DRAIN"]``), features are lists, ``reason`` is the bare text with its user in
``reason_set_by_user``, ``gres``/``gres_used`` are ``gpu:8``/``gpu:0``. Pure functions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from syncd.core.model import SlurmNode
from syncd.slurm.holds import LIVE_STATES, HoldJob, marker
from syncd.slurm.parse import ParseStats, live_reason, parse_gpus, parse_state

NodeKey = tuple[Any, ...]


def _words(value: Any) -> tuple[str, ...]:
    """A csv_string field: a list in v0.0.40+, a comma string in some outputs."""
    if isinstance(value, str):
        return tuple(v for v in value.split(",") if v)
    if isinstance(value, list):
        return tuple(str(v) for v in value if v)
    return ()


def _key(raw: Mapping[str, Any]) -> NodeKey:
    """Every field a SlurmNode is built from; equal keys give equal nodes."""
    return (raw.get("name"), tuple(raw.get("state") or ()), raw.get("reason"),
            raw.get("reason_set_by_user"), _words(raw.get("features")),
            _words(raw.get("active_features")), raw.get("gres"), raw.get("gres_used"))


def node_from_json(raw: Mapping[str, Any], stats: ParseStats | None = None) -> SlurmNode:
    state_list = raw.get("state") or ()
    text = "+".join(str(s) for s in state_list) if isinstance(state_list, list) \
        else str(state_list)
    state, flags = parse_state(text, stats)
    reason, user = live_reason(state, flags, str(raw.get("reason") or "").strip(),
                               str(raw.get("reason_set_by_user") or ""))
    return SlurmNode(
        name=str(raw["name"]),
        state=state,
        flags=flags,
        reason=reason,
        reason_user=user,
        available_features=_words(raw.get("features")),
        active_features=_words(raw.get("active_features")),
        gres_gpus=parse_gpus(str(raw.get("gres") or "")),
        gres_used_gpus=parse_gpus(str(raw.get("gres_used") or "")),
    )


def nodes_from_json(items: Iterable[Any], stats: ParseStats,
                    cache: dict[NodeKey, SlurmNode], *, evict: bool = True
                    ) -> dict[str, SlurmNode]:
    """Nodes of a ``nodes`` list, keyed by name. ``cache`` (kept by the caller) maps each
    node's fields to the node built from them last time: an unchanged node comes back as the
    very same object (the port's reuse contract, syncd/core/ports.py)."""
    out: dict[str, SlurmNode] = {}
    seen: dict[NodeKey, SlurmNode] = {}
    for raw in items:
        if not isinstance(raw, dict) or not raw.get("name"):
            stats.skipped_lines += 1
            continue
        key = _key(raw)
        node = cache.get(key)
        if node is None:
            node = node_from_json(raw, stats)
        out[node.name] = seen[key] = node
    if evict:
        cache.clear()
    cache.update(seen)
    return out


def _number(value: Any) -> int | None:
    """A uint32_no_val struct ``{set, infinite, number}`` or a plain number."""
    if isinstance(value, dict):
        return int(value["number"]) if value.get("set") and not value.get("infinite") else None
    return int(value) if isinstance(value, int) else None


def tasks_of(spec: str) -> list[int]:
    """``5-7,9%2`` (a pending array's task string) -> [5, 6, 7, 9]."""
    out: list[int] = []
    for part in spec.split("%", 1)[0].split(","):
        lo, _, hi = part.partition("-")
        step = 1
        if ":" in hi:
            hi, _, s = hi.partition(":")
            step = int(s) if s.isdigit() and int(s) > 0 else 1
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.extend(range(int(lo), int(hi or lo) + 1, step))
    return out


def holds_from_json(jobs: Iterable[Any], *, job_name: str, user: str) -> list[HoldJob]:
    """syncd's live hold jobs in a ``jobs`` list (GET /slurm/vX/jobs/), one per array task,
    ids as scancel takes them (``12_3``); anything that is not a hold of ``user`` is ignored."""
    out: list[HoldJob] = []
    for j in jobs:
        if not isinstance(j, dict) or j.get("name") != job_name:
            continue
        node = str(j.get("required_nodes") or "")
        if not node or j.get("comment") != marker(job_name, node):
            continue
        if user and j.get("user_name") != user:
            continue
        states = j.get("job_state") or ()
        state = str(states[0] if isinstance(states, list) and states else states)
        if state not in LIVE_STATES:
            continue
        spec = str(j.get("tres_per_node") or "").removeprefix("gres/").replace("gres/", "")
        gpus = parse_gpus(spec) or 1
        array = _number(j.get("array_job_id")) or 0
        task = _number(j.get("array_task_id"))
        pending = str(j.get("array_task_string") or "")
        if array and task is None and pending:
            out.extend(HoldJob(f"{array}_{t}", node, state, gpus) for t in tasks_of(pending))
        elif array and task is not None:
            out.append(HoldJob(f"{array}_{task}", node, state, gpus))
        else:
            out.append(HoldJob(str(j.get("job_id")), node, state, gpus))
    return out
