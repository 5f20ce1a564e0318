"""syncd/slurm/sinfo.py on lines recorded from a real 22.05.8 sandbox (2026-12-03):
``sinfo -h -N -n NODE -O NODE_FORMAT`` prints one line per partition the node is in. The
same line serves the confirming read (``NodeMark.of``) and partial reads."""

from __future__ import annotations

import pytest

from syncd.core.model import BaseState, NodeMark, SlurmNode
from syncd.slurm.sinfo import parse_sinfo_node

# gpu002 is in two partitions: two equal lines; the reason holds the separator
TWO_PARTITIONS = "gpu002|idle+drain|gpu|gpu|gpu:8|gpu:0|root|rma | x|\n" * 2


def test_a_node_in_two_partitions_is_read_from_its_first_line() -> None:
    assert parse_sinfo_node(TWO_PARTITIONS) == SlurmNode(
        "gpu002", BaseState.IDLE, frozenset({"DRAIN"}), "rma | x", "root", ("gpu",), ("gpu",),
        8, 0)
    node = parse_sinfo_node(TWO_PARTITIONS)
    assert node is not None
    assert NodeMark.of(node) == NodeMark(BaseState.IDLE, frozenset({"DRAIN"}), "rma | x", "root")


@pytest.mark.parametrize(("line", "node"), [
    # features cleared by an operator: (null) and empty; "none" is no reason, whoever
    ("gpu003|idle|(null)||gpu:8|gpu:0|root|none|\n", SlurmNode("gpu003", gres_gpus=8)),
    ("gpu003|mixed|gpu,gpu_avail_6|gpu,gpu_avail_6|gpu:8|gpu:2|Unknown|none|\n",
     SlurmNode("gpu003", BaseState.MIXED, available_features=("gpu", "gpu_avail_6"),
               active_features=("gpu", "gpu_avail_6"), gres_gpus=8, gres_used_gpus=2)),
    ("gpu001|down|gpu|gpu|gpu:8|gpu:0|root|dead psu|\n",
     SlurmNode("gpu001", BaseState.DOWN, reason="dead psu", reason_user="root",
               available_features=("gpu",), active_features=("gpu",), gres_gpus=8)),
])
def test_sinfo_lines_read_as_scontrol_reads_them(line: str, node: SlurmNode) -> None:
    assert parse_sinfo_node(line) == node


def test_no_line_is_no_node_and_a_short_line_is_an_error() -> None:
    assert parse_sinfo_node("") is None and parse_sinfo_node("\n") is None
    with pytest.raises(ValueError, match="unexpected line"):
        parse_sinfo_node("gpu001|idle|gpu|\n")


def test_a_confirming_allocated_agrees_with_a_mixed_view() -> None:
    """sinfo prints the stored ALLOCATED for a moment after a job starts, where scontrol
    prints MIXED (recorded on 22.05.8): that is no operator's change."""
    node = parse_sinfo_node("gpu003|allocated|(null)||gpu:8|gpu:2|Unknown|none|\n")
    assert node is not None and node.state is BaseState.ALLOCATED
    assert NodeMark.of(node).agrees(SlurmNode("gpu003", BaseState.MIXED))
    assert not NodeMark.of(node).agrees(SlurmNode("gpu003", BaseState.IDLE))
