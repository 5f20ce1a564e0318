"""Intents a crash left open are resolved against Slurm's state: the events say what happened."""

from __future__ import annotations

from syncd.core.model import Action, ActionKind, BaseState, KubeView, SlurmNode, SlurmView
from syncd.core.recovery import RECOVERED, intent_record, resolve
from syncd.core.reporting import action_events
from syncd.events.schemas import validate_event


def test_each_node_gets_the_outcome_slurm_shows() -> None:
    drain = Action(ActionKind.DRAIN, "gpu[001-002]", ("gpu001", "gpu002"), reason="syncd: x #1")
    record = intent_record(drain, action_events(drain, outcome="ok", error="", why={},
                                                k8s=KubeView({}), slurm=SlurmView({}),
                                                actor="planner"))
    slurm = SlurmView({"gpu001": SlurmNode("gpu001", flags=frozenset({"DRAIN"}),
                                           reason="syncd: x #1"),
                       "gpu002": SlurmNode("gpu002")})
    out = {e.subject: e for e in resolve(record, slurm)}
    assert out["gpu001"].data["outcome"] == "recovered"
    assert out["gpu002"].data["outcome"] == "not_applied"
    assert out["gpu001"].data["error"] == RECOVERED
    for e in out.values():
        validate_event({"specversion": "1.0", "id": "x", "source": "syncd://t/i",
                        "type": e.type.value, "subject": e.subject,
                        "time": "2026-12-01T00:00:00Z", "datacontenttype": "application/json",
                        "sequence": "0" * 20, "data": dict(e.data)})


def test_every_kind_is_read_back() -> None:
    cases = [
        (Action(ActionKind.RESUME, "n", ("n",)), SlurmNode("n")),
        (Action(ActionKind.DOWN, "n", ("n",), reason="r"), SlurmNode("n", state=BaseState.DOWN,
                                                                    reason="r")),
        (Action(ActionKind.SET_FEATURES, "n", ("n",), features=("gpu", "gpu_avail_3")),
         SlurmNode("n", available_features=("gpu", "gpu_avail_3"),
                   active_features=("gpu_avail_3", "gpu"))),
        (Action(ActionKind.SET_HOLD, "n", ("n",), hold_gpus=3), SlurmNode("n", hold_gpus=3)),
    ]
    for action, node in cases:
        record = intent_record(action, action_events(action, outcome="ok", error="", why={},
                                                     k8s=KubeView({}), slurm=SlurmView({}),
                                                     actor="planner"))
        (ev,) = resolve(record, SlurmView({"n": node}))
        assert ev.data["outcome"] == "recovered", action
        (ev,) = resolve(record, SlurmView({}))
        assert ev.data["outcome"] == "not_applied", action
