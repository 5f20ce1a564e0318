"""How many GPUs a pod holds on its node, by the scheduler's own rules.

A pod's effective request for a resource is what kube-scheduler reserves for it
(https://kubernetes.io/docs/concepts/workloads/pods/init-containers/#resource-sharing-within-containers
and https://kubernetes.io/docs/concepts/scheduling-eviction/pod-overhead/):

    max(sum over app containers (+ restartable "sidecar" init containers),
        max over init containers (each plus the sidecars started before it)) + pod overhead

Extended resources cannot be overcommitted, so a container that sets only a limit gets the same
request (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#extended-resources).
Only pods bound to a node (``spec.nodeName``) and not in a terminal phase hold anything
(https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-phase); Slurm's own pods
(slurmd under Slinky) are matched by a label selector and are not foreign usage.

This module is pure: it reads raw API dicts and returns counts plus warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.kube.quantity import QuantityError, parse_count

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


class SelectorError(ValueError):
    """A label selector that does not parse (the message follows the API server's wording)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key, "")
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        try:
            number, bound = int(value), int(next(iter(self.values)))
        except ValueError:
            return False
        return has and (number > bound if self.op == ">" else number < bound)


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """Parsed ``labelSelector`` text; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req.matches(labels) for req in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")
_OPS = {"=", "==", "!=", "!", "(", ")", ",", ">", "<"}
# The API server's rules for label keys and values (k8s.io/apimachinery validation;
# https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set):
# a selector the server would refuse is refused here too, never read some other way.
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _check_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (key.count("/") == 1 and not (prefix and len(prefix) <= 253
                                                       and _DNS.fullmatch(prefix))):
        raise SelectorError(f"invalid label key {key!r}: the prefix must be a DNS subdomain")
    if not (len(name) <= 63 and _NAME.fullmatch(name)):
        raise SelectorError(f"invalid label key {key!r}: the name must be 1-63 characters, "
                            "alphanumeric, '-', '_' or '.', starting and ending alphanumeric")
    return key


def _check_value(value: str) -> str:
    if value and not (len(value) <= 63 and _NAME.fullmatch(value)):
        raise SelectorError(f"invalid label value {value!r}: at most 63 characters, "
                            "alphanumeric, '-', '_' or '.', starting and ending alphanumeric")
    return value


def _value_set(j: int, at: Callable[[int], str]) -> tuple[frozenset[str], int]:
    """The values of ``in (...)`` from token ``j`` (after the parenthesis) and the index after
    the closing one. Empty members follow apimachinery's parseIdentifiersList exactly, quirks
    included: "()", "(,a)", "(a,)" and "(a,,b)" hold the empty value, "(,,)" is refused."""
    if at(j) == ")":
        return frozenset({""}), j + 1
    values: set[str] = set()
    while True:
        tok = at(j)
        j += 1
        if tok == ",":
            if not values:
                values.add("")  # "(,"
            if at(j) == ")":
                values.add("")  # ",)"
                return frozenset(values), j + 1
            if at(j) == ",":
                j += 1
                values.add("")  # ",,"
        elif tok and tok not in _OPS:
            values.add(_check_value(tok))
            if at(j) == ")":
                return frozenset(values), j + 1
            if at(j) != ",":
                raise SelectorError(f"unable to parse requirement: found '{at(j)}', "
                                    "expected: ',' or ')'")
        else:
            raise SelectorError(f"unable to parse requirement: found '{tok}', expected: "
                                "',', or identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the label selector grammar of
    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors,
    refusing what the API server refuses (SelectorError)."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos:].strip() == "":
                break
            raise SelectorError(f"unable to parse requirement: unexpected {text[pos:]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    reqs: list[Requirement] = []
    i = 0

    def at(j: int) -> str:
        return tokens[j] if j < len(tokens) else ""

    def ident(j: int, what: str = "identifier") -> str:
        if j >= len(tokens) or tokens[j] in _OPS:
            raise SelectorError(f"unable to parse requirement: found '{at(j)}', expected: {what}")
        return tokens[j]

    while i < len(tokens):
        if tokens[i] == "!":
            reqs.append(Requirement(_check_key(ident(i + 1)), "!"))
            i += 2
        else:
            key = _check_key(ident(i))
            nxt = at(i + 1) or ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif nxt in ("=", "==", "!=", ">", "<"):
                if at(i + 2) in ("", ","):
                    value, i = "", i + 2  # "key=" selects the empty value
                else:
                    value, i = ident(i + 2), i + 3
                if nxt in (">", "<") and not re.fullmatch(r"[+-]?[0-9]+", value):
                    raise SelectorError(f"for '>' and '<' the value must be an integer, "
                                        f"got {value!r}")
                op = "=" if nxt == "==" else nxt
                reqs.append(Requirement(key, op, frozenset({_check_value(value)})))
            elif nxt in ("in", "notin"):
                if at(i + 2) != "(":
                    raise SelectorError("unable to parse requirement: expected '('")
                values, i = _value_set(i + 3, at)
                reqs.append(Requirement(key, nxt, values))
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{nxt}', expected: "
                    "'in', 'notin', '=', '==', '!=', 'gt', 'lt'"
                )
        if i < len(tokens):
            if tokens[i] != ",":
                raise SelectorError(
                    f"unable to parse requirement: found '{tokens[i]}', expected: ','")
            if i + 1 >= len(tokens):
                raise SelectorError("unable to parse requirement: found '', expected: "
                                    "identifier after ','")
            i += 1
    return LabelSelector(tuple(reqs))


def _container_counts(
    container: Mapping[str, Any], resources: Sequence[str], warnings: list[str]
) -> dict[str, int]:
    res = container.get("resources") or {}
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    out: dict[str, int] = {}
    for name in resources:
        raw = requests.get(name, limits.get(name))  # requests default to limits
        if raw is None:
            continue
        try:
            out[name] = parse_count(raw)
        except QuantityError as exc:
            warnings.append(f"container {container.get('name', '?')}: {name}: {exc}")
    return out


def pod_request(
    pod: Mapping[str, Any], resources: Sequence[str]
) -> tuple[dict[str, int], list[str]]:
    """The pod's effective request per resource (zeros omitted) and any bogus-value warnings."""
    spec = pod.get("spec") or {}
    warnings: list[str] = []
    total: dict[str, int] = {}
    for container in spec.get("containers") or ():
        for name, n in _container_counts(container, resources, warnings).items():
            total[name] = total.get(name, 0) + n
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for container in spec.get("initContainers") or ():
        counts = _container_counts(container, resources, warnings)
        if container.get("restartPolicy") == "Always":  # sidecar: runs beside the app containers
            for name, n in counts.items():
                sidecars[name] = sidecars.get(name, 0) + n
            counts = dict(sidecars)
        else:
            counts = {k: counts.get(k, 0) + sidecars.get(k, 0) for k in set(counts) | set(sidecars)}
        for name, n in counts.items():
            init_max[name] = max(init_max.get(name, 0), n)
    for name, n in sidecars.items():
        total[name] = total.get(name, 0) + n
    for name, n in init_max.items():
        total[name] = max(total.get(name, 0), n)
    overhead = spec.get("overhead") or {}
    for name in resources:
        if name in overhead:
            try:
                total[name] = total.get(name, 0) + parse_count(overhead[name])
            except QuantityError as exc:
                warnings.append(f"overhead: {name}: {exc}")
    return {k: v for k, v in total.items() if v > 0}, warnings


@dataclass(frozen=True, slots=True)
class PodHold:
    """GPUs one counted pod holds on ``node`` (only non-zero resources)."""

    node: str
    held: tuple[tuple[str, int], ...]


def pod_hold(
    pod: Mapping[str, Any], resources: Sequence[str], slurm_pods: LabelSelector
) -> tuple[PodHold | None, list[str]]:
    """What the pod holds, or None when it holds nothing that counts as foreign GPU usage."""
    spec = pod.get("spec") or {}
    node = spec.get("nodeName") or ""
    if not node:
        return None, []
    if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return None, []
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if not slurm_pods.empty and slurm_pods.matches(labels):
        return None, []
    counts, warnings = pod_request(pod, resources)
    if not counts:
        return None, warnings
    return PodHold(node, tuple(sorted(counts.items()))), warnings


def node_counts(
    values: Mapping[str, Any] | None, resources: Iterable[str]
) -> tuple[dict[str, int], list[str]]:
    """Node ``status.capacity``/``allocatable`` for the GPU resources (absent ones omitted)."""
    out: dict[str, int] = {}
    warnings: list[str] = []
    for name in resources:
        if values and name in values:
            try:
                out[name] = parse_count(values[name])
            except QuantityError as exc:
                warnings.append(f"{name}: {exc}")
    return out, warnings
