"""Maps Slurm's error texts to the port's typed errors (syncd.core.errors).

``scontrol``, ``squeue``, ``sbatch`` and ``scancel`` report failures only as text on stderr
with exit code 1; :func:`classify` maps the texts measured on 22.05.8 (docs/facts/slurm.md §3)
and the RPC messages pyslurm raises on 25.11 (docs/facts/pyslurm.md §2) to these classes.
"""

from __future__ import annotations

from syncd.core.errors import (
    InvalidState,
    PermissionDenied,
    Refused,
    SlurmError,
    Timeout,
    UnknownNode,
    Unreachable,
)

__all__ = ["InvalidState", "PermissionDenied", "Refused", "SlurmError", "Timeout",
           "UnknownNode", "Unreachable", "classify", "from_text"]

# Ordered: the first matching fragment wins. Texts are lower-cased before matching.
_PATTERNS: tuple[tuple[str, type[SlurmError]], ...] = (
    ("unable to contact slurm controller", Unreachable),
    ("connection refused", Unreachable),
    ("zero bytes were transmitted or received", Unreachable),
    ("socket timed out", Timeout),
    ("invalid node name specified", UnknownNode),
    ("does not exist", UnknownNode),
    ("not found", UnknownNode),
    ("invalid node state", InvalidState),
    ("invalid input: state=", InvalidState),
    ("valid states are", InvalidState),
    ("invalid user id", PermissionDenied),
    ("access/permission denied", PermissionDenied),
    ("permission denied", PermissionDenied),
    ("only slurm operators", PermissionDenied),
)


def classify(text: str) -> type[SlurmError]:
    """The error class for a Slurm error message; the base class when nothing matches."""
    low = text.lower()
    for fragment, cls in _PATTERNS:
        if fragment in low:
            return cls
    return SlurmError


def from_text(text: str, *, command: str) -> SlurmError:
    """An error instance carrying the command name and Slurm's own (first line of) text."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
    return classify(text)(f"{command}: {first[:500]}")
