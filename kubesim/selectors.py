"""``labelSelector``/``fieldSelector`` of a list or watch, as one filter with the server's errors.

Parsing is kubesim's own (:mod:`kubesim.labels`, :mod:`kubesim.fields`); here the field names are
checked against the kind's supported fields (anything else is 400 "field label not supported",
recording 18) and the filter is applied to stored objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubesim import errors
from kubesim.fields import parse_field_selector
from kubesim.kinds import Kind
from kubesim.labels import LabelSelector, SelectorError, parse_label_selector

FieldReq = tuple[Callable[[dict[str, Any]], str], bool, str]  # getter, equal?, value


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
        terms = parse_field_selector(fields)
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc
    reqs: list[FieldReq] = []
    for term in terms:
        getter = kind.fields.get(term.field)
        if getter is None:
            raise errors.bad_request(f"field label not supported: {term.field}")
        reqs.append((getter, term.equal, term.value))
    return Filter(namespace, label_sel, tuple(reqs))
