"""JSON Schemas of syncd events, shipped in the package, and a helper that checks events.

The schemas in ``syncd/events/schema/`` are the published contract for consumers: one file
per event type for ``data`` (named after the type), ``cloudevent.json`` for the envelope and
``common.json`` for the node views both drift and action events carry. They are strict
(``additionalProperties: false``) so a field added by the daemon without a schema change
fails the tests instead of surprising a consumer.

``jsonschema`` is imported lazily: the daemon never validates on the hot path, tests and
consumers do.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from syncd.core.model import EventType

__all__ = ["EventInvalid", "event_problems", "schema_text", "validate_event"]

_BASE = "https://syncd.invalid/schema/events/"
ENVELOPE = "cloudevent.json"


class EventInvalid(ValueError):
    """An event that does not match its schema; ``problems`` lists every mismatch."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def schema_text(name: str) -> str:
    """The raw text of one schema file (``cloudevent.json``, ``<type>.json``, ``common.json``)."""
    return resources.files("syncd.events").joinpath("schema", name).read_text(encoding="utf-8")


def schema_names() -> list[str]:
    """Every schema file shipped in the package."""
    folder = resources.files("syncd.events").joinpath("schema")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))


@functools.cache
def _validators() -> dict[str, Any]:
    import jsonschema  # type: ignore[import-untyped]
    from referencing import Registry, Resource

    docs = {name: json.loads(schema_text(name)) for name in schema_names()}
    registry: Registry[Any] = Registry().with_resources(
        (_BASE + name, Resource.from_contents(doc)) for name, doc in docs.items()
    )
    cls = jsonschema.Draft202012Validator
    out: dict[str, Any] = {}
    for name, doc in docs.items():
        cls.check_schema(doc)
        out[name] = cls(doc, registry=registry)
    return out


def event_problems(event: Mapping[str, Any]) -> list[str]:
    """Every way ``event`` (a whole CloudEvent, as decoded JSON) misses its schemas."""
    validators = _validators()
    problems = [_say("", e) for e in validators[ENVELOPE].iter_errors(event)]
    event_type = event.get("type")
    if event_type in set(EventType) and isinstance(event.get("data"), dict):
        data_validator = validators[f"{event_type}.json"]
        problems += [_say("data", e) for e in data_validator.iter_errors(event["data"])]
    return sorted(problems)


def validate_event(event: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    """Decode (when given text) and check one event; returns it, raises EventInvalid."""
    decoded: Any = json.loads(event) if isinstance(event, str | bytes) else dict(event)
    if not isinstance(decoded, dict):
        raise EventInvalid(["(event): expected a JSON object"])
    problems = event_problems(decoded)
    if problems:
        raise EventInvalid(problems)
    return decoded


def _say(prefix: str, error: Any) -> str:
    path = ".".join(str(p) for p in [prefix, *error.absolute_path] if p != "")
    return f"{path or '(event)'}: {error.message}"
