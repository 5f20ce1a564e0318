"""Validated Slurm node updates, as argv lists or as checked values for pyslurm.

Every node name, feature and reason passes syncd.core.validate here, before anything runs;
one bad value refuses the whole action with :class:`Refused` (a value that fails the allow-list
is never escaped and used). Both backends build their writes from :class:`Update`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import hostlist

from syncd.core.model import Action, ActionKind
from syncd.core.validate import is_feature, is_node_name, is_reason
from syncd.slurm.errors import Refused

#: Upper bound for a hold count: no node has more GPUs than this.
MAX_HOLD_GPUS = 1024
#: What a resume writes as the reason: 24.11 and 25.11 keep the reason after RESUME, so
#: slurmctld's own later drain (or " : Not responding") would carry syncd's text; a space is
#: the only blank Slurm stores (``Reason=""`` changes nothing), and 22.05/26.05 clear it
#: (docs/slurm-releases.md, "Reasons after RESUME").
BLANK_REASON = " "


def _show(value: str) -> str:
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def check_nodes(nodes: Sequence[str]) -> tuple[str, ...]:
    if not nodes:
        raise Refused("action lists no nodes")
    for n in nodes:
        if not is_node_name(n):
            raise Refused(f"node name {_show(n)} fails the allow-list")
    return tuple(nodes)


@dataclass(frozen=True, slots=True)
class Update:
    """One checked node update: ``state`` is DRAIN/DOWN/RESUME or empty; ``features`` is None when
    the features are left alone (an empty tuple clears them)."""

    nodes: tuple[str, ...]
    state: str = ""
    reason: str = ""
    features: tuple[str, ...] | None = None


def check(action: Action) -> Update:
    """The checked update for a node action; raises Refused. Uses ``action.nodes`` only:
    the hostlist text is rebuilt from checked names, never passed through."""
    nodes = check_nodes(action.nodes)
    if action.kind is ActionKind.SET_FEATURES:
        for f in action.features:
            if not is_feature(f):
                raise Refused(f"feature {_show(f)} fails the allow-list")
        return Update(nodes, features=tuple(dict.fromkeys(action.features)))
    if action.kind is ActionKind.DRAIN:
        # scontrol refuses a drain without a reason, pyslurm accepts it (docs/facts/pyslurm.md §3).
        if not action.reason or not is_reason(action.reason):
            raise Refused(f"drain reason {_show(action.reason)} fails the allow-list")
        return Update(nodes, state="DRAIN", reason=action.reason)
    if action.kind is ActionKind.DOWN:
        # DOWN, not DRAIN: slurmctld fails the node's jobs at once and requeues those that
        # may be (docs/slurm-releases.md), instead of waiting SlurmdTimeout for a dead node.
        if not action.reason or not is_reason(action.reason):
            raise Refused(f"down reason {_show(action.reason)} fails the allow-list")
        return Update(nodes, state="DOWN", reason=action.reason)
    if action.kind is ActionKind.RESUME:
        return Update(nodes, state="RESUME", reason=BLANK_REASON)
    raise Refused(f"{action.kind} is not a node update")


def check_hold(action: Action) -> tuple[tuple[str, ...], int]:
    nodes = check_nodes(action.nodes)
    if not 0 <= action.hold_gpus <= MAX_HOLD_GPUS:
        raise Refused(f"hold_gpus {action.hold_gpus} is outside 0..{MAX_HOLD_GPUS}")
    return nodes, action.hold_gpus


def chunks(nodes: Sequence[str], size: int) -> Iterator[tuple[str, ...]]:
    """At most ``size`` nodes per Slurm call (ParallelCluster's 100; docs/facts/prior-art.md §3)."""
    for i in range(0, len(nodes), size):
        yield tuple(nodes[i : i + size])


def scontrol_argv(update: Update) -> list[str]:
    """``scontrol update NodeName=<hostlist> ...``; each value is one argv element."""
    argv = ["scontrol", "update", f"NodeName={hostlist.collect_hostlist(list(update.nodes))}"]
    if update.features is not None:
        # Both in one call: active features must stay a subset of available ones
        # (docs/facts/slurm.md §3: "Active features not subset of available features").
        joined = ",".join(update.features)
        argv += [f"AvailableFeatures={joined}", f"ActiveFeatures={joined}"]
    if update.state:
        argv.append(f"State={update.state}")
    if update.reason:
        argv.append(f"Reason={update.reason}")
    return argv


async def apply_checked(action: Action, *, per_call: int,
                        set_holds: Callable[[tuple[str, ...], int], Awaitable[None]],
                        write: Callable[[Update], Awaitable[None]]) -> None:
    """The write path of every backend: a hold count goes to ``set_holds``; any other action
    is checked once and written by ``write`` in hostlists of at most ``per_call`` nodes."""
    if action.kind is ActionKind.SET_HOLD:
        await set_holds(*check_hold(action))
        return
    update = check(action)
    for part in chunks(update.nodes, per_call):
        await write(replace(update, nodes=part))
