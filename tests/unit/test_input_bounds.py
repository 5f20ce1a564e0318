"""Input bounds in the planner: unbelievable GPU counts, feature templates that would own an
operator's features, features of an earlier template, and back-off after failed writes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.config import ConfigError, load
from syncd.core.memory import Memory
from syncd.core.model import ActionKind, KubeNode, KubeView, SlurmNode, SlurmView
from syncd.core.planner import plan
from syncd.core.policy import Capacity, GpuResource, Policy
from syncd.core.timers import next_deadline, record_writes

POLICY = Policy(capacity=Capacity(hold_jobs=False))


def _k(gpus: int | str, cap: int | None = None) -> KubeView:
    n = int(gpus)
    return KubeView({"gpu001": KubeNode("gpu001", "gpu001",
                                        gpu_capacity={"nvidia.com/gpu": cap or n},
                                        gpu_allocatable={"nvidia.com/gpu": n})})


def _s(*features: str, gres: int = 8) -> SlurmView:
    f = ("gpu", *features)
    return SlurmView({"gpu001": SlurmNode("gpu001", available_features=f, active_features=f,
                                          gres_gpus=gres)}, boot_time="b")


@pytest.mark.parametrize(("k8s", "why"), [
    (_k(1_000_000_000), "max_gpus_per_node"),
    (_k(16), "Slurm GRES"),
    (_k(8, cap=1_000_000_000), "max_gpus_per_node"),
])
def test_unbelievable_gpu_counts_are_refused_not_written(k8s: KubeView, why: str) -> None:
    p = plan(k8s, _s("gpu_avail_8"), POLICY, Memory(), 0.0)
    assert p.changes == ()  # no feature, and no "GPU loss" drain either
    (drift,) = p.events
    assert drift.data["why"] == "gpu_count_refused"


@pytest.mark.parametrize("template", ["{n}", "{n}0", "1{n}2"])
def test_a_template_without_a_literal_non_digit_is_refused(template: str) -> None:
    with pytest.raises(ConfigError, match="non-digit"):
        load({"policy": {"gpu_resources": [{"name": "nvidia.com/gpu",
                                            "feature_template": template}]}})


def test_features_of_an_earlier_template_are_migrated_and_others_kept() -> None:
    old = plan(_k(8), _s("2024"), POLICY, Memory(), 0.0)
    assert old.memory.feature_templates == ("gpu_avail_{n}",)
    new_policy = replace(POLICY, gpu_resources=(GpuResource("nvidia.com/gpu", "gpufree{n}"),))
    slurm = _s("2024", "gpu_avail_8")  # written under the old template
    p = plan(_k(6), slurm, new_policy, old.memory, 1.0)
    (change,) = p.changes
    assert change.features == ("gpu", "2024", "gpufree6")  # old feature gone, operator's kept
    assert p.memory.feature_templates == ("gpu_avail_{n}", "gpufree{n}")


def test_a_failed_write_backs_off_per_node_and_a_success_resets() -> None:
    k8s, slurm = _k(6), _s("gpu_avail_8")
    first = plan(k8s, slurm, POLICY, Memory(), 0.0)
    assert [c.kind for c in first.changes] == [ActionKind.SET_FEATURES]
    m = record_writes(first.memory, POLICY, failed=["gpu001"], succeeded=[], now=0.0)
    assert plan(k8s, slurm, POLICY, m, 4.0).changes == ()  # back-off 5 s
    assert next_deadline(m, POLICY, 4.0) == 5.0
    assert plan(k8s, slurm, POLICY, m, 5.0).changes != ()
    m = record_writes(m, POLICY, failed=["gpu001"], succeeded=[], now=5.0)
    assert m.node("gpu001").retry_at == 15.0  # doubled
    m = record_writes(m, POLICY, failed=[], succeeded=["gpu001"], now=15.0)
    assert m.node("gpu001").write_failures == 0 and m.node("gpu001").retry_at == 0.0
