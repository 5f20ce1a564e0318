"""A tiny HTTP client for the daemon's runbook API (stdlib only: it must work in a Prolog).

It talks to the operator's Unix socket when one is there (where the daemon learns the caller's
uid from the kernel, which is what lets ``drain``/``resume`` through), and to the TCP port
otherwise (reads; writes only with a bearer token).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

from syncd.config import ConfigError, load_file
from syncd.settings.daemon import DaemonSettings


class Unreachable(Exception):
    """The daemon did not answer (or its address is wrong): nothing is known about Slurm."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


class SlurmUnreachable(ApiError):
    """The daemon answered, and says it cannot read Slurm (HTTP 503, ``"daemon": "reachable"``)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the daemon answers: ``unix:/path`` or ``http://host:port``, and a token."""

    url: str
    token: str = ""

    def __str__(self) -> str:
        return self.url


def _daemon_settings(config: str | None) -> DaemonSettings:
    path = config or os.environ.get("SYNCD_CONFIG")
    if path:
        from syncd.cli.configs import overrides  # SYNCD_URL etc. are no config keys

        with contextlib.suppress(ConfigError):
            return load_file(path, overrides(os.environ)).daemon
    return DaemonSettings()


def _token(path: str | None) -> str:
    path = path or os.environ.get("SYNCD_TOKEN_FILE")
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise Unreachable(f"cannot read the token file {path}: {exc.strerror}") from None


def base_url(url: str | None, config: str | None, token_file: str | None = None) -> Target:
    """--url, else $SYNCD_URL, else the operator socket of the config (or the default one)
    when it exists, else daemon.listen."""
    token = _token(token_file)
    chosen = url or os.environ.get("SYNCD_URL")
    if chosen:
        return Target(chosen.rstrip("/"), token)
    d = _daemon_settings(config)
    sock = d.socket_path()
    if os.path.exists(sock):
        return Target(f"unix:{sock}", token)
    host, _, port = d.listen.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return Target(f"http://{host}:{port}", token)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    if target.url.startswith("unix:"):
        return _UnixConnection(target.url.removeprefix("unix:"), timeout)
    parts = urllib.parse.urlsplit(target.url)
    if parts.scheme == "http":
        return http.client.HTTPConnection(parts.netloc, timeout=timeout)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=timeout)
    raise Unreachable(f"{target}: the daemon URL must be unix:/path, http:// or https://")


def call(target: Target, path: str, body: dict[str, Any] | None = None,
         timeout: float = 10.0) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    prefix = "" if target.url.startswith("unix:") else urllib.parse.urlsplit(target.url).path
    conn = _connection(target, timeout)
    try:
        conn.request("POST" if body is not None else "GET", prefix + path,
                     body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(
            f"cannot reach the syncd daemon at {target} ({_why(exc)}): is it running? It is "
            "found through --url, $SYNCD_URL, or the operator socket and daemon.listen of "
            "--config / $SYNCD_CONFIG") from None
    finally:
        conn.close()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {"error": raw[:200].decode(errors="replace")}
    if not isinstance(data, dict):
        data = {"error": "unexpected answer"}
    if resp.status == 503 and data.get("daemon") == "reachable":
        raise SlurmUnreachable(resp.status, (
            f"the syncd daemon at {target} answers, but it cannot reach Slurm: "
            f"{data.get('error', resp.reason)}; check slurmctld (scontrol ping), SLURM_CONF "
            "and munge"), data)
    if resp.status >= 400:
        raise ApiError(resp.status, str(data.get("error", resp.reason)), data)
    return data


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__
