"""Load the YAML config (plus ``SYNCD_*`` overrides) into typed, frozen settings.

The schema is the dataclasses themselves: every field has a type and a default, so the loader
walks them, converts values, and reports each problem with its key path. Unknown keys are
errors, never ignored: a misspelled ``drain_aftr`` must not silently leave a safety at its default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from syncd.core.policy import DURATION, Policy, template_problems
from syncd.settings import Settings

__all__ = ["ConfigError", "load", "load_file", "parse_duration"]

ENV_PREFIX = "SYNCD_"
#: Variables of the CLI that share the prefix but are not config keys.
CLI_VARIABLES = frozenset({"SYNCD_CONFIG", "SYNCD_URL", "SYNCD_TOKEN_FILE"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


_BAD: Any = object()  # a value that failed conversion; its problem is already recorded


class ConfigError(Exception):
    """Every problem found in a config, one ``key.path: message`` per entry."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_duration(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 250ms")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip().startswith("-"):
        raise ValueError(f"{value!r} is negative; durations are zero or more")
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration such as 30s, 5m or 250ms")
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{value!r} must be a finite duration of zero or more")
    return seconds


def load_file(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read a YAML file; raises ConfigError listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {_one_line(str(exc))}"]) from None
    return load(raw, os.environ if env is None else env)


def load(raw: object, env: Mapping[str, str] | None = None) -> Settings:
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping of sections"])
    merged = _apply_env(raw, env or {}, problems)
    settings = _build(Settings, merged, "", problems)
    if isinstance(settings, Settings):
        problems.extend(_semantic(settings))
    if problems:
        raise ConfigError(problems)
    assert isinstance(settings, Settings)
    return settings


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """``SYNCD_POLICY__DRAIN_AFTER=10s`` sets ``policy.drain_after``; values are YAML scalars."""
    merged: dict[str, Any] = _deep_copy(raw)
    for key, value in sorted(env.items()):
        if not key.startswith(ENV_PREFIX) or key in CLI_VARIABLES:
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX):].split("__")]
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"{key}: {'.'.join(path)} is not a section")
                break
            node = child
        else:
            node[path[-1]] = parsed
    return merged


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _build(cls: type[Any], raw: object, path: str, problems: list[str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{path or '(top level)'}: expected a mapping, got {_kind(raw)}")
        return cls()
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = _closest(str(key), fields)
            hint = f" (did you mean {close!r}?)" if close else ""
            problems.append(f"{where}: unknown key{hint}")
            continue
        converted = _convert(hints[key], value, where, problems)
        if converted is not _BAD:
            kwargs[key] = converted
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        problems.append(f"{path or '(top level)'}: {exc}")
        return cls()


def _convert(hint: Any, value: object, where: str, problems: list[str]) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated and DURATION in hint.__metadata__:
        try:
            return parse_duration(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            return _BAD
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, problems)  # type: ignore[arg-type]
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where, problems)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {_kind(value)}")
            return _BAD
        items = [_convert(item, v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(i is _BAD for i in items) else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping, got {_kind(value)}")
            return _BAD
        vt = typing.get_args(hint)[1]
        out = {str(k): _convert(vt, v, f"{where}.{k}", problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in out.values()) else out
    if hint is bool:
        if isinstance(value, bool):
            return value
        problems.append(f"{where}: expected true or false, got {_kind(value)}")
        return _BAD
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.append(f"{where}: expected a whole number, got {_kind(value)}")
        return _BAD
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        problems.append(f"{where}: expected a number, got {_kind(value)}")
        return _BAD
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        problems.append(f"{where}: expected text, got {_kind(value)}")
        return _BAD
    raise TypeError(f"unsupported config type {hint!r} at {where}")


def _semantic(s: Settings) -> list[str]:
    """Checks that span a value's meaning, not just its type."""
    from syncd.core.validate import is_reason
    from syncd.kube.podgpu import SelectorError, parse_label_selector

    problems: list[str] = []
    p: Policy = s.policy
    for i, res in enumerate(p.gpu_resources):
        for msg in template_problems(res.feature_template):
            problems.append(f"policy.gpu_resources[{i}].feature_template: {msg}")
    if not is_reason(f"{p.reason_prefix} x"):
        problems.append("policy.reason_prefix: must be short and use only reason-safe characters")
    try:
        re.compile(p.managed_nodes)
    except re.error as exc:
        problems.append(f"policy.managed_nodes: not a regular expression: {exc}")
    try:
        parse_label_selector(s.kubernetes.slurm_pod_selector)
    except SelectorError as exc:
        problems.append(f"kubernetes.slurm_pod_selector: not a label selector the API server "
                        f"accepts: {exc}")
    positive = {
        "policy.batch_size": p.batch_size,
        "policy.flap.max_drains": p.flap.max_drains,
    }
    for key, number in positive.items():
        if number < 1:
            problems.append(f"{key}: must be 1 or more")
    if p.batch_size > 1000:
        problems.append("policy.batch_size: at most 1000 nodes per Slurm call")
    if not 0 <= p.breaker.max_drain_percent <= 100:
        problems.append("policy.breaker.max_drain_percent: must be between 0 and 100")
    if p.breaker.max_drain_gpus < 0:
        problems.append("policy.breaker.max_drain_gpus: must be 0 or more")
    for i, c in enumerate(p.conditions):
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,62}", c.type):
            problems.append(f"policy.conditions[{i}].type: must be a condition type such as "
                            "KernelDeadlock")
        if c.status not in ("True", "False", "Unknown"):
            problems.append(f"policy.conditions[{i}].status: must be True, False or Unknown")
        if c.type == "Ready":
            problems.append(f"policy.conditions[{i}].type: Ready is policy.causes.not_ready")
        if not is_reason(f"{p.reason_prefix} k8s condition {c.words()}"):
            problems.append(f"policy.conditions[{i}].cause: must use reason-safe characters")
    if p.capacity.max_gpus_per_node < 1:
        problems.append("policy.capacity.max_gpus_per_node: must be 1 or more")
    problems.extend(_mirror_problems(p))
    problems.extend(s.problems())
    return problems


#: Conditions the kubelet owns and rewrites (https://kubernetes.io/docs/reference/node/node-status/#condition).
_KUBELET_CONDITIONS = frozenset({"Ready", "MemoryPressure", "DiskPressure", "PIDPressure",
                                 "NetworkUnavailable"})
#: A taint key is a qualified name: an optional DNS subdomain prefix and a name of at most 63
#: characters (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
_TAINT_KEY = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def _mirror_problems(p: Policy) -> list[str]:
    """The mirror's marks must be syncd's alone, and never a cause: that is what keeps a mark
    from draining the node it marks (a loop)."""
    m = p.mirror
    out: list[str] = []
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]{0,62}", m.condition):
        out.append("policy.mirror.condition: must be a CamelCase condition type such as "
                   "SlurmNodeUnavailable")
    elif m.condition in _KUBELET_CONDITIONS:
        out.append(f"policy.mirror.condition: {m.condition} is the kubelet's condition")
    if m.condition in {c.type for c in p.conditions}:
        out.append(f"policy.mirror.condition: {m.condition} is also in policy.conditions; "
                   "syncd would drain nodes because of its own mark")
    prefix = m.taint_key.rpartition("/")[0]
    if not _TAINT_KEY.fullmatch(m.taint_key) or len(prefix) > 253:
        out.append("policy.mirror.taint_key: must be a taint key such as "
                   "syncd.io/slurm-unavailable")
    elif prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io") or prefix == "k8s.io" \
            or prefix.endswith(".k8s.io"):
        out.append("policy.mirror.taint_key: keys under kubernetes.io and k8s.io are reserved "
                   "for Kubernetes")
    if m.taint_key in p.drain_taints:
        out.append(f"policy.mirror.taint_key: {m.taint_key} is also in policy.drain_taints; "
                   "syncd would drain nodes because of its own taint")
    return out


def _closest(key: str, fields: Mapping[str, object]) -> str | None:
    import difflib

    hits = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.75)
    return hits[0] if hits else None


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), f"{value!r}"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
