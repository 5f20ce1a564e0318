"""Who a request is (bearer token, impersonation) and whether it may do what it asks.

Authentication is bearer tokens only: the admin token is ``config.admin_user`` and may do
anything (it stands for ``system:masters``), the read-only token is ``config.readonly_user`` and
may get/list/watch; a missing token is 403 as ``system:anonymous`` (recording 70) or 401 when
anonymous auth is off (70b); an unknown token is 401 (71).
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-requests

Impersonation (``Impersonate-User``, ``Impersonate-Group``,
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation)
needs the ``impersonate`` right, which only the admin has; the request is then judged as the
impersonated user: the admin and read-only users keep their rights, a ``system:masters``
group gives every right, and any other user has no RBAC rights at all, so each resource
request is 403 ``User "nobody" cannot list resource "nodes"`` (measured against a real
kube-apiserver, docs/kubesim.md; body shape of recording 73). Discovery stays open to every
authenticated user, as the default ``system:discovery`` role allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from kubesim import errors
from kubesim.rest import Target, is_true
from kubesim.state import SimConfig

ADMIN, READONLY, NOTHING = "admin", "readonly", "nothing"
_READ = ("get", "list", "watch")
_DISCOVERY = ("/api", "/apis", "/openapi", "/version")


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    rights: str
    authenticated: bool = True


def verb(request: web.Request, target: Target | None) -> str:
    method = request.method
    if method == "GET":
        if target is not None and not target.name:
            return "watch" if is_true(request.query.get("watch")) else "list"
        return "get"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower())


def forbidden(user: str, verb_: str, target: Target | None, path: str) -> errors.ApiError:
    """The RBAC denial: ``<resource> ["name"] is forbidden: User "u" cannot <verb> ...``."""
    if target is None:
        return errors.ApiError(403, "Forbidden",
                               f'forbidden: User "{user}" cannot {verb_} path "{path}"', {})
    kind = target.kind
    resource = f"{kind.plural}/{target.sub}" if target.sub else kind.plural
    return _denied(user, verb_, resource, kind.group, target.name, target.namespace or "")


def _denied(user: str, verb_: str, resource: str, group: str, name: str,
            namespace: str) -> errors.ApiError:
    what = errors.qualified(resource, group)
    subject = f'{what} "{name}"' if name else what
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    details: dict[str, str] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return errors.ApiError(
        403, "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb_} resource "{resource}" in API '
        f'group "{group}" {scope}', details)


def authenticate(config: SimConfig, request: web.Request) -> Identity:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token:
        if not config.anonymous:
            raise errors.UNAUTHORIZED
        return Identity("system:anonymous", NOTHING, authenticated=False)
    if token == config.token:
        return Identity(config.admin_user, ADMIN)
    if config.readonly_token and token == config.readonly_token:
        return Identity(config.readonly_user, READONLY)
    raise errors.UNAUTHORIZED


def impersonate(config: SimConfig, who: Identity, request: web.Request) -> Identity:
    """The identity the request acts as; raises 403 when ``who`` may not impersonate."""
    user = request.headers.get("Impersonate-User", "")
    groups = [g for g in request.headers.getall("Impersonate-Group", []) if g]
    if not user:
        if groups:
            message = (f"Internal error occurred: requested impersonation of groups "
                       f"{groups} without impersonating a user")
            raise errors.ApiError(500, "InternalError", message,
                                  {"causes": [{"message": message[len("Internal error "
                                                                      "occurred: "):]}]})
        return who
    for resource, name in [("users", user), *(("groups", g) for g in groups)]:
        if who.rights != ADMIN:
            raise _denied(who.user, "impersonate", resource, "", name, "")
    if user == "system:anonymous":
        return Identity(user, NOTHING, authenticated=False)
    if "system:masters" in groups or user == config.admin_user:
        return Identity(user, ADMIN)
    if user == config.readonly_user:
        return Identity(user, READONLY)
    return Identity(user, NOTHING)


def authorize(who: Identity, request: web.Request, target: Target | None) -> None:
    verb_ = verb(request, target)
    scenario = request.path.startswith("/sim/")
    if who.rights == ADMIN:
        return
    if who.rights == READONLY and verb_ in _READ and not scenario:
        return
    if (who.authenticated and target is None and not scenario and verb_ == "get"
            and request.path.startswith(_DISCOVERY)):
        return
    raise forbidden(who.user, verb_, target, request.path)
