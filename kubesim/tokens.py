"""Continue tokens of paginated lists, encoded and checked the way the API server's etcd store does.

A token is unpadded URL-safe base64 of ``{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\\u0000"}``
(recording 94). A token that does not decode, or decodes to something else, is 400
``invalid continue token: continue key is not valid: ...`` with the reason Go's decoders give;
a token whose revision is newer than the store is etcd's 500 "mvcc: required revision is a
future revision" (both measured against a real kube-apiserver, docs/kubesim.md). ``rv`` -1
means "the newest revision" (the fresh token of a 410, recording 46).
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
from typing import Any

from kubesim import errors

Key = tuple[str, str]
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_PREFIX = "invalid continue token: continue key is not valid: "


def encode(rv: int, start: Key) -> str:
    start_text = f"{start[0]}/{start[1]}" if start[0] else start[1]
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_text + "\u0000"},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _invalid(reason: str) -> errors.ApiError:
    return errors.bad_request(_PREFIX + reason)


def _b64(token: str) -> bytes:
    """Go's base64.RawURLEncoding.DecodeString, with its error text."""
    kept = []
    for i, ch in enumerate(token):
        if ch in "\r\n":
            continue  # Go skips line breaks
        if ch not in _ALPHABET:
            raise _invalid(f"illegal base64 data at input byte {i}")
        kept.append(ch)
    if len(kept) % 4 == 1:
        raise _invalid(f"illegal base64 data at input byte {len(token) - 1}")
    text = "".join(kept)
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the checks above cover it
        raise _invalid(f"illegal base64 data: {exc}") from exc


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {json.dumps(value)}"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "null"


def _json(data: bytes) -> Any:
    """encoding/json.Unmarshal's outcome, with its error text for the usual failures."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise _invalid("invalid character in string literal") from exc
    except json.JSONDecodeError as exc:
        text = exc.doc
        if exc.pos >= len(text.rstrip()):
            raise _invalid("unexpected end of JSON input") from exc
        found = text[exc.pos]
        if exc.msg == "Extra data":
            raise _invalid(f"invalid character '{found}' after top-level value") from exc
        raise _invalid(f"invalid character '{found}' looking for beginning of value") from exc


def decode(token: str, namespaced: bool) -> tuple[int, Key]:
    """The revision and the key to continue after; raises the server's 400 for a bad token."""
    doc = _json(_b64(token))
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _invalid(f"json: cannot unmarshal {_go_type(doc).split()[0]} into Go value of "
                       "type storage.continueToken")
    fields = {"v": (str, "string"), "rv": (int, "int64"), "start": (str, "string")}
    for name, (kind, go) in fields.items():
        value = doc.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _invalid(f"json: cannot unmarshal {_go_type(value)} into Go struct field"
                           f" continueToken.{name} of type {go}")
    version, rv, start = doc.get("v") or "", doc.get("rv") or 0, doc.get("start") or ""
    if version != "meta.k8s.io/v1":
        raise _invalid(f"server does not recognize this encoded version {json.dumps(version)}")
    if rv == 0:
        raise _invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    if not start:
        raise _invalid("encoded start key empty (version meta.k8s.io/v1)")
    key = start if start.startswith("/") else "/" + start
    cleaned = posixpath.normpath(key)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if cleaned != key:
        raise _invalid(start)
    start = start.rstrip("\u0000")
    if namespaced and "/" in start:
        ns, name = start.split("/", 1)
        return rv, (ns, name)
    return rv, ("", start)


def future_revision() -> errors.ApiError:
    """What etcd's refusal turns into: a Status with code 500 and no reason."""
    return errors.ApiError(500, "", "etcdserver: mvcc: required revision is a future revision")
