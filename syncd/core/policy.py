"""The knobs of the reconcile decision, as the planner sees them.

These dataclasses double as the schema of the ``policy`` section of the config file: the
loader in :mod:`syncd.config` walks their fields, so a default changed here is the default
documented in ``config/syncd.example.yaml`` (a test keeps the two in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

#: Marks a float field as a duration for the config loader.
DURATION = "duration"
#: Seconds, written in the config file as ``30s``, ``5m``, ``1h``, ``250ms`` or a number.
Seconds = Annotated[float, DURATION]


@dataclass(frozen=True, slots=True)
class GpuResource:
    """A Kubernetes extended resource counted as GPUs, and the Slurm feature that carries it.

    Resources that share a feature template are summed into one feature.
    """

    name: str
    feature_template: str = "gpu_avail_{n}"


def default_gpu_resources() -> tuple[GpuResource, ...]:
    return (GpuResource("nvidia.com/gpu"), GpuResource("amd.com/gpu"))


@dataclass(frozen=True, slots=True)
class Causes:
    """Which Kubernetes conditions drain a Slurm node. Each can be switched off.

    ``no_kubernetes_node`` is off by default: a managed Slurm node that nothing in Kubernetes
    maps to is as often syncd's own blind spot (a mapping that does not fit the site, a slurmd
    pod not scheduled yet, a Slurm node that joined a moment ago) as a missing machine, and the
    breaker cannot tell the two apart when they come one by one. A machine that was in
    Kubernetes and left is the ``gone`` cause. With it off, syncd leaves such a node exactly
    as it is: no drain, and no resume of a drain of its own either (docs/slinky.md).
    """

    not_ready: bool = True
    gone: bool = True
    cordoned: bool = True
    taints: bool = True
    gpu_loss: bool = True
    no_kubernetes_node: bool = False


@dataclass(frozen=True, slots=True)
class DownRule:
    """Set the node DOWN (jobs fail and requeue at once) instead of only draining it, once
    the cause has lasted ``grace``."""

    enabled: bool = False
    grace: Seconds = 15.0


def _down_not_ready() -> DownRule:
    return DownRule(enabled=False, grace=300.0)


@dataclass(frozen=True, slots=True)
class DownOn:
    """Where the machine is gone, DOWN rather than DRAIN. ``deleted``: the Node object is gone
    (Karpenter, ``kubectl delete node``); one re-created within the grace (a kubelet that
    re-registers) never takes the Slurm node down. ``not_ready``: NotReady for the grace."""

    deleted: DownRule = field(default_factory=DownRule)
    not_ready: DownRule = field(default_factory=_down_not_ready)


@dataclass(frozen=True, slots=True)
class ConditionCause:
    """A Kubernetes node condition that drains (node-problem-detector, GPU health): when the
    condition ``type`` has ``status`` for ``drain_after``. ``cause`` names it in the reason."""

    type: str
    status: str = "True"
    cause: str = ""

    def words(self) -> str:
        return self.cause or self.type


@dataclass(frozen=True, slots=True)
class Flap:
    """More than ``max_drains`` drains within ``window`` marks a node as flapping."""

    max_drains: int = 3
    window: Seconds = 600.0
    backoff_base: Seconds = 120.0
    backoff_max: Seconds = 3600.0


@dataclass(frozen=True, slots=True)
class Breaker:
    """Withholds drains when too much would be drained within ``window``.

    ``max_drain_percent`` is of all Slurm nodes syncd manages; ``max_drain_gpus`` counts the
    Slurm GPUs (Gres) of the drained nodes; ``min_nodes`` keeps a small cluster (where the
    percentage rounds down to zero) able to drain at all. A tripped breaker stays open
    until reset by an operator (``syncd breaker reset``), or after ``auto_reset_after`` if
    that is above 0.
    """

    enabled: bool = True
    max_drain_percent: float = 20.0
    min_nodes: int = 1
    max_drain_gpus: int = 512
    window: Seconds = 600.0
    auto_reset_after: Seconds = 0.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """How Kubernetes GPU usage is pushed into Slurm (see docs/capacity.md)."""

    features: bool = True
    hold_jobs: bool = True
    #: A Kubernetes GPU count above this (per resource, per node) is refused as input: no
    #: node has it, and a bogus value (``1e9``) must never become a Slurm feature. Whole-GPU
    #: resources are also refused above the node's configured Slurm GRES.
    max_gpus_per_node: int = 256


@dataclass(frozen=True, slots=True)
class WriteBackoff:
    """After a failed Slurm write, the node's next write waits ``base``, doubling per further
    failure up to ``max``; a success starts again from nothing."""

    base: Seconds = 5.0
    max: Seconds = 300.0


@dataclass(frozen=True, slots=True)
class Mirror:
    """Slurm -> Kubernetes (opt-in): a managed node that Slurm has out of service by someone
    other than syncd (an operator's drain, NHC, slurmctld's own DOWN or NOT_RESPONDING) gets
    the Node condition ``condition`` (status True) and, with ``taint``, a ``NoSchedule`` taint
    with ``taint_key``; both are cleared (condition False, taint removed) when Slurm clears the
    state. syncd touches no other condition and no other taint. A node only NOT_RESPONDING
    (not DOWN, not drained) is mirrored once it has been so for ``not_responding_after``:
    slurmctld shows every resumed node so for about a second (docs/runbook.md, the mirror)."""

    enabled: bool = False
    condition: str = "SlurmNodeUnavailable"
    taint: bool = False
    taint_key: str = "syncd.io/slurm-unavailable"
    not_responding_after: Seconds = 10.0


@dataclass(frozen=True, slots=True)
class Policy:
    drain_after: Seconds = 30.0
    resume_after: Seconds = 60.0
    reason_prefix: str = "syncd:"
    ownership_key: str = ""
    drain_taints: tuple[str, ...] = (
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/out-of-service",
    )
    managed_nodes: str = ".*"
    batch_size: int = 250
    gpu_resources: tuple[GpuResource, ...] = field(default_factory=default_gpu_resources)
    causes: Causes = field(default_factory=Causes)
    flap: Flap = field(default_factory=Flap)
    breaker: Breaker = field(default_factory=Breaker)
    capacity: Capacity = field(default_factory=Capacity)
    write_backoff: WriteBackoff = field(default_factory=WriteBackoff)
    down_on: DownOn = field(default_factory=DownOn)
    conditions: tuple[ConditionCause, ...] = ()
    mirror: Mirror = field(default_factory=Mirror)
    #: Who turns a cordon into a Slurm drain: ``syncd`` (``causes.cordoned``), or
    #: ``slurm-operator``, whose NodeSet controller drains and undrains its own on a cordon
    #: (docs/slinky.md): syncd then neither drains for a cordon nor resumes its own drain
    #: while the Kubernetes node stays cordoned.
    cordon: str = "syncd"


#: The values of ``Policy.cordon``.
CORDON_OWNERS = ("syncd", "slurm-operator")


def template_pattern(template: str) -> re.Pattern[str]:
    """The regular expression matching every feature a template can produce."""
    before, _, after = template.partition("{n}")
    return re.compile(re.escape(before) + r"\d+" + re.escape(after))


def template_problems(template: str) -> list[str]:
    """Why a feature template is unusable, or an empty list."""
    from syncd.core.validate import is_feature

    if template.count("{n}") != 1:
        return ["must contain {n} exactly once"]
    if not any(not c.isdigit() for c in template.replace("{n}", "")):
        # "{n}" alone would own every all-digit feature an operator set (a year, a rack).
        return ["must contain a literal part with a non-digit character, such as gpu_avail_{n}"]
    sample = template.replace("{n}", "8")
    if not is_feature(sample):
        return [f"produces {sample!r}, which is not a valid Slurm feature"]
    return []
