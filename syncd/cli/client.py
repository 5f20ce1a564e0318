"""A tiny HTTP client for the daemon's runbook API (stdlib only: it must work in a Prolog)."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from typing import Any

from syncd.config import ConfigError, load_file


class Unreachable(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def base_url(url: str | None, config: str | None) -> str:
    """--url, else $SYNCD_URL, else daemon.listen from the config file, else localhost:8080."""
    if url:
        return url.rstrip("/")
    if os.environ.get("SYNCD_URL"):
        return os.environ["SYNCD_URL"].rstrip("/")
    listen = "127.0.0.1:8080"
    path = config or os.environ.get("SYNCD_CONFIG")
    if path:
        with contextlib.suppress(ConfigError):
            listen = load_file(path).daemon.listen
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def call(base: str, path: str, body: dict[str, Any] | None = None,
         timeout: float = 10.0) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    if not base.startswith(("http://", "https://")):
        raise Unreachable(f"{base}: the daemon URL must be http:// or https://")
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        base + path, data=data, method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (our URL)
            out: dict[str, Any] = json.loads(resp.read())
            return out
    except urllib.error.HTTPError as exc:
        try:
            message = str(json.loads(exc.read()).get("error", exc.reason))
        except ValueError:
            message = str(exc.reason)
        raise ApiError(exc.code, message) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"syncd at {base} unreachable: {reason}") from None
