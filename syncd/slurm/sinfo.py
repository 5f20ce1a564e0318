"""Parsers for ``sinfo -h -N -n NODE -O ...``: one named node, which slurmctld answers
without packing its whole node table (docs/hot-path.md). Fields are separated by ``|``; the
reason is last because it is free text and may hold the separator itself.
"""

from __future__ import annotations

from syncd.core.model import BaseState, NodeMark, SlurmNode
from syncd.slurm.parse import ParseStats, live_reason, parse_features, parse_gpus, parse_state

#: ``sinfo -O`` fields of a node's mark; the reason is last because it is free text and may
#: hold the separator itself.
MARK_FORMAT = "NodeList:|,StateComplete:|,User:|,Reason:|"


#: ``sinfo -O`` fields of a whole node (:func:`parse_sinfo_node`), the reason last as above.
NODE_FORMAT = ("NodeList:|,StateComplete:|,Features:|,features_act:|,Gres:|,GresUsed:|,"
               "User:|,Reason:|")


def _sinfo_fields(text: str, count: int) -> list[str] | None:
    """The ``count`` fields of the first line of ``sinfo -h -N -n NODE -O ...``, or None when
    sinfo printed nothing (no such node, or a node in no partition). sinfo prints a line per
    partition the node is in, all alike, so the first one is the node."""
    line = text.lstrip("\n").split("\n", 1)[0]
    if not line.strip():
        return None
    parts = line.split("|", count - 1)
    if len(parts) < count:
        raise ValueError(f"sinfo printed an unexpected line: {line[:200]!r}")
    last = parts[-1]
    parts[-1] = last[:-1] if last.endswith("|") else last
    return parts


def _sinfo_reason(state_text: str, user: str, reason: str,
                  stats: ParseStats | None) -> tuple[BaseState, frozenset[str], str, str]:
    """sinfo prints ``none`` and ``Unknown`` for a node without a reason; a reason left on a
    schedulable node counts as none, as in :func:`parse_node`."""
    if reason == "none":
        reason, user = "", ""
    state, flags = parse_state(state_text, stats)
    reason, user = live_reason(state, flags, reason.strip(), user.strip())
    return state, flags, reason, user


def parse_mark(text: str, stats: ParseStats | None = None) -> tuple[str, NodeMark] | None:
    """``sinfo -h -N -n NODE -O MARK_FORMAT``: (name, mark), or None (no such node)."""
    parts = _sinfo_fields(text, 4)
    if parts is None:
        return None
    name, state_text, user, reason = parts
    state, flags, reason, user = _sinfo_reason(state_text, user, reason, stats)
    return name.strip(), NodeMark(state, flags, reason, user)


def parse_sinfo_node(text: str, stats: ParseStats | None = None) -> SlurmNode | None:
    """``sinfo -h -N -n NODE -O NODE_FORMAT``: the node as :func:`parse_node` reads it from
    ``scontrol show node -o -d`` (hold counts aside), or None (no such node)."""
    parts = _sinfo_fields(text, 8)
    if parts is None:
        return None
    name, state_text, avail, active, gres, used, user, reason = parts
    state, flags, reason, user = _sinfo_reason(state_text, user, reason, stats)
    return SlurmNode(
        name=name.strip(), state=state, flags=flags, reason=reason, reason_user=user,
        available_features=parse_features(avail.strip()),
        active_features=parse_features(active.strip()),
        gres_gpus=parse_gpus(gres.strip()), gres_used_gpus=parse_gpus(used.strip()))
