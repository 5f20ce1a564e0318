"""Running the simulator: in-process (tests) or as ``python -m kubesim`` in its own process.

HTTPS uses a throw-away self-signed certificate made with the ``openssl`` CLI; the kubeconfig
written next to it carries the certificate as its CA, so kubectl and kubernetes-asyncio verify
the connection the normal way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from aiohttp import web

from kubesim import persist
from kubesim.app import build_app
from kubesim.state import SIM_KEY, Sim, SimConfig


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost; raises RuntimeError without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("HTTPS needs the openssl command")
    cert, key = directory / "sim.crt", directory / "sim.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=kubesim",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def kubeconfig_text(server: str, token: str, ca_file: Path | None = None,
                    name: str = "kubesim") -> str:
    cluster: dict[str, object] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


class SimServer:
    """One simulator on a TCP port; ``await start()`` then use ``url``/``write_kubeconfig``."""

    def __init__(self, config: SimConfig | None = None, *, tls: bool = False) -> None:
        self.config = config or SimConfig()
        self.tls = tls
        self.app = build_app(self.config)
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.cert: Path | None = None
        self.port = 0
        self.host = "127.0.0.1"

    @property
    def sim(self) -> Sim:
        return self.app[SIM_KEY]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        ssl_context = None
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="kubesim-")
            cert, key = await asyncio.to_thread(make_certificate, Path(self._tmp.name))
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(cert, key)
            self.cert = cert
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.host, self.port = host, int(sockets[0].getsockname()[1])
        self.config.server_address = f"{self.host}:{self.port}"
        return self.url

    def kubeconfig(self, token: str | None = None) -> str:
        return kubeconfig_text(self.url, token or self.config.token, self.cert)

    def write_kubeconfig(self, path: Path | str, token: str | None = None) -> Path:
        target = Path(path)
        target.write_text(self.kubeconfig(token))
        target.chmod(0o600)
        return target

    async def stop(self) -> None:
        """Close every watch and the port; write the state file when there is one."""
        self.sim.store.drop_watches()
        if self.config.state_file:
            await asyncio.to_thread(persist.save, self.sim.store, self.config.state_file)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


@contextlib.contextmanager
def start_sim_process(
    *args: str, timeout: float = 60.0, log: Path | None = None
) -> Iterator[tuple[int, str]]:
    """Run ``python -m kubesim --listen 127.0.0.1:0 ARGS``; yields (pid, url), stops it after.

    A separate process keeps the simulator's memory and CPU out of the caller's measurements;
    a ``--listen`` in ARGS wins (a restart test reuses its port). It is stopped with SIGTERM,
    so a ``--state-file`` is written before it exits.
    ``log`` receives its stderr (watches dropped at shutdown print tracebacks there).
    """
    with contextlib.ExitStack() as files:
        err = files.enter_context(open(log, "ab")) if log is not None else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubesim", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        url = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("KUBESIM_URL="):
                url = line.strip().split("=", 1)[1]
                break
        if not url:
            raise RuntimeError(f"simulator did not start (exit code {proc.poll()})")
        yield proc.pid, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
