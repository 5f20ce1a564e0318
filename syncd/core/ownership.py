"""Which drain reasons are syncd's.

A reason is syncd's when it is exactly what syncd wrote: the ledger in memory holds that text,
and the text ends in a short keyed token over the text so that ownership survives a lost ledger
(a restarted pod with a fresh state directory) without ever matching a reason an operator typed
or edited. The token does not cover the node name on purpose: one cause gives one reason, so a
thousand drains for the same cause still batch into ten hostlist calls. Prefix matching alone
is not enough: NHC (mej/nhc#134) and ParallelCluster (aws-parallelcluster#7465) both undid
admin drains that merely looked like their own.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from syncd.core.memory import NodeMemory
from syncd.core.model import BaseState, SlurmNode
from syncd.core.policy import Policy


@lru_cache(maxsize=1024)
def _token(key_text: str, text: str) -> str:
    key = hashlib.blake2s(f"syncd-ownership\0{key_text}".encode()).digest()
    return hashlib.blake2s(text.encode(), key=key, digest_size=4).hexdigest()


def make_reason(policy: Policy, node: str, cause: str) -> str:
    text = f"{policy.reason_prefix} {cause}"
    return f"{text} #{_token(policy.ownership_key, text)}"


def is_syncd_reason(policy: Policy, node: str, reason: str) -> bool:
    if not reason.startswith(policy.reason_prefix):
        return False
    text, sep, token = reason.rpartition(" #")
    return bool(sep) and token == _token(policy.ownership_key, text)


#: What slurmctld appends to a reason when a drained node stops responding (25.11; 24.11
#: piles it up), docs/slurm-releases.md. The reason before it is still whoever drained.
NOT_RESPONDING_SUFFIX = " : Not responding"


def base_reason(reason: str) -> str:
    """The reason without what slurmctld appended for an unresponsive node."""
    while reason.endswith(NOT_RESPONDING_SUFFIX):
        reason = reason[: -len(NOT_RESPONDING_SUFFIX)]
    return reason


def owns(policy: Policy, slurm: SlurmNode, memory: NodeMemory) -> bool:
    """True when the node is drained with a reason syncd wrote, unedited, and has not lifted
    since (a reason Slurm kept after syncd's resume is no longer syncd's)."""
    if not slurm.drained and slurm.state is not BaseState.DOWN:
        return False
    text = base_reason(slurm.reason)
    if not text.startswith(policy.reason_prefix):
        return False
    if memory.ledger_reason and text == memory.ledger_reason:
        return True
    if memory.released and text == memory.released:
        return False
    return is_syncd_reason(policy, slurm.name, text)


def slurmctld_unresponsive(slurm: SlurmNode) -> bool:
    """Out of service only because slurmctld cannot reach its slurmd right now: not yet
    DOWN, nobody's drain, no FAIL, and slurmctld's own reason (or none).

    Such a node is schedulable again the moment slurmd answers, whatever Kubernetes says, so
    syncd may drain it (on real Slurm it then comes back IDLE+DRAIN). A node already DOWN is
    left to slurmctld: a drain reason would stop ReturnToService from bringing it back.
    """
    if slurm.drained or "FAIL" in slurm.flags or slurm.state in (BaseState.DOWN,
                                                                 BaseState.FUTURE):
        return False
    return slurm.not_responding and (not slurm.reason or slurm.reason.startswith("Not responding"))


#: Reason prefixes of SchedMD Slinky's controllers (docs/slinky.md): slurm-operator's NodeSet
#: controller writes and undrains only reasons with its prefix, slurm-bridge likewise.
SLINKY_PREFIXES = (("slurm-operator: ", "slurm-operator", "Slinky NodeSet controller"),
                   ("slurm-bridge: ", "slurm-bridge", "Slinky scheduler bridge"))


def slinky_owner(reason: str) -> str:
    """``slurm-operator`` or ``slurm-bridge`` when the reason carries that controller's prefix."""
    for prefix, tool, _ in SLINKY_PREFIXES:
        if reason.startswith(prefix):
            return tool
    return ""


def owner_of(policy: Policy, slurm: SlurmNode, memory: NodeMemory) -> str:
    """Who holds this node out of service, in words for on-call."""
    if owns(policy, slurm, memory):
        return "syncd (manual drain)" if memory.manual else "syncd"
    if slurm.not_responding and (not slurm.reason or slurm.reason.startswith("Not responding")):
        return "slurmctld (node not responding)"
    if slurm.unavailable:
        who = slurm.reason_user or "unknown user"
        text = base_reason(slurm.reason)
        if "INVALID_REG" in slurm.flags:
            # slurmctld drains a node whose slurmd registers with less than slurm.conf says
            # (e.g. fewer GPUs) and keeps whatever reason the node had (docs/slurm-releases.md).
            return ("slurmctld (invalid registration: slurmd reported fewer resources than "
                    f"configured, e.g. GPUs; reason text {text or 'blank'!r}, see slurmctld's log)")
        if not text:
            return f"{who} (no reason text)"
        if memory.released and text == memory.released:
            return (f"{who} (the reason is syncd's old text, which Slurm kept after syncd "
                    "resumed the node: someone else took it out since)")
        for prefix, tool, what in SLINKY_PREFIXES:
            if text.startswith(prefix):
                return f"{tool} ({what}; syncd leaves it to it)"
        if text.startswith(policy.reason_prefix):
            if is_syncd_reason(policy, slurm.name, text.split(" : ")[0]) and " : " in text:
                return f"{who} (syncd's reason with text appended: {text.split(' : ', 1)[1]!r})"
            return f"{who} (reason carries syncd's prefix but was edited or forged)"
        return who
    return ""
