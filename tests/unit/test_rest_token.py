"""The rest backend's pure parts: who it acts as (the JWT's ``sun`` claim; slurmrestd's
meta.client.user names its peer, measured as root on 24.11 for a token of nobody), and its
slurmctld restart marker."""

from __future__ import annotations

import base64
import json

from syncd.slurm.rest_backend import boot_marker
from syncd.slurm.rest_client import token_user


def _jwt(claims: object) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_the_token_names_its_user() -> None:
    assert token_user(_jwt({"exp": 1796175863, "iat": 1796174063, "sun": "nobody"})) == "nobody"
    assert token_user(_jwt({"sun": "slurm"})) == "slurm"


def test_a_token_without_a_user_or_not_a_jwt_names_nobody() -> None:
    assert token_user(_jwt({"exp": 1})) == ""
    assert token_user(_jwt(["not", "a", "map"])) == ""
    assert token_user("not-a-token") == ""
    assert token_user("a.%%%.c") == ""


def test_the_boot_marker_ignores_slurmctlds_first_second_and_its_daily_reset() -> None:
    started = 1796175931  # 2026-12-01T23:45:31Z
    assert boot_marker(0, 0) == 0  # not set yet: syncd says "starting"
    assert boot_marker(0, started) == started
    assert boot_marker(started, 0) == started
    assert boot_marker(started, started) == started
    midnight = started - started % 86400 + 86400
    assert boot_marker(started, midnight + 3) == started  # the daily statistics reset
    assert boot_marker(started, midnight + 600) == midnight + 600  # a restart
    assert boot_marker(started, started - 86400 * 2) == started - 86400 * 2  # another slurmctld
