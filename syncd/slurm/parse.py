"""Parsers for the text Slurm's CLI prints, turned into syncd.core.model snapshots.

22.05 has no ``scontrol --json`` (docs/slurm-releases.md), so nodes come from ``scontrol show
node -o -d``: one line per node, ``Key=value`` pairs separated by spaces, where some values
(Reason, Comment, Extra, OS) are free text that may itself contain spaces and ``=``. The same
text parser reads 22.05, 24.11 and 26.05 (recorded lines of each in tests/slurm/data). Pure
functions only: recorded real output is enough to test them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from syncd.core.model import BaseState, SlurmNode

# Every key 22.05.8, 24.11.5 and 26.05.5 print for a node. Inside a free-text value only one
# of these starts a new field, so a reason like "fan = broken Bar=1" stays one value.
KNOWN_KEYS = frozenset({
    "NodeName", "Arch", "CoresPerSocket", "CPUAlloc", "CPUEfctv", "CPUTot", "CPULoad",
    "AvailableFeatures", "ActiveFeatures", "Features", "Gres", "GresDrain", "GresUsed",
    "NodeAddr", "NodeHostName", "Port", "Version", "OS", "RealMemory", "AllocMem", "FreeMem",
    "Sockets", "Boards", "State", "ThreadsPerCore", "TmpDisk", "Weight", "Owner", "MCS_label",
    "Partitions", "BootTime", "SlurmdStartTime", "LastBusyTime", "ResumeAfterTime", "CfgTRES",
    "AllocTRES", "CapWatts", "CurrentWatts", "AveWatts", "ExtSensorsJoules", "ExtSensorsWatts",
    "ExtSensorsTemp", "Reason", "Comment", "Extra", "MemSpecLimit", "CoreSpecCount",
    "CPUSpecList", "NextState", "ReservationName", "InstanceId", "InstanceType", "Topology",
    "Powerstate", "PowerState", "LastBusy", "Cpus", "Mem", "SuspendTime",
})
FREE_TEXT = frozenset({"Reason", "Comment", "Extra", "OS"})

_KEY_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# scontrol appends " [user@time]" to the stored reason (src/api/node_info.c).
_REASON_SUFFIX = re.compile(r"^(.*?)\s*\[([^\[\]@\s]*)@([^\[\]\s]*)\]$", re.DOTALL)
# That suffix as one token: it ends the Reason value, which may itself contain known keys
# ("Reason=fan Comment=see ticket [root@2026-12-01T21:14:53] Comment=..."); every release
# prints Reason before Comment and Extra (docs/slurm-releases.md).
_SUFFIX_TOKEN = re.compile(r"\[[^\[\]@\s]*@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\]")
_NULL = ("(null)", "N/A", "")
# sinfo-style suffix symbols, in case a short state ever shows up (sinfo(1) NODE STATE CODES).
_SYMBOLS = {"*": "NOT_RESPONDING", "~": "POWERED_DOWN", "#": "POWERING_UP",
            "%": "POWERING_DOWN", "$": "MAINTENANCE", "@": "REBOOT_REQUESTED",
            "!": "POWER_DOWN", "^": "REBOOT_ISSUED", "-": "PLANNED"}


@dataclass(slots=True)
class ParseStats:
    """What the parser had to guess about, for metrics: unknown base states, bad lines."""

    unknown_states: Counter[str] = field(default_factory=Counter)
    skipped_lines: int = 0


def _reason_end(tokens: list[str], start: int) -> int:
    """Index of the ``[user@time]`` token that ends a Reason starting at ``start``, or -1."""
    for j in range(start, len(tokens)):
        if _SUFFIX_TOKEN.fullmatch(tokens[j]):
            return j
    return -1


def split_fields(line: str) -> dict[str, str]:
    """``Key=value`` pairs of one ``-o`` line; free-text values keep spaces and ``=``.

    Scans space-separated tokens (2.4x faster than a regex over the line at 10,000 nodes;
    same output on every recorded line): a ``Name=`` token starts a field unless the current
    field is free text and ``Name`` is not a known scontrol key. A Reason runs up to its
    ``[user@time]`` suffix even across known keys.
    """
    out: dict[str, str] = {}
    key: str | None = None
    parts: list[str] = []
    tokens = line.split(" ")
    until = -1
    for i, tok in enumerate(tokens):
        name, eq, rest = tok.partition("=")
        if i > until and eq and (
                name in KNOWN_KEYS
                or (key not in FREE_TEXT and _KEY_TOKEN.fullmatch(name) is not None)):
            if key is not None:
                out[key] = " ".join(parts).strip()
            key, parts = name, [rest]
            if name == "Reason" and not _SUFFIX_TOKEN.fullmatch(rest):
                until = _reason_end(tokens, i + 1)
        elif key is not None:
            parts.append(tok)
    if key is not None:
        out[key] = " ".join(parts).strip()
    return out


def parse_reason(value: str) -> tuple[str, str]:
    """(reason text, user) from ``foo = bar [root@2026-11-24T10:00:00]``."""
    if value in _NULL or value == "None":
        return "", ""
    m = _REASON_SUFFIX.match(value)
    if m is None:
        return value.strip(), ""
    return m.group(1).strip(), m.group(2)


def _strip_symbols(text: str, flags: set[str]) -> str:
    while text and text[-1] in _SYMBOLS:
        flags.add(_SYMBOLS[text[-1]])
        text = text[:-1]
    return text


def parse_state(value: str, stats: ParseStats | None = None) -> tuple[BaseState, frozenset[str]]:
    """``IDLE+DRAIN+NOT_RESPONDING`` -> (IDLE, {DRAIN, NOT_RESPONDING}); unknown base -> UNKNOWN.

    Also reads the old style with a symbol on the base state, ``DOWN*+DRAIN`` (sinfo(1) NODE
    STATE CODES): (DOWN, {NOT_RESPONDING, DRAIN}).
    """
    flags: set[str] = set()
    text = value.strip().upper()
    base_text, *rest = text.split("+") if text else ("",)
    base_text = _strip_symbols(base_text, flags)
    flags.update(f for f in (_strip_symbols(r, flags) for r in rest) if f)
    try:
        base = BaseState(base_text)
    except ValueError:
        base = BaseState.UNKNOWN
        if stats is not None:
            stats.unknown_states[base_text or "(empty)"] += 1
    return base, frozenset(flags)


def _split_top(value: str) -> list[str]:
    """Split on commas outside parentheses: ``gpu:a:4(S:0,1),gpu:b:4`` -> two items."""
    items: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return [i.strip() for i in items if i.strip()]


def parse_gpus(value: str) -> int:
    """GPUs in a Gres/GresUsed value: ``gpu:8``, ``gpu:a100:8``, ``gpu:8(S:0-1)``, ``(null)``."""
    if value in _NULL:
        return 0
    total = 0
    for item in _split_top(value):
        spec = item.split("(", 1)[0]
        parts = spec.split(":")
        if parts[0] != "gpu":
            continue
        last = parts[-1] if len(parts) > 1 else "1"
        if last.isdigit():
            total += int(last)
        elif len(parts) == 2:
            total += 1  # "gpu:a100" without a count means one (gres.conf(5))
    return total


def parse_features(value: str) -> tuple[str, ...]:
    if value in _NULL:
        return ()
    return tuple(f for f in value.split(",") if f)


# A reason explains a node Slurm holds out: DRAIN, FAIL or a pending reboot, or a base state
# that is not schedulable (DOWN, FUTURE...). 24.11 keeps the last reason after RESUME or UNDRAIN
# while 22.05 and 26.05 clear it (docs/slurm-releases.md, "Reasons after RESUME").
_HOLDING_FLAGS = frozenset({"DRAIN", "FAIL", "REBOOT_REQUESTED", "REBOOT_ISSUED"})
_SCHEDULABLE = frozenset({BaseState.IDLE, BaseState.MIXED, BaseState.ALLOCATED,
                          BaseState.COMPLETING})


def live_reason(state: BaseState, flags: frozenset[str], reason: str,
                user: str) -> tuple[str, str]:
    """(reason, user) while the reason holds the node out, else empty: a leftover reason on a
    schedulable node reads the same on every release."""
    if state in _SCHEDULABLE and not flags & _HOLDING_FLAGS:
        return "", ""
    return reason, user


def parse_node(fields: dict[str, str], stats: ParseStats | None = None) -> SlurmNode:
    state, flags = parse_state(fields.get("State", ""), stats)
    reason, user = live_reason(state, flags, *parse_reason(fields.get("Reason", "")))
    avail = fields.get("AvailableFeatures", fields.get("Features", ""))
    return SlurmNode(
        name=fields["NodeName"],
        state=state,
        flags=flags,
        reason=reason,
        reason_user=user,
        available_features=parse_features(avail),
        active_features=parse_features(fields.get("ActiveFeatures", avail)),
        gres_gpus=parse_gpus(fields.get("Gres", "")),
        gres_used_gpus=parse_gpus(fields.get("GresUsed", "")),
    )


def parse_nodes(
    text: str,
    stats: ParseStats | None = None,
    cache: dict[str, SlurmNode] | None = None,
    *,
    evict: bool = True,
) -> dict[str, SlurmNode]:
    """All nodes of ``scontrol show node -o -d`` output, keyed by name.

    With ``cache`` (line -> node, kept by the caller between reads), a line identical to one
    of the previous read is not parsed again and yields the very same object. A node's line
    only changes when its state, load or memory changes, so at steady state almost every line
    hits: at 10,000 nodes this turns a ~0.5 s parse into a few milliseconds of lookups.
    A partial read passes ``evict=False``: it adds its lines without dropping the others'.
    """
    nodes: dict[str, SlurmNode] = {}
    seen: dict[str, SlurmNode] = {}
    for line in text.splitlines():
        if cache is not None:
            hit = cache.get(line)
            if hit is not None:
                nodes[hit.name] = seen[line] = hit
                continue
        if not line.strip():
            continue
        fields = split_fields(line)
        if not fields.get("NodeName"):
            if stats is not None:
                stats.skipped_lines += 1
            continue
        node = parse_node(fields, stats)
        nodes[node.name] = seen[line] = node
    if cache is not None:
        if evict:
            cache.clear()
        cache.update(seen)
    return nodes


def parse_boot_time(config_text: str) -> str:
    """``BOOT_TIME = 2026-11-24T13:23:21`` from ``scontrol show config``; empty if absent."""
    for line in config_text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "BOOT_TIME":
            return value.strip()
    return ""


def parse_version(text: str) -> tuple[int, int] | None:
    """(major, minor) from ``slurm 22.05.8`` (``scontrol --version``) or ``25.11.2``."""
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None
