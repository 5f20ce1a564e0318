"""The aiohttp application: authentication, discovery, and dispatch of the REST verbs.

Authentication is bearer tokens only: the admin token may do anything, the read-only token
may get/list/watch; a missing token is 403 as ``system:anonymous`` (recording 70) or 401 when
anonymous auth is off (70b); an unknown token is 401 (71).
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-requests
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from syncd.sim import discovery, errors, rest, watching, writes
from syncd.sim.kinds import KINDS
from syncd.sim.scenario import add_scenario_routes
from syncd.sim.state import SIM_KEY, Sim, SimConfig, new_sim

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC = ("/version", "/healthz", "/livez", "/readyz")
_READ = ("get", "list", "watch")


def _verb(request: web.Request, target: rest.Target | None) -> str:
    method = request.method
    if method == "GET":
        if target is not None and not target.name:
            return "watch" if rest.is_true(request.query.get("watch")) else "list"
        return "get"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower())


def _forbidden(user: str, verb: str, target: rest.Target | None, path: str) -> errors.ApiError:
    if target is None:
        return errors.ApiError(403, "Forbidden",
                               f'forbidden: User "{user}" cannot {verb} path "{path}"', {})
    kind = target.kind
    what = errors.qualified(kind.plural, kind.group)
    subject = f'{what} "{target.name}"' if target.name else what
    scope = (f'in the namespace "{target.namespace}"' if target.namespace
             else "at the cluster scope")
    details: dict[str, str] = {}
    if target.name:
        details["name"] = target.name
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.plural
    return errors.ApiError(
        403, "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{kind.plural}" in API '
        f'group "{kind.group}" {scope}', details)


def _authorize(sim: Sim, request: web.Request, target: rest.Target | None) -> None:
    config = sim.config
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    verb = _verb(request, target)
    if not token:
        if not config.anonymous:
            raise errors.UNAUTHORIZED
        raise _forbidden("system:anonymous", verb, target, request.path)
    if token == config.token:
        return
    if config.readonly_token and token == config.readonly_token:
        if verb in _READ and not request.path.startswith("/sim/"):
            return
        raise _forbidden("readonly", verb, target, request.path)
    raise errors.UNAUTHORIZED


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
        _authorize(sim, request, target)
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
    if method == "POST" and not target.name:
        obj = writes.create(sim, target, writes.decode_body(kind, raw))
        return rest.object_response(kind, obj, 201)
    if not target.name:
        raise errors.ApiError(405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource")
    if method == "PUT":
        obj = writes.update(sim, target, writes.decode_body(kind, raw))
        return rest.object_response(kind, obj)
    if method == "PATCH":
        obj = writes.patch(sim, target, request.headers.get("Content-Type", ""), raw)
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
    """A ready application; ``default`` and the system namespaces exist, as on a new cluster."""
    sim = sim or new_sim(config or SimConfig())
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
                          {"metadata": {"name": ns}})
