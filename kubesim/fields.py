"""The API server's field selector parser, written for the simulator alone (see kubesim.labels).

It follows k8s.io/apimachinery/pkg/fields (https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/):
terms are split at commas that no backslash escapes, an empty term is skipped, and each term is
split at its first ``!=``, ``==`` or ``=`` (tried in that order at every position, so the
field name itself cannot hold one). Nothing is trimmed: ``a = b`` names the field ``"a "``.
In a value, ``\\``, ``,`` and ``=`` must be escaped with a backslash; any other escape is an
error. Terms are sorted before they are checked, so with two unsupported fields the error
names the first in sort order, as the server's does (recordings 15, 16, 18, 19, 32-34).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubesim.labels import SelectorError

_OPERATORS = ("!=", "==", "=")


@dataclass(frozen=True, slots=True)
class FieldTerm:
    field: str
    equal: bool  # False for "!="
    value: str


def split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def unescape_value(text: str) -> str:
    if not any(c in text for c in "\\,="):
        return text
    out, escaped = [], False
    for ch in text:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(
                    f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str) -> tuple[FieldTerm, ...]:
    """The terms of ``fieldSelector`` in the server's (sorted) order; all must hold."""
    terms: list[FieldTerm] = []
    for part in sorted(split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, raw = split
        terms.append(FieldTerm(field, op != "!=", unescape_value(raw)))
    return tuple(terms)
