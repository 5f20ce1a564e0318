"""When slurmctld applied an update, from its own log: the benchmark's honest clock.

The observer (``SlurmObserver``) says when a change became *visible* to a poller, which adds
its own tick and the cost of ``scontrol show node`` (~30 ms at 10,000 nodes). slurmctld logs
the moment it applies an update with millisecond timestamps (``LogTimeFormat`` defaults to
``iso8601_ms``, slurm.conf(5)): state changes at ``info`` (``update_node: node X state set to
DRAINED``), feature changes only at ``debug2`` (``_update_node_features_post: nodes <hostlist>
active features set to: a,b``), so the benchmark raises the level with ``scontrol setdebug``
for the latency run only. The time is wall clock (truncated to the millisecond); a change's
start is taken with ``time.time()`` next to its monotonic start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import hostlist

from bench.harness import Expect

_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)\] (.*)$")
_FEATURES = re.compile(r"_update_node_features_post: nodes (\S+) active features set to: (\S*)")
_STATE = re.compile(r"update_node: node (\S+) state set to (DRAIN\w*)")


def applied(lines: Iterable[str]) -> list[tuple[float, str, frozenset[str]]]:
    """(wall time, node, what it got: ``DRAIN`` or its active features) per applied update."""
    out: list[tuple[float, str, frozenset[str]]] = []
    for raw in lines:
        m = _LINE.match(raw.rstrip("\n"))
        if m is None:
            continue
        at = datetime.fromisoformat(m.group(1)).timestamp()
        msg = m.group(2)
        f = _FEATURES.search(msg)
        if f is not None:
            got = frozenset(f.group(2).split(","))
            out.extend((at, n, got) for n in hostlist.expand_hostlist(f.group(1)))
            continue
        s = _STATE.search(msg)
        if s is not None:
            out.append((at, s.group(1), frozenset({"DRAIN"})))
    return out


def read_from(log: Path, offset: int) -> list[str]:
    with log.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace").splitlines()


def stamp(items: Sequence[Expect], lines: Iterable[str]) -> int:
    """Sets ``applied_wall`` of each item to the first update that gave it what it waits for
    at or after its start; returns how many were found."""
    by_node: dict[str, list[tuple[float, frozenset[str]]]] = {}
    for at, node, got in applied(lines):
        by_node.setdefault(node, []).append((at, got))
    found = 0
    for e in items:
        # the log truncates to the millisecond: an update in the change's own millisecond
        # may read up to 1 ms before its start
        for at, got in by_node.get(e.node, ()):
            if at >= e.wall0 - 0.001 and e.want in got:
                e.applied_wall = at
                found += 1
                break
    return found
