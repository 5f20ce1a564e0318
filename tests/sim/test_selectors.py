"""kubesim's own selector parsers: the recorded answers (14-16, 18, 19, 32-34, 79), the grammar of
k8s.io/apimachinery's labels and fields packages, and agreement with syncd's client-side parser
on what a valid selector matches (two independent parsers, so a bug in either shows)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubesim.fields import parse_field_selector
from kubesim.labels import Requirement, SelectorError, parse_label_selector
from kubesim.server import SimServer
from syncd.kube.podgpu import parse_label_selector as syncd_parse_label_selector
from tests.sim.test_protocol import expected, golden, replay

QUALIFIED = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
             "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
             "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', "
               "'_' or '.', and must start and end with an alphanumeric character (e.g. "
               "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
               "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def names(body: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


def bare(obj: dict[str, Any]) -> dict[str, Any]:
    """A recorded object as a client would POST it (no server-set metadata)."""
    meta = {k: v for k, v in obj["metadata"].items()
            if k in ("name", "namespace", "labels", "annotations")}
    return {**{k: v for k, v in obj.items() if k != "metadata"}, "metadata": meta}


async def recorded_cluster(sim: SimServer) -> None:
    """The nodes and pods the recordings were taken on."""
    for node in golden("19-node-list-fieldselector-unschedulable")["response"]["body"]["items"]:
        status, _, _ = await replay(sim, "10-node-create-with-status", body=bare(node))
        assert status == 201
    await replay(sim, "30-namespace-create")
    pods = golden("34-pod-list-all-ns-fieldselector-phase-only")["response"]["body"]["items"]
    pods += golden("32-pod-list-all-ns-fieldselector-nodename")["response"]["body"]["items"]
    for pod in {p["metadata"]["name"]: p for p in pods}.values():
        ns = pod["metadata"]["namespace"]
        status, _, _ = await replay(sim, "31-pod-create-bound-gpu", body=bare(pod),
                                    path=f"/api/v1/namespaces/{ns}/pods")
        assert status == 201
        phase = pod["status"]["phase"]
        status, _, _ = await replay(sim, "35-pod-patch-status-running",
                                    path=f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}"
                                         "/status", body={"status": {"phase": phase}})
        assert status == 200


@pytest.mark.parametrize("name", [
    "14-node-list-labelselector", "15-node-list-fieldselector-name",
    "16-node-list-fieldselector-nomatch", "19-node-list-fieldselector-unschedulable",
    "32-pod-list-all-ns-fieldselector-nodename", "33-pod-list-all-ns-fieldselector-not-terminal",
    "34-pod-list-all-ns-fieldselector-phase-only",
])
async def test_selected_lists_match_the_recordings(sim: SimServer, name: str) -> None:
    await recorded_cluster(sim)
    status, body, _ = await replay(sim, name)
    want_status, want = expected(name)
    assert status == want_status == 200
    assert body["kind"] == want["kind"]
    assert names(body) == names(want)


@pytest.mark.parametrize(("query", "message"), [
    ("labelSelector=a%3D%3D%3Db", "unable to parse requirement: found '=', expected: identifier"),
    ("labelSelector=-x%3Da", f'unable to parse requirement: <nil>: Invalid value: "-x": '
                             f"{QUALIFIED}"),
    ("labelSelector=x%3Da%24", f'unable to parse requirement: values[0][x]: Invalid value: '
                               f'"a$": {LABEL_VALUE}'),
    ("labelSelector=x%3Ea", "unable to parse requirement: values[0]: Invalid value: \"a\": for "
                            "'Gt', 'Lt' operators, the value must be an integer"),
    ("labelSelector=!x%3Da", "found '=', expected: ',' or 'end of string'"),
    ("labelSelector=x,", "found '', expected: identifier after ','"),
    ("fieldSelector=spec.foo%3Dbar", "field label not supported: spec.foo"),
    ("fieldSelector=spec.zzz%3D1,spec.aaa%3D1", "field label not supported: spec.aaa"),
    ("fieldSelector=metadata.name", "invalid selector: 'metadata.name'; can't understand "
                                    "'metadata.name'"),
    ("fieldSelector=metadata.name%3Da%3Db",
     "invalid field selector: unescaped character in value: ="),
    ("fieldSelector=metadata.name%20%3D%20a", "field label not supported: metadata.name "),
])
async def test_bad_selectors_are_400_with_the_servers_message(sim: SimServer, query: str,
                                                              message: str) -> None:
    status, body, _ = await replay(sim, "79-error-invalid-label-selector-400", query=query)
    want = expected("79-error-invalid-label-selector-400")[1]
    assert status == 400
    assert body == {**want, "message": message}


@pytest.mark.parametrize(("text", "reqs"), [
    ("x=a,y==b,z!=c", [("x", "=", ("a",)), ("y", "==", ("b",)), ("z", "!=", ("c",))]),
    ("y in (b,a),x notin (c)", [("x", "notin", ("c",)), ("y", "in", ("a", "b"))]),
    ("!x,y", [("x", "!", ()), ("y", "exists", ())]),
    ("x>1,y<12", [("x", ">", ("1",)), ("y", "<", ("12",))]),
    ("x=", [("x", "=", ("",))]),
    ("x in ()", [("x", "in", ("",))]),
    ("x in (,a)", [("x", "in", ("", "a"))]),
    ("x in (a,,b)", [("x", "in", ("", "a", "b"))]),
    ("in in (notin)", [("in", "in", ("notin",))]),
    ("  x  =  a  ", [("x", "=", ("a",))]),
    ("example.com/gpu=a100", [("example.com/gpu", "=", ("a100",))]),
    ("", []),
])
def test_label_selector_grammar(text: str, reqs: list[tuple[str, str, tuple[str, ...]]]) -> None:
    assert parse_label_selector(text).requirements == tuple(Requirement(*r) for r in reqs)


@pytest.mark.parametrize(("text", "message"), [
    ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("x in a", "unable to parse requirement: found 'a' expected: '('"),
    ("x ~ a", "unable to parse requirement: found '~', expected: '=', '!=', '==', 'in', notin'"),
    ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("x=a b", "found 'b', expected: ',' or 'end of string'"),
    (",x", "found ',', expected: !, identifier, or 'end of string'"),
    ("x=a,,y=b", "found ',', expected: identifier after ','"),
    ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
])
def test_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("labels", "selector", "matches"), [
    ({}, "x!=a", True), ({}, "x notin (a)", True), ({}, "x=a", False), ({}, "x>1", False),
    ({"x": "a"}, "x in (a,b)", True), ({"x": "b"}, "x notin (a)", True),
    ({"x": "10"}, "x>9", True), ({"x": "ten"}, "x>9", False), ({"x": "3"}, "x<3", False),
    ({"x": ""}, "x=", True), ({"x": ""}, "x", True), ({"x": ""}, "!x", False),
])
def test_label_selector_matching(labels: dict[str, str], selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is matches


def test_field_selector_grammar() -> None:
    terms = parse_field_selector(r"z=1,,a==x\,y,m!=\=\\")
    assert [(t.field, t.equal, t.value) for t in terms] == [
        ("a", True, "x,y"), ("m", False, "=\\"), ("z", True, "1")]
    with pytest.raises(SelectorError, match=r"invalid escape sequence: \\b"):
        parse_field_selector(r"x=a\b")
    with pytest.raises(SelectorError, match=r"invalid escape sequence: \\$"):
        parse_field_selector("x=a\\")


KEYS = st.sampled_from(["a", "b", "example.com/c"])
VALUES = st.sampled_from(["", "1", "2", "x", "in"])
BAD_KEYS = st.sampled_from(["-x", "x-", "Example.com/c", "a/b/c", "/a", "a" * 64, "é"])
BAD_VALUES = st.sampled_from(["-1", "x_", "a" * 64, "a b"])
REQUIREMENT = st.one_of(
    st.builds(lambda k: k, KEYS), st.builds(lambda k: "!" + k, KEYS),
    st.builds(lambda k, op, v: f"{k}{op}{v}", KEYS, st.sampled_from(["=", "==", "!="]), VALUES),
    st.builds(lambda k, op, v: f"{k}{op}{v}", KEYS, st.sampled_from([">", "<"]),
              st.sampled_from(["0", "1", "5"])),
    st.builds(lambda k, op, vs: f"{k} {op} ({','.join(vs)})", KEYS,
              st.sampled_from(["in", "notin"]), st.lists(VALUES, max_size=3)))
INVALID = st.one_of(
    st.builds(lambda k: f"{k}=a", BAD_KEYS), st.builds(lambda k: "!" + k, BAD_KEYS),
    st.builds(lambda v: f"a={v}", BAD_VALUES), st.builds(lambda v: f"a in (x,{v})", BAD_VALUES),
    st.sampled_from(["a,", ",a", "a in (x y)", "a in x", "a>x", "a<", "a in (x", "a = = b",
                     "!", "a!b"]))


def _outcome(parse: Any, text: str, labels: dict[str, str]) -> bool | None:
    """What a parser says: whether the selector matches, or None when it refuses it."""
    try:
        selector = parse(text)
    except ValueError:
        return None
    return bool(selector.matches(labels))


@settings(max_examples=400, deadline=None)
@given(reqs=st.lists(st.one_of(REQUIREMENT, REQUIREMENT, INVALID), min_size=1, max_size=4),
       labels=st.dictionaries(KEYS, VALUES, max_size=3))
def test_kubesim_and_syncd_agree_on_every_selector(reqs: list[str], labels: dict[str, str]
                                                   ) -> None:
    """Both refuse what the API server refuses, and agree on what a valid selector matches."""
    text = ",".join(reqs)
    assert _outcome(parse_label_selector, text, labels) == _outcome(
        syncd_parse_label_selector, text, labels), text
