"""``labelSelector``/``fieldSelector`` filters with the API server's error messages.

Field selectors support ``=``, ``==`` and ``!=`` on a per-resource list of fields; anything else
is a 400 "field label not supported" (recording 18).
https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncd.kube.podgpu import LabelSelector, SelectorError, parse_label_selector
from syncd.sim import errors
from syncd.sim.kinds import Kind

FieldReq = tuple[Callable[[dict[str, Any]], str], bool, str]  # getter, equal?, value


def parse_fields(kind: Kind, text: str) -> list[FieldReq]:
    out: list[FieldReq] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "!=" in part:
            name, value, equal = *part.split("!=", 1), False
        elif "==" in part:
            name, value, equal = *part.split("==", 1), True
        elif "=" in part:
            name, value, equal = *part.split("=", 1), True
        else:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        getter = kind.fields.get(name.strip())
        if getter is None:
            raise errors.bad_request(f"field label not supported: {name.strip()}")
        out.append((getter, equal, value.strip()))
    return out


@dataclass(frozen=True, slots=True)
class Filter:
    namespace: str | None
    labels: LabelSelector
    fields: tuple[FieldReq, ...]

    @property
    def everything(self) -> bool:
        return self.namespace is None and self.labels.empty and not self.fields

    @property
    def selects(self) -> bool:
        return not self.labels.empty or bool(self.fields)

    def matches(self, data: dict[str, Any]) -> bool:
        meta = data.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if not self.labels.empty and not self.labels.matches(meta.get("labels") or {}):
            return False
        return all((get(data) == value) == equal for get, equal, value in self.fields)


def make_filter(kind: Kind, namespace: str | None, labels: str, fields: str) -> Filter:
    try:
        label_sel = parse_label_selector(labels)
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc
    return Filter(namespace, label_sel, tuple(parse_fields(kind, fields)))
