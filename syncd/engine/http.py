"""The one HTTP port: health, metrics, and the runbook API the ``syncd`` CLI talks to.

``/livez`` says the event loop turns; ``/readyz`` says this replica is useful (Kubernetes view
synced, Slurm reachable, and a role: leader or standby). The ``/api/v1`` routes serve on-call:
they read live state and route operator writes through the same lock and ownership rules as
the planner. The port is often bound to the pod IP for probes and scraping, so the routes that
change Slurm (drain, resume, breaker reset) answer only on loopback: on-call runs them inside
the pod (``kubectl exec ... -- syncd drain ...``), where being there already means being
trusted with SlurmUser's rights.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from syncd.core.explain import detail, report
from syncd.core.model import ActionKind
from syncd.core.validate import is_node_name
from syncd.engine.metrics import Metrics
from syncd.engine.reconciler import Reconciler

log = logging.getLogger(__name__)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, default=str), status=status,
                        content_type="application/json")


def _usable(row: dict[str, object]) -> int:
    gpus = row["gpus"]
    return int(gpus["usable"]) if isinstance(gpus, dict) else 0


class Api:
    def __init__(self, reconciler: Reconciler, metrics: Metrics, *, identity: str,
                 holder: Callable[[], str]) -> None:
        self.r = reconciler
        self.metrics = metrics
        self.identity = identity
        self.holder = holder

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

    def _role(self) -> str:
        return "leader" if self.r.is_leader() else "standby"

    async def livez(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        synced = self.r.kube.view().synced
        checks = {
            "kubernetes_synced": synced,
            "slurm_reachable": self.r.status.slurm_ok,
            "role": self._role(),
            "identity": self.identity,
            "leader": self.holder(),
        }
        ok = synced and self.r.status.slurm_ok
        return _json({"ready": ok, **checks, "slurm_error": self.r.status.slurm_error},
                     200 if ok else 503)

    async def metrics_view(self, _: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(self, request: web.Request) -> web.Response:
        k8s = self.r.kube.view()
        slurm = await self.r.read_slurm()
        if not slurm.ok:
            return _json({"error": f"Slurm unreachable: {self.r.status.slurm_error}"}, 503)
        now = self.r.clock()
        names = sorted(set(slurm.nodes) | set(k8s.nodes))
        rows = [report(n, k8s, slurm, self.r.policy, self.r.memory, now).to_json()
                for n in names]
        b = self.r.memory.breaker
        summary = {
            "nodes": len(names),
            "drifted": sum(1 for r in rows if r["drift"]),
            "drained_by_syncd": sum(1 for r in rows if str(r["owner"]).startswith("syncd")),
            "drained_by_others": sum(1 for r in rows
                                     if r["owner"] and not str(r["owner"]).startswith("syncd")),
            "gpus_usable": sum(_usable(r) for r in rows),
            "kubernetes_synced": k8s.synced,
            "breaker": "open" if b.open else "closed",
            "role": self._role(),
            "dry_run": self.r.dry_run,
            "problems": list(k8s.problems)[:20],
        }
        return _json({"summary": summary, "nodes": rows, "time": now})

    async def plan(self, _: web.Request) -> web.Response:
        result = await self.r.preview()
        if result is None:
            return _json({"error": f"Slurm unreachable: {self.r.status.slurm_error}"}, 503)
        p = result[0]
        return _json({
            "changes": [{"node": c.node, "action": c.kind.value, "why": c.why,
                         "reason": c.reason, "features": list(c.features),
                         "hold_gpus": c.hold_gpus} for c in p.changes],
            "withheld": [{"node": c.node, "action": c.kind.value, "why": c.why}
                         for c in p.withheld],
            "slurm_calls": [{"action": a.kind.value, "hostlist": a.hostlist,
                             "nodes": len(a.nodes)} for a in p.actions],
            "breaker": {"open": p.memory.breaker.open, "why": p.memory.breaker.why},
            "dry_run": self.r.dry_run,
            "role": self._role(),
        })

    async def why(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        if not is_node_name(node):
            return _json({"error": "not a valid node name"}, 400)
        k8s = self.r.kube.view()
        slurm = await self.r.read_slurm()
        if not slurm.ok:
            return _json({"error": f"Slurm unreachable: {self.r.status.slurm_error}"}, 503)
        if node not in slurm.nodes and node not in k8s.nodes:
            return _json({"error": f"{node}: not a Slurm node and not a Kubernetes node"}, 404)
        now = self.r.clock()
        m = self.r.memory.node(node)
        return _json({
            "report": report(node, k8s, slurm, self.r.policy, self.r.memory, now).to_json(),
            "memory": m.to_json(),
            "history": [{"time": t, "text": text}
                        for t, text in self.r.history.get(node, ())],
            **detail(node, k8s, slurm),
        })

    @staticmethod
    def _local(request: web.Request) -> bool:
        try:
            addr = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            return addr.ipv4_mapped.is_loopback
        return addr.is_loopback

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not self._local(request):
            raise web.HTTPForbidden(
                text=json.dumps({"error": "changes are accepted on loopback only: run the "
                                 "command inside the syncd container"}),
                content_type="application/json")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body

    def _standby(self) -> web.Response | None:
        if self.r.is_leader():
            return None
        leader = self.holder() or "unknown (no replica holds the lease)"
        return _json({"error": f"this replica ({self.identity}) is a standby; the leader is "
                      f"{leader}: run the command in that pod"}, 409)

    async def drain(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if (standby := self._standby()) is not None:
            return standby
        node, reason = str(body.get("node", "")), str(body.get("reason", ""))
        if not is_node_name(node) or not reason:
            return _json({"error": "node (a valid Slurm name) and reason are required"}, 400)
        d = await self.r.operator(ActionKind.DRAIN, node, reason=reason)
        if d.change is None:
            return _json({"error": d.refused}, 409)
        log.info("operator drain", extra={"node": node, "reason": d.change.reason})
        return _json({"node": node, "reason": d.change.reason, "done": True})

    async def resume(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if (standby := self._standby()) is not None:
            return standby
        node = str(body.get("node", ""))
        if not is_node_name(node):
            return _json({"error": "node (a valid Slurm name) is required"}, 400)
        d = await self.r.operator(ActionKind.RESUME, node, force=bool(body.get("force")))
        if d.change is None:
            return _json({"error": d.refused}, 409)
        log.info("operator resume", extra={"node": node, "warning": d.warning})
        return _json({"node": node, "done": True, "warning": d.warning})

    async def breaker(self, _: web.Request) -> web.Response:
        b = self.r.memory.breaker
        now = time.time()
        window = self.r.policy.breaker.window
        recent = [{"node": n, "gpus": g, "age": round(now - t)} for t, n, g in b.drains
                  if now - t < window]
        return _json({"open": b.open, "why": b.why, "opened_at": b.opened_at or None,
                      "withholding_stale": b.withholding_stale, "recent_drains": recent,
                      "limits": {"max_drain_percent": self.r.policy.breaker.max_drain_percent,
                                 "max_drain_gpus": self.r.policy.breaker.max_drain_gpus,
                                 "window": window}})

    async def breaker_reset(self, request: web.Request) -> web.Response:
        await self._body(request)
        if (standby := self._standby()) is not None:
            return standby
        await self.r.reset_breaker()
        return _json({"open": False, "done": True})
