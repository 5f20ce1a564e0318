"""Parsers for ``sinfo -h -N -n NODE -O ...``: one named node, which slurmctld answers
without packing its whole node table (docs/hot-path.md). Fields are separated by ``|``; the
reason is last because it is free text and may hold the separator itself.
"""

from __future__ import annotations

from syncd.core.model import SlurmNode
from syncd.slurm.parse import ParseStats, live_reason, parse_features, parse_gpus, parse_state

#: ``sinfo -O`` fields of a node (:func:`parse_sinfo_node`): what ``scontrol show node -o -d``
#: gives syncd, the free-text reason last.
NODE_FORMAT = ("NodeList:|,StateComplete:|,Features:|,features_act:|,Gres:|,GresUsed:|,"
               "User:|,Reason:|")


def parse_sinfo_node(text: str, stats: ParseStats | None = None) -> SlurmNode | None:
    """``sinfo -h -N -n NODE -O NODE_FORMAT``: the node as :func:`parse_node` reads it from
    ``scontrol show node -o -d`` (hold counts aside), or None when sinfo printed nothing (no
    such node, or a node in no partition). sinfo prints a line per partition the node is in,
    all alike, so the first one is the node; ``none`` and ``Unknown`` mean no reason, and a
    reason left on a schedulable node counts as none, as in :func:`parse_node`."""
    line = text.lstrip("\n").split("\n", 1)[0]
    if not line.strip():
        return None
    parts = line.split("|", 7)
    if len(parts) < 8:
        raise ValueError(f"sinfo printed an unexpected line: {line[:200]!r}")
    name, state_text, avail, active, gres, used, user, reason = parts
    reason = reason[:-1] if reason.endswith("|") else reason
    if reason == "none":
        reason, user = "", ""
    state, flags = parse_state(state_text, stats)
    reason, user = live_reason(state, flags, reason.strip(), user.strip())
    return SlurmNode(
        name=name.strip(), state=state, flags=flags, reason=reason, reason_user=user,
        available_features=parse_features(avail.strip()),
        active_features=parse_features(active.strip()),
        gres_gpus=parse_gpus(gres.strip()), gres_used_gpus=parse_gpus(used.strip()))
