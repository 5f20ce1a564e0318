"""Group identical node changes into Slurm hostlist writes of bounded size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import hostlist

from syncd.core.model import Action, ActionKind, NodeChange


def batch(changes: Iterable[NodeChange], size: int) -> Iterator[Action]:
    """One Action per group of identical changes, at most ``size`` nodes each.

    ParallelCluster caps an update at 100 nodes (docs/facts/prior-art.md §3); syncd's default
    is 250 (``Policy.batch_size``): a call's fixed cost (~5 ms) dwarfs the ~6 µs a node
    (docs/facts/slurm.md §4), and a mass event's first node often goes out alone in a pass of
    its own (docs/hot-path.md). A bounded batch still keeps one failure from spreading across
    the whole cluster.
    """
    groups: dict[tuple[ActionKind, str, tuple[str, ...], int], list[str]] = {}
    for c in changes:
        groups.setdefault(c.group_key, []).append(c.node)
    for (kind, reason, features, hold), nodes in groups.items():
        ordered = hostlist.numerically_sorted(nodes)
        for i in range(0, len(ordered), size):
            chunk = tuple(ordered[i : i + size])
            yield Action(
                kind=kind,
                hostlist=hostlist.collect_hostlist(list(chunk)),
                nodes=chunk,
                reason=reason,
                features=features,
                hold_gpus=hold,
            )
