"""The aiohttp application: authentication (:mod:`kubesim.auth`), discovery, and dispatch of
the REST verbs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubesim import auth, discovery, errors, persist, rest, watching, writes
from kubesim.kinds import KINDS
from kubesim.scenario import add_scenario_routes
from kubesim.state import SIM_KEY, Sim, SimConfig, new_sim

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC = ("/version", "/healthz", "/livez", "/readyz")


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    sim.counters.requests += 1
    try:
        if request.path in _PUBLIC:
            return await handler(request)
        try:
            target = rest.route(request.path)
        except errors.ApiError:
            target = None
        who = auth.impersonate(sim.config, auth.authenticate(sim.config, request), request)
        auth.authorize(who, request, target)
        if sim.config.latency > 0 and not request.path.startswith("/sim/"):
            await asyncio.sleep(sim.config.latency)
        return await handler(request)
    except errors.ApiError as exc:
        return rest.json_response(exc.status(), status=exc.code)
    except rest.UnknownGroup:
        return web.Response(status=404, text="404 page not found\n",
                            content_type="text/plain", charset="utf-8")


async def _dispatch(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    path = request.path.rstrip("/") or "/"
    if path == "/version":
        return rest.json_response(discovery.VERSION)
    if path in ("/healthz", "/livez", "/readyz"):
        return web.Response(text="ok")
    if path == "/api":
        return rest.json_response(discovery.api_versions(sim.config.server_address))
    if path == "/apis":
        return rest.json_response(discovery.api_group_list())
    if path == "/api/v1":
        return rest.json_response(discovery.resource_list(""))
    if path == "/openapi/v2":
        return rest.json_response(discovery.openapi_v2())
    parts = path.split("/")
    if len(parts) == 3 and parts[1] == "apis":
        if parts[2] not in discovery.groups():
            raise rest.UnknownGroup(path)
        return rest.json_response({"kind": "APIGroup", "apiVersion": "v1",
                                   **discovery.api_group(parts[2])})
    if len(parts) == 4 and parts[1] == "apis" and parts[3] == "v1":
        if parts[2] not in discovery.groups():
            raise rest.UnknownGroup(path)
        return rest.json_response(discovery.resource_list(parts[2]))
    target = rest.route(path)
    if target is None:
        return web.Response(status=404, text="404 page not found\n",
                            content_type="text/plain", charset="utf-8")
    return await _resource(sim, target, request)


async def _resource(sim: Sim, target: rest.Target, request: web.Request) -> web.StreamResponse:
    kind = target.kind
    method = request.method
    sim.counters.by_verb[method] = sim.counters.by_verb.get(method, 0) + 1
    if method == "GET":
        if target.name:
            return rest.object_response(kind, rest.get_object(sim, target))
        if rest.is_true(request.query.get("watch")):
            return await watching.watch(sim, target, request)
        return await rest.list_objects(sim, target, request)
    raw = await request.read()
    manager = writes.manager_name(request.query.get("fieldManager", ""),
                                  request.headers.get("User-Agent", ""))
    if method == "POST" and not target.name:
        obj = writes.create(sim, target, writes.decode_body(kind, raw), manager=manager)
        return rest.object_response(kind, obj, 201)
    if not target.name:
        raise errors.ApiError(405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource")
    if method == "PUT":
        obj = writes.update(sim, target, writes.decode_body(kind, raw), manager=manager)
        return rest.object_response(kind, obj)
    if method == "PATCH":
        obj = writes.patch(sim, target, request.headers.get("Content-Type", ""), raw,
                           manager=manager)
        return rest.object_response(kind, obj)
    if method == "DELETE":
        grace = request.query.get("gracePeriodSeconds")
        options = writes.decode_body(kind, raw) if raw else None
        if grace is None and isinstance(options, dict) and "gracePeriodSeconds" in options:
            grace = str(options["gracePeriodSeconds"])
        obj, _gone = writes.delete(sim, target, int(grace) if grace is not None else None)
        if kind.plural == "pods":
            return rest.object_response(kind, obj)
        return rest.json_response(writes.delete_status(kind, obj))
    raise errors.ApiError(405, "MethodNotAllowed", "method not allowed")


def build_app(config: SimConfig | None = None, sim: Sim | None = None) -> web.Application:
    """A ready application: the saved cluster when ``config.state_file`` holds one, else a new
    cluster where only ``default`` and the system namespaces exist."""
    sim = sim or new_sim(config or SimConfig())
    if sim.config.state_file:
        persist.load(sim.store, sim.config.state_file)
    app = web.Application(middlewares=[_middleware], client_max_size=256 * 1024 * 1024)
    app[SIM_KEY] = sim
    add_scenario_routes(app)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    seed(sim)
    return app


def seed(sim: Sim) -> None:
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        if sim.store.get("namespaces", ("", ns)) is None:
            writes.create(sim, rest.Target(KINDS["namespaces"], None),
                          {"metadata": {"name": ns}}, manager="kube-apiserver")
