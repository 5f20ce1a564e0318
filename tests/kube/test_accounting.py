"""GPU accounting by Kubernetes rules and the quantity grammar (pure functions)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from syncd.kube.podgpu import parse_label_selector, pod_hold, pod_request
from syncd.kube.quantity import QuantityError, parse_count, parse_quantity

GPU = "nvidia.com/gpu"
MIG = "nvidia.com/mig-1g.10gb"
RES = (GPU, "amd.com/gpu", MIG)
SLURMD = parse_label_selector("app.kubernetes.io/name=slurmd")


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("500m", Fraction(1, 2)), ("2k", 2000), ("1Ki", 1024), ("1e3", 1000),
    ("1E3", 1000), ("0.5", Fraction(1, 2)), (".5", Fraction(1, 2)), ("+3", 3), ("1Mi", 2**20),
    ("2G", 2 * 10**9), ("1.5Gi", 3 * 2**29), (8, 8), ("0", 0), ("-1", -1),
])
def test_quantity_grammar(text: Any, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["abc", "", "1e400", "1.2.3", "1 ", "Ki", "1KiB", "0x10",
                                  "1e", True, None, 1.5, "9" * 80, "1e18E"])
def test_quantity_rejects_garbage(text: Any) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["-1", "500m", "1.5", "abc", "1e400"])
def test_device_count_rejects_negative_fractional_and_bogus(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_count(text)


def test_device_count_accepts_whole_numbers_in_any_spelling() -> None:
    assert [parse_count(t) for t in ("8", "8000m", "1e1", "2")] == [8, 8, 10, 2]


def container(name: str, gpus: str | None = None, *, request: str | None = None,
              resource: str = GPU, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if gpus is not None:
        res["limits"] = {resource: gpus}
    if request is not None:
        res["requests"] = {resource: request}
    return {"name": name, "resources": res, **extra}


def pod(containers: list[dict[str, Any]], *, init: list[dict[str, Any]] | None = None,
        overhead: dict[str, str] | None = None, node: str = "gpu001", phase: str = "Running",
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if node:
        spec["nodeName"] = node
    if init:
        spec["initContainers"] = init
    if overhead:
        spec["overhead"] = overhead
    return {"metadata": {"name": "p", "namespace": "ns", "labels": labels or {}},
            "spec": spec, "status": {"phase": phase}}


def test_app_containers_are_summed_and_requests_default_to_limits() -> None:
    counts, warnings = pod_request(pod([container("a", "2"), container("b", "3")]), RES)
    assert counts == {GPU: 5}
    assert not warnings


def test_explicit_request_wins_over_limit() -> None:
    assert pod_request(pod([container("a", "4", request="2")]), RES)[0] == {GPU: 2}


def test_init_containers_take_the_max_not_the_sum() -> None:
    p = pod([container("a", "2")], init=[container("i1", "4"), container("i2", "1")])
    assert pod_request(p, RES)[0] == {GPU: 4}
    p = pod([container("a", "6")], init=[container("i1", "4")])
    assert pod_request(p, RES)[0] == {GPU: 6}


def test_sidecar_init_containers_add_to_the_app_containers() -> None:
    sidecar = container("side", "1", restartPolicy="Always")
    p = pod([container("a", "2")], init=[sidecar, container("i", "2")])
    # app 2 + sidecar 1 = 3; the regular init runs beside the sidecar: 2 + 1 = 3
    assert pod_request(p, RES)[0] == {GPU: 3}


def test_overhead_is_added() -> None:
    p = pod([container("a", "2")], init=[container("i", "4")], overhead={GPU: "1"})
    assert pod_request(p, RES)[0] == {GPU: 5}


def test_mig_and_other_vendors_are_counted_per_resource() -> None:
    p = pod([container("a", "2", resource=MIG), container("b", "1", resource="amd.com/gpu"),
             container("c", "1", resource="example.com/fpga")])
    assert pod_request(p, RES)[0] == {MIG: 2, "amd.com/gpu": 1}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pods_hold_nothing(phase: str) -> None:
    assert pod_hold(pod([container("a", "2")], phase=phase), RES, SLURMD)[0] is None


def test_pending_bound_and_terminating_pods_hold_gpus() -> None:
    hold, _ = pod_hold(pod([container("a", "2")], phase="Pending"), RES, SLURMD)
    assert hold is not None
    assert hold.node == "gpu001"
    assert hold.held == ((GPU, 2),)


def test_unbound_pods_hold_nothing() -> None:
    assert pod_hold(pod([container("a", "2")], node=""), RES, SLURMD)[0] is None


def test_slurms_own_pods_are_not_foreign_usage() -> None:
    p = pod([container("slurmd", "8")], labels={"app.kubernetes.io/name": "slurmd"})
    assert pod_hold(p, RES, SLURMD)[0] is None
    other = pod([container("x", "8")], labels={"app.kubernetes.io/name": "other"})
    assert pod_hold(other, RES, SLURMD)[0] is not None


@pytest.mark.parametrize("bogus", ["abc", "-1", "1e400", "0.5"])
def test_bogus_quantities_are_skipped_with_a_warning(bogus: str) -> None:
    counts, warnings = pod_request(pod([container("a", bogus), container("b", "1")]), RES)
    assert counts == {GPU: 1}
    assert len(warnings) == 1
    assert "container a" in warnings[0]


def test_label_selector_grammar() -> None:
    sel = parse_label_selector("a=b,c!=d,e in (x, y),!f,g")
    assert sel.matches({"a": "b", "e": "y", "g": ""})
    assert not sel.matches({"a": "b", "e": "y", "g": "", "f": "1"})
    assert not sel.matches({"a": "b", "c": "d", "e": "x", "g": ""})
    assert parse_label_selector("").matches({})
