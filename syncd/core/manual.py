"""``syncd drain`` and ``syncd resume``: operator requests, decided with the same ownership rules.

A manual drain is syncd-owned (its reason is in the ledger and carries the token) but marked
``manual``, so the planner never lifts it; only ``syncd resume`` does. A resume refuses any drain
that is not syncd's unless forced, and says whose it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from syncd.core.memory import EMPTY_NODE, Memory
from syncd.core.model import ActionKind, BaseState, NodeChange, SlurmView
from syncd.core.ownership import base_reason, make_reason, owner_of, owns
from syncd.core.policy import Policy
from syncd.core.validate import is_reason


@dataclass(frozen=True, slots=True)
class Decision:
    """Either ``change`` is set (and ``memory`` is what to keep), or ``refused`` says why not."""

    change: NodeChange | None
    memory: Memory
    refused: str = ""
    warning: str = ""


def drain(policy: Policy, slurm: SlurmView, memory: Memory, node: str, text: str) -> Decision:
    s = slurm.nodes.get(node)
    if s is None:
        return Decision(None, memory, refused=f"{node}: no such Slurm node")
    reason = make_reason(policy, node, f"manual, {text}")
    if not is_reason(reason):
        return Decision(None, memory, refused=(
            "the reason may only use letters, digits, spaces and _.,:/@+()#%- "
            "(at most about 150 characters)"))
    m = memory.node(node)
    if s.unavailable and not owns(policy, s, m):
        who = owner_of(policy, s, m)
        return Decision(None, memory, refused=(
            f"{node} is already out of service ({s.state_text}, reason {s.reason!r}) by {who}; "
            "syncd will not overwrite that reason"))
    nodes = dict(memory.nodes)
    nodes[node] = replace(m, ledger_reason=reason, manual=True, clear_since=None, released="")
    change = NodeChange(node, ActionKind.DRAIN, why=f"operator: {text}", reason=reason)
    return Decision(change, replace(memory, nodes=nodes))


def resume(
    policy: Policy, slurm: SlurmView, memory: Memory, node: str, *, force: bool = False
) -> Decision:
    s = slurm.nodes.get(node)
    if s is None:
        return Decision(None, memory, refused=f"{node}: no such Slurm node")
    m = memory.node(node)
    if not s.drained and s.state != BaseState.DOWN and "FAIL" not in s.flags:
        return Decision(None, memory, refused=f"{node} is not drained ({s.state_text})")
    mine = owns(policy, s, m)
    if not mine and not force:
        who = owner_of(policy, s, m) or "someone else"
        return Decision(None, memory, refused=(
            f"{node} was drained by {who} with reason {s.reason!r}, not by syncd; "
            "use --force to resume it anyway"))
    nodes = dict(memory.nodes)
    nodes[node] = replace(m or EMPTY_NODE, ledger_reason="", manual=False, clear_since=None,
                          released=base_reason(s.reason) if mine else "")
    warning = "" if mine else f"forced: overriding {owner_of(policy, s, m)}'s drain"
    why = "operator resume" + (" (forced)" if not mine else "")
    change = NodeChange(node, ActionKind.RESUME, why=why)
    return Decision(change, replace(memory, nodes=nodes), warning=warning)
