"""Reading a received document exactly, and its canonical form, to tell a changed one from
a resend.

api.md: the same content again answers `changed: false` and emits nothing. Upstream
systems re-serialise documents freely, so key order and whitespace must not count as a
change; the hash is over JSON with sorted keys, no whitespace, UTF-8. Every other
difference must count: a number is kept at its exact value, never rounded to a double
(a change only in a 20-digit integer is a change).

Bounds (docs/decisions.md, "Input bounds"): nesting at most `MAX_DEPTH` levels (real
eHOKS and Koski documents nest at most 12), numbers of at most `MAX_NUMBER_DIGITS`
significant digits with a decimal exponent within ±`MAX_NUMBER_EXPONENT` (what
PostgreSQL's jsonb can store), and no NUL character (jsonb cannot hold it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Final

import orjson

from services.ingest.domain.validation import DocumentInvalid, FieldError, Loc

__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_DIGITS",
    "MAX_NUMBER_EXPONENT",
    "canonical_json",
    "check_storable",
    "content_hash",
    "decode_json",
]

MAX_DEPTH: Final = 64
MAX_NUMBER_DIGITS: Final = 100
MAX_NUMBER_EXPONENT: Final = 1000
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1  # orjson reads and writes integers up to here exactly


class _Unstorable:
    """A number beyond the bounds, kept in place so that its field can be named."""

    __slots__ = ()


_UNSTORABLE: Final = _Unstorable()
_Container = dict[str, object] | list[object]


def decode_json(raw: bytes) -> object:
    """JSON text → Python values, every number exact; raises DocumentInvalid naming the
    problem (invalid JSON, nesting deeper than `MAX_DEPTH`, a number beyond the bounds).

    orjson reads the common document; it turns integers beyond 64 bits into doubles
    and rounds decimals, so a document holding any double is read again exactly: a
    decimal whose value is its double's shortest form stays a float (so the hashes of
    ordinary documents do not change), any other number becomes an `orjson.Fragment` of
    its exact value, which the canonical form writes as is.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep(()) from exc
        # orjson refuses some legal JSON (a number beyond a double, such as 1e400).
        value = _decode_exact(raw, exc)
    else:
        if _has_float_or_too_deep(value):
            value = _decode_exact(raw, None)
    return value


def _has_float_or_too_deep(value: object) -> bool:
    """One pass over the containers, level by level: True when a float is found (so the
    exact reading is needed); raises DocumentInvalid beyond `MAX_DEPTH`."""
    level: list[_Container] = [value] if isinstance(value, dict | list) else []
    depth = 0
    has_float = isinstance(value, float)
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep(_deep_path(value, MAX_DEPTH, ()) or ())
        deeper: list[_Container] = []
        for container in level:
            children = container.values() if isinstance(container, dict) else container
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)  # type: ignore[arg-type]
                elif kind is float:
                    has_float = True
        level = deeper
    return has_float


def _decode_exact(raw: bytes, orjson_error: orjson.JSONDecodeError | None) -> object:
    def refuse_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(
            raw, parse_int=_exact_int, parse_float=_exact_decimal, parse_constant=refuse_constant
        )
        orjson.dumps(value)  # what orjson cannot write (a lone surrogate) is not accepted
    except RecursionError as exc:
        raise _too_deep(()) from exc
    except (ValueError, TypeError) as exc:  # JSONDecodeError and orjson's are ValueErrors
        error = orjson_error or exc
        raise DocumentInvalid([FieldError((), f"invalid JSON: {error}")]) from exc
    _has_float_or_too_deep(value)
    errors = [FieldError(loc, _NUMBER_BOUNDS) for loc in _locate(value, _is_unstorable)]
    if errors:
        raise DocumentInvalid(errors)
    return value


def _exact_int(text: str) -> object:
    if len(text) <= 20:
        number = int(text)
        if _INT64_MIN <= number <= _UINT64_MAX:
            return number
    return _fragment(Decimal(text))


def _exact_decimal(text: str) -> object:
    try:
        exact = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the JSON scanner passes only numbers
        return _UNSTORABLE
    double = float(text)
    if double not in (float("inf"), float("-inf")) and Decimal(repr(double)) == exact:
        return double
    return _fragment(exact)


def _fragment(exact: Decimal) -> object:
    """The exact value as canonical JSON text (one text per value): an integer's digits,
    else the digits without trailing zeros and an exponent."""
    sign, digits, exponent = exact.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0")
    if not text:
        return 0
    exponent += len(digits) - len(text)
    if len(text) > MAX_NUMBER_DIGITS or abs(exponent + len(text) - 1) > MAX_NUMBER_EXPONENT:
        return _UNSTORABLE
    if 0 <= exponent <= MAX_NUMBER_DIGITS - len(text):
        text, exponent_text = text + "0" * exponent, ""  # an integer stays an integer
    else:
        exponent_text = f"E{exponent}"
    return orjson.Fragment(f"{'-' if sign else ''}{text}{exponent_text}")


_NUMBER_BOUNDS: Final = (
    f"number beyond {MAX_NUMBER_DIGITS} significant digits or an exponent of ±{MAX_NUMBER_EXPONENT}"
)


def _too_deep(loc: Loc) -> DocumentInvalid:
    return DocumentInvalid([FieldError(loc, f"nesting deeper than {MAX_DEPTH} levels")])


def _deep_path(value: object, allowed: int, loc: Loc) -> Loc | None:
    """The path to the first container nested deeper than `allowed` levels."""
    if not isinstance(value, dict | list):
        return None
    if allowed == 0:
        return loc
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        found = _deep_path(child, allowed - 1, (*loc, key))
        if found is not None:
            return found
    return None


def _is_unstorable(value: object) -> bool:
    return value is _UNSTORABLE


def _has_nul(value: object) -> bool:
    return isinstance(value, str) and "\x00" in value


def _locate(value: object, bad: Callable[[object], bool], loc: Loc = ()) -> Iterator[Loc]:
    """The paths of the values (or object keys) for which `bad` holds; the nesting is
    bounded already, so recursion is safe."""
    if isinstance(value, dict):
        for key, child in value.items():
            if bad(key):
                yield (*loc, key)
            yield from _locate(child, bad, (*loc, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _locate(child, bad, (*loc, index))
    elif bad(value):
        yield loc


def canonical_json(document: object) -> bytes:
    """Sorted keys, no whitespace, UTF-8 with non-ASCII unescaped (orjson).

    Callers pass documents from `decode_json`, whose exact numbers orjson writes as is.
    """
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def content_hash(document: object) -> str:
    """Hex sha256 of `canonical_json(document)`: equal for equal content, any key order."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def check_storable(raw_json: bytes) -> None:
    """PostgreSQL's jsonb cannot hold the NUL character; refuse it naming the field rather
    than fail at the database.

    Only the escape `\\u0000` can put a NUL in JSON text (a raw NUL byte is invalid JSON);
    the same six characters also appear in the legal text of a backslash followed by
    `u0000`, so a document holding them is read to see which it is.
    """
    if b"\\u0000" not in raw_json:
        return
    locs = list(_locate(decode_json(raw_json), _has_nul))
    if locs:
        msg = "the NUL character (\\u0000) is not allowed"
        raise DocumentInvalid([FieldError(loc, msg) for loc in locs])
