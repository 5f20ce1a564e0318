"""Impersonation and continue tokens, answered as a real kube-apiserver does (recording 73 for the
403 shape; the other facts are in docs/kubesim.md), through kubernetes-asyncio and raw HTTP."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim.client import SimClient
from kubesim.server import SimServer
from tests.fixtures.kube import ADMIN_TOKEN, READONLY_TOKEN
from tests.sim.test_list_watch import get
from tests.sim.test_protocol import expected, replay

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FORBIDDEN = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "reason": "Forbidden", "code": 403}


def status_of(err: ApiException) -> dict[str, Any]:
    assert err.body is not None
    body: dict[str, Any] = json.loads(err.body)
    return body


async def test_an_impersonated_user_without_rbac_gets_403(kube_api: client.ApiClient,
                                                          sim_client: SimClient) -> None:
    await sim_client.pool(1)
    core = client.CoreV1Api(kube_api)
    assert len((await core.list_node()).items) == 1
    kube_api.set_default_header("Impersonate-User", "nobody")
    with pytest.raises(ApiException) as err:
        await core.list_node()
    assert err.value.status == 403
    assert status_of(err.value) == {
        **FORBIDDEN, "details": {"kind": "nodes"},
        "message": 'nodes is forbidden: User "nobody" cannot list resource "nodes" in API '
                   'group "" at the cluster scope'}
    with pytest.raises(ApiException) as err:
        await core.patch_node_status("gpu001", {"status": {"phase": "x"}})
    assert status_of(err.value)["details"] == {"name": "gpu001", "kind": "nodes/status"}
    versions = await client.CoreApi(kube_api).get_api_versions()
    assert versions.versions == ["v1"], "discovery stays open to authenticated users"


async def test_impersonation_matches_recording_73(sim: SimServer) -> None:
    status, body, _ = await replay(sim, "73-error-user-without-rbac-403-lease-update",
                                   headers={**ADMIN, "Impersonate-User": "nobody"})
    assert (status, body) == expected("73-error-user-without-rbac-403-lease-update")


async def test_who_may_impersonate_and_as_whom(sim: SimServer, sim_client: SimClient) -> None:
    await sim_client.pool(1)
    readonly = {"Authorization": f"Bearer {READONLY_TOKEN}"}
    status, body = await get(sim, "/api/v1/nodes", **readonly, **{"Impersonate-User": "nobody"})
    assert (status, body) == (403, {
        **FORBIDDEN, "details": {"name": "nobody", "kind": "users"},
        "message": 'users "nobody" is forbidden: User "readonly" cannot impersonate resource '
                   '"users" in API group "" at the cluster scope'})
    as_readonly = {**ADMIN, "Impersonate-User": "readonly"}
    assert (await get(sim, "/api/v1/nodes", **as_readonly))[0] == 200
    status, body, _ = await replay(sim, "60-lease-create", headers=as_readonly)
    assert status == 403
    assert 'User "readonly" cannot create resource "leases"' in body["message"]
    masters = {**ADMIN, "Impersonate-User": "nobody", "Impersonate-Group": "system:masters"}
    assert (await replay(sim, "60-lease-create", headers=masters))[0] == 201
    status, body = await get(sim, "/api/v1/nodes", **{**ADMIN, "Impersonate-Group": "x"})
    assert status == 500
    assert body["reason"] == "InternalError"
    assert "without impersonating a user" in body["message"]


def token(doc: Any) -> str:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_a_continue_token_from_the_future_is_etcds_500(
        sim: SimServer, sim_client: SimClient, kube_api: client.ApiClient) -> None:
    await sim_client.pool(3)
    core: Any = client.CoreV1Api(kube_api)
    first = json.loads(await (await core.list_node(limit=1, _preload_content=False)).read())
    real = json.loads(base64.urlsafe_b64decode(first["metadata"]["continue"] + "=="))
    assert real["start"] == "gpu001\u0000"
    future = token({**real, "rv": real["rv"] + 1000})
    with pytest.raises(ApiException) as err:
        await core.list_node(limit=1, _continue=future)
    assert err.value.status == 500
    assert status_of(err.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "etcdserver: mvcc: required revision is a future revision", "code": 500}


@pytest.mark.parametrize(("given", "reason"), [
    ("!!!", "illegal base64 data at input byte 0"),
    ("abcde", "illegal base64 data at input byte 4"),
    (token(b"hello"), "invalid character 'h' looking for beginning of value"),
    (token(b'{"v":'), "unexpected end of JSON input"),
    (token([1]), "json: cannot unmarshal array into Go value of type storage.continueToken"),
    (token({"v": "meta.k8s.io/v1", "rv": "7", "start": "a"}),
     "json: cannot unmarshal string into Go struct field continueToken.rv of type int64"),
    (token({"v": "v9", "rv": 1, "start": "a"}),
     'server does not recognize this encoded version "v9"'),
    (token({"v": "meta.k8s.io/v1", "rv": 0, "start": "a"}),
     "incorrect encoded start resourceVersion (version meta.k8s.io/v1)"),
    (token({"v": "meta.k8s.io/v1", "rv": 2, "start": ""}),
     "encoded start key empty (version meta.k8s.io/v1)"),
    (token({"v": "meta.k8s.io/v1", "rv": 2, "start": "../secrets/x"}), "../secrets/x"),
])
async def test_a_garbage_continue_token_is_400(sim: SimServer, given: str, reason: str) -> None:
    status, body = await get(sim, f"/api/v1/nodes?limit=1&continue={given}")
    assert status == 400
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f"invalid continue token: continue key is not valid: {reason}",
                    "reason": "BadRequest", "code": 400}


async def test_continue_with_a_resource_version_is_400(sim: SimServer,
                                                       sim_client: SimClient) -> None:
    await sim_client.pool(2)
    _, page = await get(sim, "/api/v1/nodes?limit=1")
    status, body = await get(sim, f"/api/v1/nodes?limit=1&resourceVersion=1&continue="
                                  f"{page['metadata']['continue']}")
    assert (status, body["message"]) == (
        400, "specifying resource version is not allowed when using continue")
    status, body = await get(sim, f"/api/v1/nodes?limit=1&resourceVersion=0&continue="
                                  f"{page['metadata']['continue']}")
    assert status == 200
    assert [i["metadata"]["name"] for i in body["items"]] == ["gpu002"]
