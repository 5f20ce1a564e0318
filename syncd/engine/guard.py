"""Who may change Slurm through syncd: the operator API is a privilege boundary.

syncd runs with rights to drain and resume any node, so a request to change Slurm must come
from someone who already has those rights. Writes are accepted only

- on the Unix socket, from a peer whose uid (read with ``SO_PEERCRED``, which the kernel fills
  in and the peer cannot forge; unix(7)) is root, syncd's own uid, or listed in
  ``daemon.operator_uids``; or
- on TCP with ``Authorization: Bearer <token>`` matching ``daemon.operator_token_file``.

Every write must also be ``Content-Type: application/json`` and carry no ``Origin`` header:
a browser can send a cross-site ``text/plain`` POST without a preflight, never a JSON one
without asking, and no legitimate client of this API is a web page.
"""

from __future__ import annotations

import hmac
import json
import os
import pwd
import socket
import struct
from collections.abc import Collection
from dataclasses import dataclass

from aiohttp import web

_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as recorded in the events of what they did."""

    uid: int | None
    how: str

    @property
    def name(self) -> str:
        if self.uid is None:
            return self.how
        try:
            user = pwd.getpwuid(self.uid).pw_name
        except KeyError:
            user = "?"
        return f"uid={self.uid}({user}) via {self.how}"


def peer_uid(request: web.Request) -> int | None:
    """The uid of the process at the other end of a Unix socket, or None on TCP."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


class Guard:
    def __init__(self, *, allowed_uids: Collection[int], token: str = "") -> None:
        self.allowed = frozenset({0, os.geteuid(), *allowed_uids})
        self._token = token

    def check(self, request: web.Request) -> Caller:
        """The caller, if it may change Slurm; raises an HTTP error that says why not."""
        if "Origin" in request.headers:
            raise _refuse(web.HTTPForbidden, "requests from web pages are refused")
        if request.content_type != "application/json":
            raise _refuse(web.HTTPUnsupportedMediaType,
                          "changes must be sent as Content-Type: application/json")
        uid = peer_uid(request)
        if uid is not None:
            if uid in self.allowed:
                return Caller(uid, "socket")
            raise _refuse(web.HTTPForbidden, (
                f"uid {uid} may not change Slurm through syncd (allowed: "
                f"{', '.join(str(u) for u in sorted(self.allowed))}; see "
                "daemon.operator_uids)"))
        given = request.headers.get("Authorization", "")
        if self._token and hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
            return Caller(None, "token")
        raise _refuse(web.HTTPForbidden, (
            "changes are accepted on the operator socket (run the command inside the syncd "
            "container) or with the bearer token of daemon.operator_token_file"))


def _refuse(cls: type[web.HTTPException], text: str) -> web.HTTPException:
    return cls(text=json.dumps({"error": text}), content_type="application/json")
