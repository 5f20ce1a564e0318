"""The operator socket's file (mode, stale leftovers, a live one) and the log formats, in
process on fake time. Connecting as another uid is tested in tests/e2e/test_operator_api.py."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from pathlib import Path

import pytest
from aiohttp import web

from syncd.engine.logs import JsonFormatter, TextFormatter, setup
from syncd.engine.sockets import operator_socket

pytestmark = pytest.mark.looptime


async def _runner() -> web.AppRunner:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    return runner


async def test_the_socket_gets_its_mode_replaces_a_leftover_and_refuses_a_live_one(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "run" / "operator.sock")
    os.makedirs(os.path.dirname(path))
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(path)  # bound, never listening: what a SIGKILLed daemon leaves behind
    leftover.close()
    runner = await _runner()
    try:
        await operator_socket(runner, path, mode=0o600, group="")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        other = await _runner()
        with pytest.raises(OSError, match="another running syncd"):
            await operator_socket(other, path, mode=0o660, group="0")
        await other.cleanup()
    finally:
        await runner.cleanup()
    plain = tmp_path / "not-a-socket"
    plain.write_text("")
    with pytest.raises(OSError, match="not a socket"):
        await operator_socket(await _runner(), str(plain), mode=0o660, group="")
    grouped = str(tmp_path / "g.sock")
    runner = await _runner()
    await operator_socket(runner, grouped, mode=0o660, group="0")
    assert os.stat(grouped).st_gid == 0 and stat.S_IMODE(os.stat(grouped).st_mode) == 0o660
    await runner.cleanup()


def test_json_and_text_logs_carry_the_context() -> None:
    rec = logging.LogRecord("syncd.x", logging.ERROR, __file__, 1, "drain %s", ("gpu001",), None)
    rec.node = "gpu001"
    out = json.loads(JsonFormatter().format(rec))
    assert out["msg"] == "drain gpu001" and out["node"] == "gpu001" and out["level"] == "error"
    assert "node=gpu001" in TextFormatter().format(rec)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec.exc_info = sys.exc_info()
    assert "boom" in json.loads(JsonFormatter().format(rec))["error"]
    assert "boom" in TextFormatter().format(rec)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup("text", "debug")
        assert isinstance(root.handlers[0].formatter, TextFormatter)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
