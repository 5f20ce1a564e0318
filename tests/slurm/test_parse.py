"""The scontrol/squeue parsers on output recorded from the real 22.05.8 sandbox, plus edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.core.model import BaseState, SlurmNode
from syncd.slurm.errors import (
    InvalidState,
    PermissionDenied,
    SlurmError,
    Timeout,
    UnknownNode,
    Unreachable,
    classify,
)
from syncd.slurm.holds import parse_holds, per_node
from syncd.slurm.parse import (
    ParseStats,
    parse_boot_time,
    parse_gpus,
    parse_nodes,
    parse_reason,
    parse_state,
    parse_version,
    split_fields,
)

DATA = Path(__file__).parent / "data"


def test_recorded_show_node_output() -> None:
    stats = ParseStats()
    nodes = parse_nodes((DATA / "show_node_22.05.8.txt").read_text(), stats)
    assert sorted(nodes) == ["gpu001", "gpu002", "gpu003", "gpu004", "gpu005"]
    drained = nodes["gpu002"]
    assert drained.state is BaseState.IDLE
    assert drained.drained
    # An operator reason with "=", a fake key and brackets survives intact.
    assert drained.reason == "fan = broken Bar=1 [see ticket]"
    assert drained.reason_user == "root"
    assert nodes["gpu003"].available_features == ("gpu", "gpu_avail_3", "rack_a")
    assert nodes["gpu003"].active_features == ("gpu", "gpu_avail_3")
    assert nodes["gpu004"].state is BaseState.UNKNOWN  # a ghost node without slurmd
    assert all(n.gres_gpus == 8 for n in nodes.values())
    assert not stats.unknown_states
    assert stats.skipped_lines == 0


def test_recorded_config_boot_time() -> None:
    assert parse_boot_time((DATA / "show_config_22.05.8.txt").read_text()) == "2026-11-24T13:29:52"


def test_free_text_values_keep_spaces_and_equals() -> None:
    line = ("NodeName=n1 OS=Linux 6.1 #1 SMP State=DOWN+NOT_RESPONDING Gres=gpu:4 "
            "Reason=foo = bar x=y [slurm@2026-11-24T10:00:00] Comment=a b=c Extra=(null)")
    f = split_fields(line)
    assert f["OS"] == "Linux 6.1 #1 SMP"
    assert f["Comment"] == "a b=c"
    assert f["Extra"] == "(null)"
    assert parse_reason(f["Reason"]) == ("foo = bar x=y", "slurm")


@pytest.mark.parametrize(
    ("text", "base", "flags"),
    [
        ("IDLE", BaseState.IDLE, set()),
        ("IDLE+DRAIN+NOT_RESPONDING", BaseState.IDLE, {"DRAIN", "NOT_RESPONDING"}),
        ("MIXED+DRAIN", BaseState.MIXED, {"DRAIN"}),
        ("DOWN*", BaseState.DOWN, {"NOT_RESPONDING"}),
        ("UNKNOWN+CLOUD+NOT_RESPONDING", BaseState.UNKNOWN, {"CLOUD", "NOT_RESPONDING"}),
    ],
)
def test_states(text: str, base: BaseState, flags: set[str]) -> None:
    assert parse_state(text) == (base, frozenset(flags))


def test_unknown_base_state_is_counted_not_fatal() -> None:
    stats = ParseStats()
    assert parse_state("BLINKING+DRAIN", stats) == (BaseState.UNKNOWN, frozenset({"DRAIN"}))
    assert stats.unknown_states["BLINKING"] == 1


@pytest.mark.parametrize(
    ("text", "gpus"),
    [
        ("gpu:8", 8), ("gpu:a100:8", 8), ("gpu:8(S:0-1)", 8), ("(null)", 0), ("", 0),
        ("gpu:a100:4(S:0,1),gpu:v100:4(S:1)", 8), ("gpu:3(IDX:0-2)", 3),
        ("gpu:a100:0(IDX:N/A)", 0), ("shard:16,gpu:2", 2), ("mps:100", 0),
    ],
)
def test_gres(text: str, gpus: int) -> None:
    assert parse_gpus(text) == gpus


def test_holds_only_count_jobs_with_our_marker() -> None:
    text = "\n".join([
        "12_0|RUNNING|gpu002|gres:gpu:1|syncd-hold:gpu002",
        "12_1|PENDING|gpu002|gres:gpu:1|syncd-hold:gpu002",
        "13|RUNNING|gpu002|gres:gpu:4|someone else's job",     # same name, not our marker
        "14|RUNNING|gpu003|gres:gpu:1|syncd-hold:gpu002",      # marker for another node
        "15|RUNNING|gpu004|gres/gpu:2|syncd-hold:gpu004",      # 24.11 tres spelling
    ])
    jobs = parse_holds(text, "syncd-hold")
    assert [j.job_id for j in jobs] == ["12_0", "12_1", "15"]
    assert per_node(jobs) == {"gpu002": 2, "gpu004": 2}


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("slurm_load_node error: Unable to contact slurm controller (connect failure)",
         Unreachable),
        ("slurm_update error: Invalid node name specified", UnknownNode),
        ("slurm_update error: Invalid node state specified", InvalidState),
        ("Invalid node state transition", InvalidState),
        ("slurm_update error: Invalid user id", PermissionDenied),
        ("Socket timed out on send/recv operation", Timeout),
        ("slurm_update error: Active features not subset of available features", SlurmError),
    ],
)
def test_error_texts(text: str, cls: type[SlurmError]) -> None:
    assert classify(text) is cls


def test_versions() -> None:
    assert parse_version("slurm 22.05.8") == (22, 5)
    assert parse_version("25.11.2") == (25, 11)
    assert parse_version("nonsense") is None


def test_the_line_cache_returns_the_same_objects_and_reparses_changed_lines() -> None:
    from syncd.slurm.parse import parse_nodes

    text = (DATA / "show_node_22.05.8.txt").read_text()
    cache: dict[str, SlurmNode] = {}
    first = parse_nodes(text, cache=cache)
    second = parse_nodes(text, cache=cache)
    assert first == second
    assert all(second[n] is first[n] for n in first)
    name = next(iter(first))
    changed = text.replace("State=IDLE", "State=IDLE+DRAIN", 1)
    third = parse_nodes(changed, cache=cache)
    assert third[name] is not first[name] and "DRAIN" in third[name].flags
    assert len(cache) == len(first)  # bounded by the last read, never growing
