"""The Slurm port's errors, defined beside the port (syncd/core/ports.py) so that every
backend raises the same types and the engine can tell "retry later" from "never do that again"
without knowing which backend is in use."""

from __future__ import annotations

__all__ = ["InvalidState", "PermissionDenied", "Refused", "SlurmError", "Timeout",
           "UnknownNode", "Unreachable"]


class SlurmError(Exception):
    """Any failure talking to Slurm. ``transient`` errors are worth retrying."""

    transient = False


class UnknownNode(SlurmError):
    """slurmctld has no node of that name."""


class InvalidState(SlurmError):
    """The requested state change is not allowed from the node's current state."""


class PermissionDenied(SlurmError):
    """slurmctld refused us (not root/SlurmUser, or not an operator)."""


class Unreachable(SlurmError):
    """slurmctld did not answer: stopped, restarting, or the network is down."""

    transient = True


class Timeout(SlurmError):
    """A command or RPC did not finish within the per-call timeout."""

    transient = True


class Refused(SlurmError):
    """Input failed syncd's allow-list (syncd.core.validate); nothing was executed."""
