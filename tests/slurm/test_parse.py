"""The scontrol/squeue parsers on output recorded from the real 22.05.8, 24.11.5 and 26.05.5
sandboxes (scripts/slurm-sandbox --slurm R), plus edge cases."""

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
    live_reason,
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
        # Old style: the symbol sits on the base state, flags follow (issue 12).
        ("DOWN*+DRAIN", BaseState.DOWN, {"NOT_RESPONDING", "DRAIN"}),
        ("IDLE~+DRAIN", BaseState.IDLE, {"POWERED_DOWN", "DRAIN"}),
        ("MIXED+DRAIN*", BaseState.MIXED, {"DRAIN", "NOT_RESPONDING"}),
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


# Recorded with the same commands on each release (docs/slurm-releases.md, "Recordings"):
# gpu001 drained with a reason that contains known keys, plus Comment and Extra; gpu002
# drained and resumed; gpu003 with features and a job holding 3 GPUs; gpu004 a drained ghost.
RECORDED = ["22.05.8", "24.11.5", "26.05.5"]


@pytest.mark.parametrize("version", RECORDED)
def test_recorded_lines_of_every_release(version: str) -> None:
    text = (DATA / f"show_node_{version}_mixed.txt").read_text()
    stats = ParseStats()
    nodes = parse_nodes(text, stats)
    assert sorted(nodes) == ["gpu001", "gpu002", "gpu003", "gpu004"]
    assert not stats.unknown_states and stats.skipped_lines == 0

    drained = nodes["gpu001"]
    assert (drained.state, drained.flags) == (BaseState.IDLE, frozenset({"DRAIN"}))
    # "Comment=" and "Extra=" inside the reason do not cut it short (issue 12) ...
    assert drained.reason == "fan broken Comment=see ticket 7 Extra=x"
    assert drained.reason_user == "root"
    # ... and the real Comment/Extra fields after it stay separate.
    fields = split_fields(text.splitlines()[0])
    assert fields["Comment"] == "operator note"
    assert fields["Extra"] == "extra stuff"

    resumed = nodes["gpu002"]
    assert (resumed.state, resumed.flags, resumed.reason) == (BaseState.IDLE, frozenset(), "")
    # 24.11 still prints the old reason after RESUME; the others clear it. Both read as none.
    assert ("Reason=r1 Comment=c" in text.splitlines()[1]) == version.startswith("24.11")

    busy = nodes["gpu003"]
    assert busy.state is BaseState.MIXED
    assert busy.available_features == ("gpu", "gpu_avail_3", "rack_a")
    assert busy.active_features == ("gpu", "gpu_avail_3")
    assert (busy.gres_gpus, busy.gres_used_gpus) == (8, 3)

    ghost = nodes["gpu004"]
    assert (ghost.state, ghost.flags) == (BaseState.UNKNOWN, frozenset({"DRAIN", "NOT_RESPONDING"}))
    assert ghost.reason == "syncd: ghost #abc"


def test_reason_with_keys_and_no_suffix_falls_back_to_known_keys() -> None:
    f = split_fields("NodeName=n1 State=DOWN Reason=cable Comment=loose Extra=(null)")
    assert (f["Reason"], f["Comment"], f["Extra"]) == ("cable", "loose", "(null)")


def test_old_style_down_drain_line() -> None:
    nodes = parse_nodes("NodeName=n1 State=DOWN*+DRAIN Gres=gpu:8 "
                        "Reason=Not responding [slurm@2026-11-24T10:00:00]")
    n = nodes["n1"]
    assert (n.state, n.flags) == (BaseState.DOWN, frozenset({"NOT_RESPONDING", "DRAIN"}))
    assert (n.reason, n.reason_user) == ("Not responding", "slurm")


@pytest.mark.parametrize(
    ("state", "flags", "kept"),
    [
        (BaseState.IDLE, set(), False),
        (BaseState.IDLE, {"NOT_RESPONDING"}, False),  # 24.11: "Not responding" left over
        (BaseState.MIXED, {"DRAIN"}, True),
        (BaseState.IDLE, {"FAIL"}, True),
        (BaseState.ALLOCATED, {"REBOOT_REQUESTED"}, True),
        (BaseState.DOWN, set(), True),
        (BaseState.DOWN, {"NOT_RESPONDING"}, True),
        (BaseState.UNKNOWN, {"NOT_RESPONDING"}, True),
    ],
)
def test_a_reason_counts_only_while_it_holds_the_node(
    state: BaseState, flags: set[str], kept: bool,
) -> None:
    got = live_reason(state, frozenset(flags), "syncd: test", "root")
    assert got == (("syncd: test", "root") if kept else ("", ""))
