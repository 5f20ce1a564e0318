"""The typed payloads of syncd/core/events.py against the published JSON Schemas."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, cast

import pytest

from syncd.core.events import (
    ActionData,
    ActionFailedData,
    Actor,
    BreakerData,
    BreakerState,
    DriftData,
    MirroredData,
    MirrorOutcome,
    MirrorState,
    Outcome,
    OverflowCause,
    OverflowData,
    Payload,
    SkippedData,
    TaintChange,
)
from syncd.core.model import ActionKind, EventType, NodeCondition
from syncd.events import EventInvalid, validate_event
from syncd.events.envelope import encode, envelope, source_uri
from syncd.events.schemas import schema_text
from tests.events.helpers import every_type, kube, slurm


def action(cls: type[ActionData] = ActionData, **changes: Any) -> ActionData:
    fields: dict[str, Any] = dict(
        action=ActionKind.DRAIN, why="not ready for 30s", reason="syncd: not ready",
        features=(), hold_gpus=0, hostlist="gpu-01", outcome=Outcome.OK, error="",
        kubernetes=kube("gpu-01"), slurm=slurm("gpu-01"), actor=Actor.PLANNER,
    )
    return cls(**{**fields, **changes})


def samples() -> list[tuple[Payload, str]]:
    """One payload of every type (several shapes where the schema allows them)."""
    return [
        (DriftData(kube("gpu-01", ready=False), slurm("gpu-01"), ("not_ready",), "NotReady"),
         "gpu-01"),
        (DriftData(None, None, (), "slurmctld restarted", boot_time="2025-01-01T00:00:00"), ""),
        (DriftData(None, None, ("removed",), "gone"), "gpu-01"),
        (action(), "gpu-01"),
        (action(ActionFailedData, outcome=Outcome.FAILED, error="timeout",
                action=ActionKind.SET_FEATURES, features=("gpu_avail_4",), kubernetes=None,
                actor=Actor.OPERATOR), "gpu-01"),
        (BreakerData(BreakerState.OPEN, "30% drains", ("gpu-01", "gpu-02")), ""),
        (SkippedData("bad label", "x", "label a/b"), "gpu-01"),
        (OverflowData("redis", 3, "spool bound"), ""),
        (MirroredData("k8s-gpu-01", MirrorState.UNAVAILABLE, "drained by root",
                      NodeCondition("SlurmNodeUnavailable", "True", "SlurmDrain", "root: fan"),
                      TaintChange("syncd.io/slurm-unavailable", True), MirrorOutcome.OK, "",
                      slurm("gpu-01")), "gpu-01"),
        (MirroredData("k8s-gpu-01", MirrorState.AVAILABLE, "resumed", None, None,
                      MirrorOutcome.CONFLICT, "409", None), "gpu-01"),
        (action(requested_by="uid 0 via socket", actor=Actor.OPERATOR), "gpu-01"),
        (OverflowData("mqtt", 5, "memory", cause=OverflowCause.MEMORY_BUFFER,
                      first_sequence=10, last_sequence=14, first_time="2025-01-01T00:00:00.000Z",
                      last_time="2025-01-01T00:00:01.000Z"), ""),
    ]


def wrapped(payload: Payload, subject: str) -> dict[str, Any]:
    event = payload.event(subject)
    body: dict[str, Any] = json.loads(encode(envelope(
        event, source=source_uri("c", "i"), sequence=1, timestamp=0.0)))
    return body


@pytest.mark.parametrize(("payload", "subject"), samples(),
                         ids=lambda v: type(v).__name__ if isinstance(v, Payload) else None)
def test_every_payload_validates_against_its_schema(payload: Payload, subject: str) -> None:
    body = wrapped(payload, subject)
    assert body["type"] == payload.TYPE
    validate_event(body)


def test_there_is_a_payload_class_for_every_type_with_the_schema_fields() -> None:
    classes = {type(p).TYPE: p for p, _ in samples()}
    assert set(classes) == set(EventType)
    for event_type, payload in classes.items():
        schema = json.loads(schema_text(f"{event_type}.json"))
        fields = dataclasses.fields(cast(Any, payload))
        assert {f.name for f in fields} == set(schema["properties"]), event_type
        required = {f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING}
        # Every required schema field is a required constructor argument, except the
        # breaker's ``withheld``, which defaults to no nodes.
        assert set(schema["required"]) - {"withheld"} <= required, event_type


def test_mirrored_payload_renders_as_the_mirror_wrote_it() -> None:
    today = every_type("gpu-01")[-1]
    assert today.type == EventType.MIRRORED
    typed = MirroredData(
        "gpu-01", MirrorState.UNAVAILABLE, "drained by root",
        NodeCondition("SlurmNodeUnavailable", "True", "SlurmDrain", "root: fan"),
        TaintChange("syncd.io/slurm-unavailable", True), MirrorOutcome.OK, "", slurm("gpu-01"))
    assert typed.to_json() == today.data


def test_payloads_render_as_the_daemon_renders_events_today() -> None:
    """Same JSON as the hand-built dicts of tests/events/helpers.every_type (the planner's)."""
    today = every_type("gpu-01")
    assert today[0].type == EventType.DRIFT
    typed = DriftData(kube("gpu-01", ready=True), slurm("gpu-01"), ("not_ready",),
                      "drift #0 of gpu-01")
    assert typed.to_json() == today[0].data
    assert today[1].data == DriftData(None, None, (), "slurmctld restarted",
                                      boot_time="2025-01-01").to_json()
    assert today[2].type == EventType.ACTION
    assert action().to_json() == today[2].data


def test_payloads_are_frozen_and_slotted() -> None:
    payload = SkippedData("why", "value", "source")
    with pytest.raises(dataclasses.FrozenInstanceError):
        payload.why = "other"  # type: ignore[misc]
    assert not hasattr(payload, "__dict__")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OverflowData("", 1, "x"), "sink"),
        (lambda: OverflowData("redis", 0, "x"), "dropped"),
        (lambda: OverflowData("redis", 1, "x", first_sequence=3), "go together"),
        (lambda: OverflowData("redis", 1, "x", first_sequence=3, last_sequence=2),
         "last_sequence"),
        (lambda: DriftData(None, None, ("",), "x"), "drift kinds"),
        (lambda: ActionData(ActionKind.SET_HOLD, "", "", (), -1, "n", Outcome.OK, "", None, None,
                            Actor.PLANNER), "hold_gpus"),
    ],
)
def test_bad_payloads_fail_at_construction_with_one_line(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        build()
    assert "\n" not in str(caught.value)


def test_a_payload_the_schema_refuses_is_caught_by_validation() -> None:
    """The check above cannot pass vacuously: a wrong enum value fails validation."""
    body = wrapped(BreakerData(BreakerState.OPEN, "x"), "")
    body["data"]["state"] = "ajar"
    with pytest.raises(EventInvalid, match=r"data\.state"):
        validate_event(body)
