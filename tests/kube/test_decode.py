"""The slim decoders read every object exactly as ``json.loads`` output is read.

Property: for any node or pod, well-formed or not, the records, holds, claims and warnings the
parsers make from the typed decode equal those they make from ``json.loads`` of the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.kube.decode import NODES, PODS
from syncd.kube.podgpu import parse_label_selector
from syncd.kube.records import parse_node, parse_pod, pod_key
from syncd.kube.slurmd import slurmd_pod

GPU = "nvidia.com/gpu"
RESOURCES = (GPU, "amd.com/gpu")
SLURMD = parse_label_selector("app.kubernetes.io/name=slurmd")
MANAGED = [{"manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:phase": {}}}}]

json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=6)
json_any = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
quantity = st.sampled_from(["1", "8", "0", "2k", "500m", "1Ki", "-1", "x", "1e3", ""]) | json_leaf


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or anything JSON at all (a malformed object), or nothing (key left out)."""
    return st.one_of(value, value, json_any, st.just(...))


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({k: maybe(v) for k, v in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not ...})


labels = st.dictionaries(st.sampled_from(["app.kubernetes.io/name", "slurm", "x"]),
                         st.sampled_from(["slurmd", "gpu001", "n1"]) | json_leaf, max_size=3)
meta = obj(name=st.sampled_from(["gpu001", "job-1"]), namespace=st.just("jobs"),
           labels=labels, annotations=labels, resourceVersion=st.just("7"),
           managedFields=st.just(MANAGED), deletionTimestamp=st.just("2026-01-01T00:00:00Z"))
counts = st.dictionaries(st.sampled_from([*RESOURCES, "cpu"]), quantity, max_size=3)
container = obj(name=st.just("main"), resources=obj(requests=counts, limits=counts),
                restartPolicy=st.sampled_from(["Always", "Never"]), image=st.just("i"))
pod = obj(metadata=meta, spec=obj(
    nodeName=st.sampled_from(["gpu001", ""]), hostname=st.just("h1"),
    containers=st.lists(container, max_size=2), initContainers=st.lists(container, max_size=2),
    overhead=counts, tolerations=json_any), status=obj(phase=st.sampled_from(
        ["Running", "Pending", "Succeeded"]), conditions=json_any))
condition = obj(type=st.sampled_from(["Ready", "GPUHealthy", "SyncdMirror"]),
                status=st.sampled_from(["True", "False"]), reason=st.text(max_size=5),
                message=st.text(max_size=5))
node = obj(metadata=meta, spec=obj(
    unschedulable=st.booleans(), taints=st.lists(obj(key=st.just("k"), effect=st.just(
        "NoSchedule"), value=st.text(max_size=3)), max_size=2)), status=obj(
    conditions=st.lists(condition, max_size=3), capacity=counts, allocatable=counts,
    images=json_any))


def read_pod(o: Any) -> Any:
    try:
        key = pod_key(o)
        return (key, parse_pod(o, RESOURCES, SLURMD), slurmd_pod(o, key, ("label:slurm", "name")))
    except Exception as exc:
        return type(exc).__name__


def read_node(o: Any) -> Any:
    try:
        return parse_node(o, RESOURCES, "slurm", "slurm", frozenset({"GPUHealthy"}),
                          ("SyncdMirror", "k"))
    except Exception as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(pod)
def test_a_pod_reads_the_same_from_the_slim_decode(raw: dict[str, Any]) -> None:
    line = json.dumps({"type": "MODIFIED", "object": raw}).encode()
    assert read_pod(PODS.event(line).get("object")) == read_pod(raw)
    page = json.dumps({"metadata": {"resourceVersion": "9"}, "items": [raw]}).encode()
    assert [read_pod(o) for o in PODS.page(page).get("items")] == [read_pod(raw)]


@settings(max_examples=300, deadline=None)
@given(node)
def test_a_node_reads_the_same_from_the_slim_decode(raw: dict[str, Any]) -> None:
    line = json.dumps({"type": "ADDED", "object": raw}).encode()
    assert read_node(NODES.event(line).get("object")) == read_node(raw)


def test_a_list_page_keeps_its_continue_token_and_drops_managed_fields() -> None:
    page = json.dumps({"kind": "PodList", "metadata": {"resourceVersion": "12", "continue": "t",
                                                       "remainingItemCount": 3},
                       "items": [{"metadata": {"name": "a", "managedFields": MANAGED}}]})
    doc = PODS.page(page.encode())
    meta = doc.get("metadata")
    assert (meta.get("resourceVersion"), meta.get("continue")) == ("12", "t")
    item = doc.get("items")[0].get("metadata")
    assert item.get("name") == "a"
    assert not hasattr(item, "managedFields"), "not decoded, never kept"


def test_an_error_event_is_read_whole() -> None:
    line = b'{"type":"ERROR","object":{"code":410,"reason":"Expired","message":"too old"}}'
    assert PODS.event(line) == {"type": "ERROR", "object": {
        "code": 410, "reason": "Expired", "message": "too old"}}


def test_a_bookmark_carries_its_resource_version() -> None:
    event = NODES.event(b'{"type":"BOOKMARK","object":{"kind":"Node",'
                        b'"metadata":{"resourceVersion":"42"}}}')
    assert event.get("type") == "BOOKMARK"
    assert (event.get("object").get("metadata") or {}).get("resourceVersion") == "42"


def test_a_field_the_decoder_does_not_declare_is_an_error_not_none() -> None:
    item = PODS.page(b'{"items":[{"metadata":{"name":"a"}}]}').get("items")[0]
    with pytest.raises(AttributeError):
        item.get("metadata").get("ownerReferences")
