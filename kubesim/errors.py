"""Kubernetes ``Status`` error bodies, shaped like the API server's (see tests/data/k8s-golden).

Every JSON error of the real server is a ``Status`` object; details name the *plural resource*
(``nodes``), except for 422 Invalid, where they name the Kind (``Node``). The core group carries no
``details.group``. https://kubernetes.io/docs/reference/using-api/api-concepts/#status-objects
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised by handlers; the app turns it into a Status response with ``code``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": self.metadata,
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # an error the server did not classify has no reason (StatusReasonUnknown)
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, resource: str, group: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    out["kind"] = resource
    return out


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
        _details(name, resource, group),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
        _details(name, resource, group),
    )


def conflict(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        _details(name, resource, group),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, name: str, causes: list[dict[str, str]], *, resource: str = "",
            group: str = "") -> ApiError:
    """422 Invalid; ``causes`` are ``{reason, message, field}``."""
    what = f'{qualified(resource, group)} "{name}"' if resource else f'{kind} "{name}"'
    text = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource or kind
    details["causes"] = causes
    return ApiError(422, "Invalid", f"{what} is invalid: {text}", details)


def expired(message: str, continue_token: str = "") -> ApiError:
    meta = {"continue": continue_token} if continue_token else None
    return ApiError(410, "Expired", message, None, meta)


def gone_status(message: str) -> dict[str, Any]:
    """The object of a watch ``ERROR`` event for a too-old resourceVersion."""
    return ApiError(410, "Expired", message).status()


def too_large(requested: int, current: int) -> ApiError:
    return ApiError(
        504, "Timeout",
        f"Timeout: Too large resource version: {requested}, current: {current}",
        {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
         "retryAfterSeconds": 1},
    )


UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")
NOT_FOUND_RESOURCE = ApiError(
    404, "NotFound", "the server could not find the requested resource", {})
