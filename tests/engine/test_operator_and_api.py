"""Operator requests, the read model and the HTTP handlers, on fake time with in-process ports.

The handlers get requests built by aiohttp's own test helper (no server, no patching); the
socket, peer credentials and real HTTP are covered by tests/e2e/test_operator_api.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from syncd.core.model import ActionKind, EventType
from syncd.engine.guard import Guard
from syncd.engine.http import Api
from syncd.engine.state import StateStore
from tests.engine.rig import Rig, running
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.looptime
TOKEN = "t0ken-for-the-tests-0123456789"


def _api(rig: Rig, spool_ok: bool = True) -> Api:
    return Api(rig.engine.model, rig.engine.desk, rig.metrics, Guard(allowed_uids=(),
               token=TOKEN), identity="test-1", holder=lambda: "test-1",
               health=lambda: {"spool": (spool_ok, "" if spool_ok else "disk full")})


def _body(resp: web.StreamResponse) -> Any:
    assert isinstance(resp, web.Response) and resp.text is not None
    return json.loads(resp.text)


def _post(path: str, body: dict[str, Any], **headers: str) -> web.Request:
    loop = asyncio.get_running_loop()
    payload = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    payload.feed_data(json.dumps(body).encode())
    payload.feed_eof()
    hdrs = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}", **headers}
    return make_mocked_request("POST", path, headers=hdrs, payload=payload)


async def _call(api: Api, handler: str, req: web.Request) -> tuple[int, Any]:
    try:
        resp = await getattr(api, handler)(req)
    except web.HTTPException as exc:
        return exc.status, json.loads(exc.text or "{}") if exc.content_type == \
            "application/json" else exc.text
    return resp.status, _body(resp)


async def test_reads_come_from_the_read_model_and_agree_on_drift(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        api = _api(rig)
        code, body = await _call(api, "status", make_mocked_request("GET", "/api/v1/status"))
        assert code == 503 and body["daemon"] == "reachable"  # Slurm not read yet
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        await eventually(lambda: rig.metrics.drifted._value.get() == 0, within=3,
                         what="first pass written and read back")
        reads = rig.slurm.reads
        rig.kube.set("gpu002", cordoned=True)  # not yet reconciled: no notify
        code, st = await _call(api, "status", make_mocked_request("GET", "/api/v1/status"))
        assert code == 200 and rig.slurm.reads == reads  # a GET never reads Slurm
        rows = {r["name"]: r for r in st["nodes"]}
        assert rows["gpu002"]["drift"] and st["summary"]["drifted"] == 1
        _, plan = await _call(api, "plan", make_mocked_request("GET", "/api/v1/plan"))
        assert [c["node"] for c in plan["changes"]] == ["gpu002"]
        why_req = make_mocked_request("GET", "/api/v1/why/gpu002",
                                      match_info={"node": "gpu002"})
        _, why = await _call(api, "why", why_req)
        assert why["report"]["causes"] == ["k8s node cordoned"]
        assert [p["action"] for p in why["planned"]] == ["drain"]
        bad = make_mocked_request("GET", "/api/v1/why/x", match_info={"node": "a;b"})
        assert (await _call(api, "why", bad))[0] == 400
        none = make_mocked_request("GET", "/api/v1/why/x", match_info={"node": "gpu999"})
        assert (await _call(api, "why", none))[0] == 404
        code, ready = await _call(api, "readyz", make_mocked_request("GET", "/readyz"))
        assert code == 200 and ready["slurm_backend"] == "memory"
        assert ready["slurm_version"] == "memory"
        code, ready = await _call(_api(rig, spool_ok=False), "readyz",
                                  make_mocked_request("GET", "/readyz"))
        assert code == 503 and ready["problems"] == ["spool: disk full"]
        code, br = await _call(api, "breaker", make_mocked_request("GET", "/api/v1/breaker"))
        assert code == 200 and br["open"] is False
        resp = await api.metrics_view(make_mocked_request("GET", "/metrics"))
        assert isinstance(resp, web.Response) and isinstance(resp.body, bytes)
        assert b"syncd_reconciles_total" in resp.body
        assert (await api.livez(make_mocked_request("GET", "/livez"))).status == 200


async def test_operator_drain_resume_and_refusals(tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        api = _api(rig)
        await eventually(lambda: bool(rig.slurm.applied), within=1, what="first pass")
        code, body = await _call(api, "drain", _post("/api/v1/drain",
                                                     {"node": "gpu001", "reason": "PSU swap"}))
        assert code == 200, body
        assert "syncd: manual, PSU swap #" in rig.slurm.nodes["gpu001"].reason
        (ev,) = rig.events.actions("drain")
        assert ev.data["actor"] == "operator" and ev.data["requested_by"] == "token"
        # the planner never lifts a manual drain
        rig.notify("gpu001")
        await eventually(lambda: rig.slurm.reads > 2, within=20, what="more passes")
        assert "DRAIN" in rig.slurm.nodes["gpu001"].flags
        code, body = await _call(api, "resume", _post("/api/v1/resume", {"node": "gpu001"}))
        assert code == 200 and "DRAIN" not in rig.slurm.nodes["gpu001"].flags
        rig.slurm.operator_drain("gpu002", "bad HBM, do not resume")
        code, body = await _call(api, "resume", _post("/api/v1/resume", {"node": "gpu002"}))
        assert code == 409 and "admin" in body["error"]
        code, body = await _call(api, "drain", _post("/api/v1/drain",
                                                     {"node": "gpu002", "reason": "x"}))
        assert code == 409 and "will not overwrite" in body["error"]
        assert (await _call(api, "drain", _post("/api/v1/drain", {"node": "gpu003"})))[0] == 400
        code, body = await _call(api, "resume", _post("/api/v1/resume", {"node": "nosuch"}))
        assert code == 409 and "no such Slurm node" in body["error"]
        rig.slurm.fail_writes = "slurm_update error: Invalid user id"
        code, body = await _call(api, "drain", _post("/api/v1/drain",
                                                     {"node": "gpu003", "reason": "x"}))
        assert code == 409 and "Invalid user id" in body["error"]
        assert rig.events.of(EventType.ACTION_FAILED)
        rig.slurm.fail_writes = ""
        code, body = await _call(api, "breaker_reset", _post("/api/v1/breaker/reset", {}))
        assert code == 200 and body["open"] is False
        rig.leader[0] = False
        code, body = await _call(api, "drain", _post("/api/v1/drain",
                                                     {"node": "gpu003", "reason": "x"}))
        assert code == 409 and "standby" in body["error"]
        rig.slurm.down = "Unable to contact slurm controller"
        rig.leader[0] = True
        d = await rig.engine.desk.request(ActionKind.DRAIN, "gpu003", reason="x")
        assert d.change is None and "Slurm unreachable" in d.refused
        # the memory (manual flag, ledger) was saved before the request returned
        saved = StateStore(tmp_path).load()
        assert not saved.node("gpu001").manual and saved.node("gpu001").ledger_reason == ""


async def test_the_guard_refuses_what_a_browser_or_a_stranger_could_send(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as rig:
        api = _api(rig)
        await eventually(lambda: rig.engine.reader.health.ok, within=1, what="healthy")
        cases = [
            (_post("/api/v1/drain", {"node": "gpu001", "reason": "x"},
                   Origin="https://evil.example"), 403, "web pages"),
            (_post("/api/v1/drain", {"node": "gpu001", "reason": "x"},
                   **{"Content-Type": "text/plain"}), 415, "application/json"),
            (_post("/api/v1/drain", {"node": "gpu001", "reason": "x"},
                   Authorization="Bearer wrong"), 403, "operator socket"),
        ]
        for req, status, text in cases:
            code, body = await _call(api, "drain", req)
            assert code == status and text in body["error"], (code, body)
        assert "DRAIN" not in rig.slurm.nodes["gpu001"].flags
        assert rig.events.actions("drain") == []
