"""The API server's label selector parser, written for the simulator alone.

The simulator must not share a parser with the client it tests (syncd parses selectors too):
a bug in a shared parser would be on both sides of the wire and no test could see it. This one
follows the grammar and the error wording of k8s.io/apimachinery/pkg/labels (the version of the
recorded server, 1.24; tests/data/k8s-golden/79 is its answer to ``a===b``):

    selector    ::= requirement ("," requirement)*
    requirement ::= ["!"] KEY [ ("in" | "notin") "(" VALUES ")"
                              | ("=" | "==" | "!=" | ">" | "<") VALUE ]

https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors.
The lexer takes the longest operator it knows (``===`` is ``==`` then ``=``); ``in``/``notin``
are keywords only where an operator may stand, so ``x in (in)`` is fine; blanks separate
tokens; keys must be qualified names and values valid label values, or the message names the
failing rule as the server does. A parsed selector matches like the server's: ``!=``/``notin``
match a missing key, ``>``/``<`` need the label to be an integer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kubesim.names import go_quote, label_value_errors, qualified_name_errors


class SelectorError(ValueError):
    """A selector the server would refuse with 400; the message is the server's."""


_SPECIAL = frozenset("=!(),<>")
_BLANK = frozenset(" \t\r\n")
_SYMBOLS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<",
            "!=": "!=", "(": "("}
_KEYWORDS = frozenset({"in", "notin"})
_EOS = ""  # the end-of-string token; its literal is empty, as in the server's messages
_IDENT = "IDENT"
_INT64 = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "==", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op in ("exists", "!"):
            return (self.key in labels) == (self.op == "exists")
        if self.key not in labels:
            return self.op in ("!=", "notin")
        value = labels[self.key]
        if self.op in ("=", "==", "in"):
            return value in self.values
        if self.op in ("!=", "notin"):
            return value not in self.values
        have, bound = _int64(value), _int64(self.values[0])
        if have is None or bound is None:
            return False
        return have > bound if self.op == ">" else have < bound


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed ``labelSelector``: requirements sorted by key; empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _int64(text: str) -> int | None:
    if not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def tokenize(text: str) -> list[tuple[str, str]]:
    """(token, literal) pairs ending with the end-of-string token.

    A token is an operator symbol, a keyword (``in``/``notin``) or ``IDENT``.
    """
    out: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _BLANK:
            pos += 1
        if pos >= end:
            out.append((_EOS, ""))
            return out
        if text[pos] in _SPECIAL:
            best, stop = "", pos
            while stop < end and text[stop] in _SPECIAL:
                candidate = text[pos:stop + 1]
                if candidate in _SYMBOLS:
                    best = candidate
                elif best:
                    break
                stop += 1
            # Every single special character is an operator, so ``best`` is never empty here.
            out.append((_SYMBOLS[best], best))
            pos += len(best)
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _BLANK:
            pos += 1
        word = text[start:pos]
        out.append((word if word in _KEYWORDS else _IDENT, word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = tokenize(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._as(self.items[self.pos], values)

    def take(self, values: bool = True) -> tuple[str, str]:
        item = self.items[self.pos]
        self.pos += 1
        return self._as(item, values)

    @staticmethod
    def _as(item: tuple[str, str], values: bool) -> tuple[str, str]:
        # Where a value may stand, the keywords are plain identifiers ("x in (in)").
        if values and item[0] in _KEYWORDS:
            return _IDENT, item[1]
        return item

    def selector(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok == _EOS:
                return reqs
            if tok not in (_IDENT, "!"):
                raise SelectorError(
                    f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            tok, lit = self.take()
            if tok == _EOS:
                return reqs
            if tok != ",":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (_IDENT, "!"):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        tok, lit = self.take()
        if tok == "!":
            negated = True
            tok, lit = self.take()
        if tok != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key = lit
        problems = qualified_name_errors(key)
        if problems:
            # The key is checked with no field path, which prints as "<nil>".
            raise SelectorError(f"<nil>: Invalid value: {go_quote(key)}: {'; '.join(problems)}")
        if negated:
            # "!key" ends the requirement whatever follows: "!a=b" fails on the "=" as a
            # missing ",".
            return Requirement(key, "!")
        if self.peek()[0] in (_EOS, ","):
            return Requirement(key, "exists")
        tok, lit = self.take(values=False)
        if tok in ("in", "notin"):
            values = self.value_set()
        elif tok in ("=", "==", "!=", ">", "<"):
            values = self.exact_value()
        else:
            raise SelectorError(f"found '{lit}', expected: '=', '!=', '==', 'in', notin'")
        return _checked(key, tok, values)

    def value_set(self) -> tuple[str, ...]:
        tok, lit = self.take()
        if tok != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok == ")":
            self.take()
            return ("",)
        if tok not in (_IDENT, ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        found: set[str] = set()
        while True:
            tok, item = self.take()
            if tok == _IDENT:
                found.add(item)
                nxt, nlit = self.peek()
                if nxt == ")":
                    break
                if nxt != ",":
                    raise SelectorError(f"found '{nlit}', expected: ',' or ')'")
            elif tok == ",":
                # Empty members: "(,a" "a,)" and "a,,b" each hold the empty value.
                if not found:
                    found.add("")
                nxt, _ = self.peek()
                if nxt == ")":
                    found.add("")
                    break
                if nxt == ",":
                    self.take()
                    found.add("")
            else:
                raise SelectorError(f"found '{item}', expected: ',', or identifier")
        if self.take()[0] != ")":  # pragma: no cover - the loop above only breaks before ")"
            raise SelectorError(f"found '{lit}', expected: ')'")
        return tuple(sorted(found))

    def exact_value(self) -> tuple[str, ...]:
        if self.peek()[0] in (_EOS, ","):
            return ("",)  # "key=" selects the empty value
        tok, lit = self.take()
        if tok != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        return (lit,)


def _checked(key: str, op: str, values: tuple[str, ...]) -> Requirement:
    """The server's checks on a requirement's values, with its field paths in the message."""
    problems: list[str] = []
    if op in (">", "<"):
        for i, value in enumerate(values):
            if _int64(value) is None:
                problems.append(f"values[{i}]: Invalid value: {go_quote(value)}: for 'Gt', "
                                "'Lt' operators, the value must be an integer")
    for i, value in enumerate(values):
        errs = label_value_errors(value)
        if errs:
            problems.append(f"values[{i}][{key}]: Invalid value: {go_quote(value)}: "
                            f"{'; '.join(errs)}")
    if problems:
        unique = list(dict.fromkeys(problems))
        raise SelectorError(unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]")
    return Requirement(key, op, values)


def parse_label_selector(text: str) -> LabelSelector:
    """Parse ``labelSelector``; raises :class:`SelectorError` with the server's message."""
    reqs = _Parser(text).selector()
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
