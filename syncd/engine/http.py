"""The HTTP endpoints: health, metrics, and the runbook API the ``syncd`` CLI talks to.

``/livez`` says the event loop turns; ``/readyz`` says this replica is useful (Kubernetes view
synced, Slurm reachable, the event spool writable, and a role: leader or standby). The
``/api/v1`` GET routes read the :class:`ReadModel` and never call Slurm. The routes that change
Slurm (drain, resume, breaker reset) pass the :class:`Guard` first; the same application is
served on TCP (``daemon.listen``) and on the operator's Unix socket.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from syncd.core.model import ActionKind
from syncd.core.validate import is_node_name
from syncd.engine.guard import Guard
from syncd.engine.metrics import Metrics
from syncd.engine.operator import OperatorDesk
from syncd.engine.readmodel import ReadModel

log = logging.getLogger(__name__)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, default=str), status=status,
                        content_type="application/json")


class Api:
    def __init__(self, model: ReadModel, desk: OperatorDesk, metrics: Metrics, guard: Guard, *,
                 identity: str, holder: Callable[[], str],
                 health: Callable[[], dict[str, tuple[bool, str]]] | None = None,
                 info: Callable[[], dict[str, object]] | None = None) -> None:
        self.model = model
        self.desk = desk
        self.metrics = metrics
        self.guard = guard
        self.identity = identity
        self.holder = holder
        self.health = health or (lambda: {})
        # Reported, never failing readiness: a broker down costs nothing while the spool holds.
        self.info = info or (lambda: {})

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([
            web.get("/livez", self.livez),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics_view),
            web.get("/api/v1/status", self.status),
            web.get("/api/v1/plan", self.plan),
            web.get("/api/v1/why/{node}", self.why),
            web.post("/api/v1/drain", self.drain),
            web.post("/api/v1/resume", self.resume),
            web.get("/api/v1/breaker", self.breaker),
            web.post("/api/v1/breaker/reset", self.breaker_reset),
        ])
        return app

    async def livez(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        m = self.model
        synced = m.kube.view().synced
        slurm_ok = m.reader.health.ok
        extra = self.health()
        ok = synced and slurm_ok and all(good for good, _ in extra.values())
        problems = [f"{name}: {why}" for name, (good, why) in extra.items() if not good]
        body = {"ready": ok, "kubernetes_synced": synced, "slurm_reachable": slurm_ok,
                "slurm_error": m.slurm_error(), "slurm_backend": m.reader.port.backend,
                "slurm_version": m.reader.port.slurm_version,
                **{f"{name}_ok": good for name, (good, _) in extra.items()},
                "checks": {name: why for name, (_, why) in extra.items()},
                "problems": problems, "role": m.role, "identity": self.identity,
                "leader": self.holder(), **self.info()}
        return _json(body, 200 if ok else 503)

    async def metrics_view(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    def _unreachable(self) -> web.Response:
        return _json({"error": f"Slurm unreachable: {self.model.slurm_error()}",
                      "daemon": "reachable"}, 503)

    async def status(self, _: web.Request) -> web.Response:
        i = self.model.inputs()
        if i is None:
            return self._unreachable()
        out = self.model.status(i)
        out["summary"].update(self.info())
        out["summary"]["checks"] = {name: {"ok": good, "detail": why}
                                    for name, (good, why) in self.health().items()}
        return _json(out)

    async def plan(self, _: web.Request) -> web.Response:
        i = self.model.inputs()
        return self._unreachable() if i is None else _json(self.model.plan_json(i))

    async def why(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        if not is_node_name(node):
            return _json({"error": "not a valid node name"}, 400)
        i = self.model.inputs()
        if i is None:
            return self._unreachable()
        out = self.model.why(i, node)
        if out is None:
            return _json({"error": f"{node}: not a Slurm node and not a Kubernetes node"}, 404)
        return _json(out)

    async def breaker(self, _: web.Request) -> web.Response:
        return _json(self.model.breaker())

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], str]:
        caller = self.guard.check(request)
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body, caller.name

    def _standby(self) -> web.Response | None:
        if self.model.is_leader():
            return None
        leader = self.holder() or "unknown (no replica holds the lease)"
        return _json({"error": f"this replica ({self.identity}) is a standby; the leader is "
                      f"{leader}: run the command in that pod"}, 409)

    async def drain(self, request: web.Request) -> web.Response:
        body, who = await self._body(request)
        if (standby := self._standby()) is not None:
            return standby
        node, reason = str(body.get("node", "")), str(body.get("reason", ""))
        if not is_node_name(node) or not reason:
            return _json({"error": "node (a valid Slurm name) and reason are required"}, 400)
        d = await self.desk.request(ActionKind.DRAIN, node, reason=reason, who=who)
        if d.change is None:
            return _json({"error": d.refused}, 409)
        log.info("operator drain", extra={"node": node, "reason": d.change.reason, "who": who})
        return _json({"node": node, "reason": d.change.reason, "done": True})

    async def resume(self, request: web.Request) -> web.Response:
        body, who = await self._body(request)
        if (standby := self._standby()) is not None:
            return standby
        node = str(body.get("node", ""))
        if not is_node_name(node):
            return _json({"error": "node (a valid Slurm name) is required"}, 400)
        d = await self.desk.request(ActionKind.RESUME, node, force=bool(body.get("force")),
                                    who=who)
        if d.change is None:
            return _json({"error": d.refused}, 409)
        log.info("operator resume", extra={"node": node, "warning": d.warning, "who": who})
        return _json({"node": node, "done": True, "warning": d.warning})

    async def breaker_reset(self, request: web.Request) -> web.Response:
        _, who = await self._body(request)
        if (standby := self._standby()) is not None:
            return standby
        await self.desk.reset_breaker(who=who)
        return _json({"open": False, "done": True})
