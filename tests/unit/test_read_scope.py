"""Which Slurm nodes a pass reads (syncd.core.passes.read_scope, docs/hot-path.md)."""

from __future__ import annotations

from syncd.core.model import Action, ActionKind, SlurmNode, SlurmView
from syncd.core.passes import FULL_READ_MAX_AGE, read_scope, to_verify

VIEW = SlurmView({n: SlurmNode(n) for n in ("a", "b", "c")})


def test_a_verify_read_names_only_the_nodes_written() -> None:
    scope = read_scope(trigger="verify", written={"a", "gone"}, last=VIEW, watch={"b"},
                       full_read_age=1.0, full_needed=False)
    assert not scope.full and scope.names == ("a",)


def test_change_passes_read_nothing_and_the_rest_read_everything() -> None:
    def scope(trigger: str, **kw: object) -> tuple[bool, tuple[str, ...]]:
        args: dict[str, object] = {"trigger": trigger, "written": {"a"}, "last": VIEW,
                                   "watch": set(), "full_read_age": 1.0, "full_needed": False}
        args.update(kw)
        s = read_scope(**args)  # type: ignore[arg-type]
        return s.full, s.names

    assert scope("change") == (False, ())
    assert scope("timer") == (False, ())
    assert scope("probe")[0] and scope("resync")[0]
    assert scope("verify", watch=None)[0]
    assert scope("verify", full_read_age=FULL_READ_MAX_AGE)[0]
    assert scope("verify", full_needed=True)[0]


def test_only_state_writes_and_failed_writes_are_read_back() -> None:
    feats = Action(ActionKind.SET_FEATURES, "a", ("a",), features=("gpu_avail_2",))
    flaky = Action(ActionKind.SET_FEATURES, "b", ("b",), features=("gpu_avail_1",))
    drain = Action(ActionKind.DRAIN, "c", ("c",), reason="syncd: x")
    held = Action(ActionKind.SET_HOLD, "d", ("d",), hold_gpus=2)
    assert to_verify([feats, flaky, drain, held], written={"a", "b", "c", "d"},
                     failed={"b"}) == {"b", "c", "d"}
    assert to_verify([feats], written={"a"}, failed=()) == set()
