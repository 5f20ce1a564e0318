"""Allow-lists for every piece of text that can end up in a Slurm command.

Slurm node names, features and drain reasons reach ``scontrol`` as argv elements, and some of
them come from Kubernetes labels that anyone with node-patch rights can set. An allow-list is
the only safe filter: a value that fails it is skipped and counted, never escaped and used.
The character sets are narrower than what Slurm accepts on purpose (slurm.conf(5): NodeName,
Features; a ``,`` splits features and ``&|[]*()!`` are constraint operators in ``--constraint``).
"""

from __future__ import annotations

import re

MAX_NODE_NAME = 64
MAX_FEATURE = 64
MAX_REASON = 200

_NODE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NODE_NAME - 1}}}")
_FEATURE = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_FEATURE - 1}}}")
_REASON = re.compile(rf"[A-Za-z0-9 _.,:/@+()#%-]{{1,{MAX_REASON}}}")


def is_node_name(value: str) -> bool:
    return _NODE_NAME.fullmatch(value) is not None


def is_feature(value: str) -> bool:
    return _FEATURE.fullmatch(value) is not None


def is_reason(value: str) -> bool:
    return _REASON.fullmatch(value) is not None and value.strip() == value


def clean_reason_text(value: str, *, limit: int = 80) -> str:
    """Reduce free text from Kubernetes (taint keys, resource names) to reason-safe characters."""
    kept = "".join(ch if _REASON.fullmatch(ch) else "_" for ch in value[:limit])
    return kept.strip() or "_"


def describe_node_name(value: str) -> str:
    """Why ``value`` is not a usable Slurm node name (for the skip log line)."""
    if not value:
        return "empty"
    if len(value) > MAX_NODE_NAME:
        return f"longer than {MAX_NODE_NAME} characters"
    return "contains characters outside [A-Za-z0-9_.-] or starts with a symbol"
