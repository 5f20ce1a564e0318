"""The operator's Unix socket: the runbook API where the kernel tells syncd who is calling.

The socket file gets ``daemon.operator_socket_mode`` and group before anyone can connect to it
(it is bound, given its mode, and only then listens), and a stale file left by a killed daemon
is replaced, but never one another live daemon is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import socket
import stat

from aiohttp import web


def _prepare(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody serves it: a killed daemon's leftover
        return
    finally:
        probe.close()
    raise OSError(f"{path} is served by another running syncd")


def _gid(group: str) -> int:
    if group.isdigit():
        return int(group)
    return grp.getgrnam(group).gr_gid


def _bind(path: str, mode: int, group: str) -> socket.socket:
    _prepare(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if group:
            os.chown(path, -1, _gid(group))
        os.chmod(path, mode)
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    return sock


async def operator_socket(runner: web.AppRunner, path: str, *, mode: int, group: str) -> None:
    """Serve ``runner`` on a Unix socket at ``path`` (aiohttp calls listen() on it)."""
    sock = await asyncio.to_thread(_bind, path, mode, group)
    await web.SockSite(runner, sock).start()
