"""Kubernetes node name -> Slurm node name, never guessed.

Sites name the two worlds differently (``gpu-node-017.dc1`` vs ``gpu017``), so the mapping is
configurable: the same name, the value of a label or annotation, or a regular expression whose
groups fill a template. Whatever comes out must pass :func:`syncd.core.validate.is_node_name`:
labels are writable by anyone with node-patch rights, and a value such as ``gpu1 State=DOWN`` must
never reach ``scontrol``. A node that maps to nothing usable is a *miss*; two nodes that map to
the same Slurm name are a *collision*, and both are left out rather than picking one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from syncd.core.validate import describe_node_name, is_node_name

_FIELD = re.compile(r"\{(\w+)\}")


class NameRule(Protocol):
    """The shape of ``syncd.settings.kube.NameMapping`` (the core cannot import settings)."""

    @property
    def mode(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def pattern(self) -> str: ...
    @property
    def template(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Mapped:
    """The Slurm name of one Kubernetes node, or why there is none (``problem``)."""

    slurm_name: str | None
    problem: str = ""


class NameMapper:
    """Applies one mapping rule; construct once, call per node change."""

    def __init__(self, rule: NameRule) -> None:
        self.mode = rule.mode
        self.key = rule.key
        self.template = rule.template
        self._pattern = re.compile(rule.pattern) if rule.mode == "regex" else None

    def map(
        self, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]
    ) -> Mapped:
        if self.mode == "same":
            candidate = name
        elif self.mode in ("label", "annotation"):
            source = labels if self.mode == "label" else annotations
            value = source.get(self.key)
            if value is None:
                return Mapped(None, f"node {name}: no {self.mode} {self.key}")
            candidate = value
        elif self._pattern is not None:
            match = self._pattern.fullmatch(name)
            if match is None:
                return Mapped(None, f"node {name}: does not match {self._pattern.pattern!r}")
            try:
                candidate = _FIELD.sub(lambda m: _group(match, m.group(1)), self.template)
            except (IndexError, KeyError):
                problem = f"node {name}: template {self.template!r} names a missing group"
                return Mapped(None, problem)
        else:
            return Mapped(None, f"node {name}: unknown name mapping mode {self.mode!r}")
        if not is_node_name(candidate):
            shown = candidate.encode("unicode_escape").decode("ascii")[:80]
            why = describe_node_name(candidate)
            return Mapped(None, f"node {name}: Slurm name {shown!r} rejected: {why}")
        return Mapped(candidate)


def _group(match: re.Match[str], ref: str) -> str:
    value = match.group(int(ref)) if ref.isdigit() else match.group(ref)
    if value is None:
        raise KeyError(ref)
    return value


def collision_problem(slurm_name: str, kube_names: Iterable[str]) -> str:
    return f"Slurm name {slurm_name} claimed by several nodes: {', '.join(sorted(kube_names))}"
