"""slurmrestd over HTTP (aiohttp) with a JWT: the I/O half of the ``rest`` backend.

Every request takes a token from the shared bucket, runs under ``slurm.timeout``, is counted
per kind, and maps failures to the port's typed errors (syncd.core.errors). Transient errors
(slurmrestd or slurmctld not answering) are retried like the CLI's; a non-idempotent request
(a job submit) only when it never reached the server. The data_parser version is the newest
the server offers (v0.0.40 or later: older ones have no node update, docs/slurm-backends.md),
found once in its OpenAPI document. Error numbers and HTTP codes: docs/slurm-backends.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from syncd.settings.slurm import SlurmSettings
from syncd.slurm.errors import (
    InvalidState,
    PermissionDenied,
    SlurmError,
    Timeout,
    UnknownNode,
    Unreachable,
    from_text,
)
from syncd.slurm.throttle import TokenBucket

#: The oldest data_parser with node updates (22.05's v0.0.38 serves GET only).
MIN_API = 40
_API_PATH = re.compile(r"/slurm/v0\.0\.(\d+)/nodes/?$")
# Slurm's error numbers (slurm_errno.h) as slurmrestd returns them, measured on 24.11/26.05.
_BY_ERRNO: Mapping[int, type[SlurmError]] = {
    2018: UnknownNode,        # Invalid node name specified
    2028: InvalidState,       # Invalid node state specified (24.11: RESUME of an idle node)
    2180: InvalidState,       # Invalid node state transition (26.05)
    2010: PermissionDenied,   # Invalid user id (slurmrestd without SLURM_JWT=daemon)
    1007: PermissionDenied,   # Protocol authentication error (a bad or expired token)
    1001: Unreachable,        # Communication connection failure (slurmctld down)
    5004: Timeout,            # Socket timed out on send/recv operation
}


class _NotSent(Unreachable):
    """The connection failed before the request left: safe to send even a submit again."""


class RestClient:
    """One aiohttp session to slurmrestd; :meth:`start` picks the API version."""

    def __init__(self, settings: SlurmSettings, *, bucket: TokenBucket | None = None,
                 history: int = 2000) -> None:
        self.settings = settings
        self.rest = settings.rest
        self._bucket = bucket or TokenBucket(rate=settings.calls_per_second,
                                             burst=settings.burst)
        self._session: aiohttp.ClientSession | None = None
        self._token: tuple[int, str] | None = None
        url = self.rest.url
        self._socket = url[len("unix:"):] if url.startswith("unix:") else ""
        self._base = "http://localhost" if self._socket else url.rstrip("/")
        #: ``v0.0.42`` etc., set by :meth:`start`.
        self.version = ""
        #: The Slurm release slurmrestd reports (``24.11.5``).
        self.release = ""
        self._meta_user = ""
        #: Requests per kind, retries included, and the latest (method, path), oldest first.
        self.calls: Counter[str] = Counter()
        self.history: deque[tuple[str, str]] = deque(maxlen=history)

    @property
    def user(self) -> str:
        """Who syncd acts as: ``rest.user``, else the token's ``sun`` claim. slurmrestd's own
        ``meta.client.user`` names its peer (root on the sandbox even for another user's
        token, measured on 24.11), so it is only the last resort."""
        if self.rest.user:
            return self.rest.user
        try:
            named = token_user(self._read_token())
        except PermissionDenied:
            named = ""
        return named or self._meta_user

    @property
    def executions(self) -> int:
        return sum(self.calls.values())

    def _read_token(self) -> str:
        path = self.rest.token_file
        if not path:
            token = os.environ.get(self.rest.token_env, "").strip()
            if not token:
                raise PermissionDenied(f"slurmrestd: no token (${self.rest.token_env} is empty "
                                       "and slurm.rest.token_file is not set)")
            return token.removeprefix("SLURM_JWT=")
        try:
            mtime = os.stat(path).st_mtime_ns
            if self._token is None or self._token[0] != mtime:
                with open(path, encoding="utf-8") as f:
                    text = f.read().strip().removeprefix("SLURM_JWT=")
                self._token = (mtime, text)
        except OSError as exc:
            raise PermissionDenied(f"slurmrestd: cannot read token file {path}: "
                                   f"{exc.strerror}") from None
        if not self._token[1]:
            raise PermissionDenied(f"slurmrestd: token file {path} is empty")
        return self._token[1]

    def _headers(self) -> dict[str, str]:
        headers = {"X-SLURM-USER-TOKEN": self._read_token()}
        if self.rest.user:
            headers["X-SLURM-USER-NAME"] = self.rest.user
        return headers

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            conn: aiohttp.BaseConnector = (aiohttp.UnixConnector(path=self._socket)
                                           if self._socket else aiohttp.TCPConnector(limit=8))
            self._session = aiohttp.ClientSession(connector=conn)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def path(self, tail: str) -> str:
        return f"/slurm/{self.version}/{tail}"

    async def request(self, kind: str, method: str, path: str, body: Any = None, *,
                      idempotent: bool = True) -> dict[str, Any]:
        """The JSON answer; raises a typed SlurmError (retrying transient ones)."""
        retry = retry_if_exception(
            (lambda e: isinstance(e, SlurmError) and e.transient) if idempotent
            else (lambda e: isinstance(e, _NotSent)))
        async for attempt in AsyncRetrying(
            retry=retry, stop=stop_after_attempt(self.settings.retries + 1),
            wait=wait_exponential(multiplier=self.settings.retry_wait,
                                  max=max(self.settings.retry_wait, 5.0)),
            reraise=True,
        ):
            with attempt:
                return await self._once(kind, method, path, body)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _once(self, kind: str, method: str, path: str, body: Any) -> dict[str, Any]:
        await self._bucket.acquire()
        self.calls[kind] += 1
        self.history.append((method, path))
        what = f"slurmrestd {method} {path}"
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._open().request(method, self._base + path, json=body,
                                                headers=self._headers()) as resp:
                    text = await resp.text()
                    status = resp.status
        except TimeoutError:
            raise Timeout(f"{what}: no answer within {self.settings.timeout:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            raise _NotSent(f"{what}: cannot connect: {exc.os_error or exc}") from None
        except aiohttp.ClientResponseError as exc:
            raise _salvage(what, exc) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Unreachable(f"{what}: {type(exc).__name__}: {exc}") from None
        return _answer(what, status, text)

    async def start(self) -> None:
        """Pick the data_parser version and learn the Slurm release; raises SlurmError."""
        offered = await self._offered()
        if self.rest.api_version:
            if self.rest.api_version not in offered:
                raise SlurmError(f"slurmrestd does not offer {self.rest.api_version} "
                                 f"(it offers {', '.join(offered) or 'none'})")
            self.version = self.rest.api_version
        else:
            usable = [v for v in offered if int(v.rsplit(".", 1)[1]) >= MIN_API]
            if not usable:
                raise SlurmError(
                    f"slurmrestd offers only {', '.join(offered) or 'no'} data_parser "
                    f"versions; syncd needs v0.0.{MIN_API} or newer (24.11 serves v0.0.42): older "
                    "APIs cannot update nodes (docs/slurm-backends.md)")
            self.version = usable[-1]
        ping = await self.request("ping", "GET", self.path("ping/"))
        meta = ping.get("meta") or {}
        self.release = str((meta.get("slurm") or {}).get("release") or "")
        self._meta_user = str((meta.get("client") or {}).get("user") or "")

    async def _offered(self) -> list[str]:
        """API versions, oldest first, from the server's OpenAPI document."""
        doc = await self.request("openapi", "GET", "/openapi/v3")
        found = {int(m.group(1)) for p in doc.get("paths") or {}
                 if (m := _API_PATH.search(p)) is not None}
        return [f"v0.0.{n}" for n in sorted(found)]


def token_user(token: str) -> str:
    """The user a Slurm JWT names (its ``sun`` claim; https://slurm.schedmd.com/jwt.html), or
    empty. The signature is slurmctld's to check, not syncd's."""
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return ""
    return str(claims.get("sun") or "") if isinstance(claims, dict) else ""


_ERRNO = re.compile(r'error_number\W+(\d+)')
_ERROR = re.compile(r'\\?"error\\?": \\?"([^"\\]*)')


def _salvage(what: str, exc: aiohttp.ClientResponseError) -> SlurmError:
    """26.05's slurmrestd follows an error's JSON answer with a second, plain-text answer on the
    same connection (measured, docs/slurm-backends.md), which aiohttp refuses as "Data after
    `Connection: close`" while the first answer's text is in the message: map that one."""
    text = str(exc.message)
    number = _ERRNO.search(text)
    error = _ERROR.search(text)
    if "Data after" not in text or number is None:
        return Unreachable(f"{what}: bad HTTP answer: {text[:200]}")
    msg = error.group(1) if error else "unknown error"
    cls = _BY_ERRNO.get(int(number.group(1))) or type(from_text(msg, command=what))
    return cls(f"{what}: {msg} (error {number.group(1)})")


def _answer(what: str, status: int, text: str) -> dict[str, Any]:
    """The decoded body of a 2xx answer, else the error it carries."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = None
    if status == 401:
        raise PermissionDenied(f"{what}: HTTP 401 {text.strip()[:200] or 'Authentication failure'}"
                               " (token missing, expired or not signed by this cluster)")
    errors = [e for e in (data or {}).get("errors") or [] if isinstance(e, dict)] \
        if isinstance(data, dict) else []
    real = [e for e in errors if e.get("error_number")]
    if real or status >= 400 or not isinstance(data, dict):
        first = real[0] if real else (errors[0] if errors else {})
        msg = str(first.get("error") or first.get("description") or text.strip()[:200]
                  or f"HTTP {status}")
        number = int(first.get("error_number") or 0)
        cls = _BY_ERRNO.get(number)
        if cls is None:
            if status == 404:
                raise SlurmError(f"{what}: HTTP 404: {msg}")
            err = from_text(msg, command=what)
            if type(err) is SlurmError and status in (502, 503, 504):
                raise Unreachable(f"{what}: HTTP {status}: {msg}")
            raise type(err)(f"{what}: HTTP {status}: {msg} (error {number})")
        raise cls(f"{what}: HTTP {status}: {msg} (error {number})")
    return data
