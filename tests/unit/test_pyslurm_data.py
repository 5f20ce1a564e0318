"""The pure conversion of pyslurm 25.11's objects (syncd.slurm.pyslurm_data).

The inputs are plain objects with the attribute names and value shapes pyslurm 25.11.2 has
(its pyslurm/core/node.pyx and job/job.pyx; docs/slurm-backends.md): data for pure functions,
like the recorded scontrol lines of test_parse.py, not a stand-in for pyslurm or slurmctld.
The backend itself runs against a real Slurm 25.11 with scripts/test-pyslurm.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from syncd.core.model import BaseState
from syncd.slurm.parse import ParseStats
from syncd.slurm.pyslurm_data import gpus, gpus_in_use, holds_of, node_values, to_node


class Loaded(dict[str, Any]):
    """Like pyslurm.Nodes/Jobs: a map whose iteration yields keys (names), not objects."""


def _job(**kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = {"name": "syncd-hold", "comment": "syncd-hold:gpu001",
                            "required_nodes": "gpu001", "user_name": "root", "state": "RUNNING",
                            "gres_per_node": {"gpu": 1}, "array_id": None, "array_task_id": None,
                            "array_tasks_waiting": None, "id": 7,
                            "get_resource_layout_per_node": lambda: {}}
    base.update(kw)
    return SimpleNamespace(**base)


def test_nodes_come_from_values_not_from_iteration() -> None:
    node = SimpleNamespace(name="gpu001")
    loaded = Loaded(gpu001=node)
    assert list(loaded) == ["gpu001"]
    assert node_values(loaded) == [node]


def test_a_node_reads_like_scontrols() -> None:
    raw = SimpleNamespace(name="gpu001", state="IDLE+DRAIN", reason="syncd: x #1",
                          reason_user="root", available_features=["gpu", "a"],
                          active_features=["gpu"], configured_gres={"gpu:a100": 8})
    n = to_node(raw, 3, ParseStats())
    assert (n.state, n.drained, n.reason, n.reason_user) == (BaseState.IDLE, True,
                                                             "syncd: x #1", "root")
    assert (n.gres_gpus, n.gres_used_gpus, n.available_features) == (8, 3, ("gpu", "a"))
    kept = SimpleNamespace(**{**vars(raw), "state": "IDLE", "reason": "syncd: x #1"})
    assert to_node(kept, 0, ParseStats()).reason == ""  # 25.11 keeps it after RESUME


def test_gpus_in_use_are_the_running_jobs_per_node_gres() -> None:
    jobs = [
        _job(get_resource_layout_per_node=lambda: {
            "gpu001": {"gres": {"gpu": {"count": 2, "indexes": "0-1"}}},
            "gpu002": {"gres": {"gpu:a100": 1}}}),
        _job(state="PENDING",
             get_resource_layout_per_node=lambda: {"gpu001": {"gres": {"gpu": 4}}}),
        _job(get_resource_layout_per_node=lambda: {"gpu001": {"gres": {}}}),
    ]
    assert gpus_in_use(jobs) == {"gpu001": 2, "gpu002": 1}
    assert gpus("gpu:3") == 3 and gpus(None) == 0


def test_holds_are_syncds_jobs_one_per_array_task() -> None:
    jobs = [
        _job(array_id=12, array_task_id=0),
        _job(array_id=12, array_task_id=None, state="PENDING", array_tasks_waiting="1-3%2"),
        _job(id=13),
        _job(comment="syncd-hold:gpu002"),   # marker names another node
        _job(user_name="alice"),             # not ours
        _job(state="COMPLETED"),
    ]
    held = holds_of(jobs, job_name="syncd-hold", user="root")
    assert [h.job_id for h in held] == ["12_0", "12_1", "12_2", "12_3", "13"]
    assert {h.node for h in held} == {"gpu001"} and sum(h.gpus for h in held) == 5
