"""Reading untrusted JSON documents field by field, collecting every error.

The ingest accepts documents whose full schema belongs to someone else (eHOKS, Koski).
We validate only what the rules read, and we walk plain dicts instead of building a
pydantic model of the whole document: documents arrive on every request (~1000/s) and
unknown fields must be kept and ignored. All problems of one document are reported at
once so that an upstream system can fix them in one round trip (api.md: "422 naming
each bad field").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal, TypeVar

Loc = tuple[str | int, ...]
T = TypeVar("T")
OidKind = Literal["opiskeluoikeus", "oppija"]

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Opintopolku OIDs (docs/decisions.md, "Input bounds"): a fixed root, a node class
# (15 a Koski opiskeluoikeus, 24 a person in the oppijanumerorekisteri) and an
# 11-digit number whose last digit is a check digit, as in every example document.
OPISKELUOIKEUS_OID_PATTERN = r"^1\.2\.246\.562\.15\.[0-9]{11}$"
OPPIJA_OID_PATTERN = r"^1\.2\.246\.562\.24\.[0-9]{11}$"
OID_FORMATS: dict[OidKind, tuple[re.Pattern[str], str]] = {
    "opiskeluoikeus": (re.compile(OPISKELUOIKEUS_OID_PATTERN), "1.2.246.562.15.<11 digits>"),
    "oppija": (re.compile(OPPIJA_OID_PATTERN), "1.2.246.562.24.<11 digits>"),
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: where it is (keys and list indexes from the document root) and why.

    `loc` is relative to the document; the HTTP layer may prefix it (e.g. with "body").
    An error about the document as a whole has an empty `loc`.
    """

    loc: Loc
    msg: str


class DocumentInvalid(Exception):
    """The document cannot be accepted; `errors` lists every bad field found.

    The one domain exception of parsing: the HTTP layer maps it to 422 and the queue
    consumer sends the message to `ehoks.changes.invalid` with these errors attached.
    """

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("; ".join(f"{_format_loc(e.loc)}: {e.msg}" for e in self.errors))


def _format_loc(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "<document>"


class Reader:
    """Typed accessors over JSON values that record an error instead of raising.

    Each accessor returns None (or an empty list) when the value is missing, null or
    wrong, so parsing continues and collects all errors; `raise_if_errors` ends it.
    """

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, loc: Loc, msg: str) -> None:
        self.errors.append(FieldError(loc, msg))

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DocumentInvalid(self.errors)

    def obj(self, parent: dict[str, object], key: str, loc: Loc) -> dict[str, object] | None:
        """An optional JSON object; missing or null → None."""
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, dict):
            return value
        self.error((*loc, key), "expected an object")
        return None

    def array(self, parent: dict[str, object], key: str, loc: Loc) -> list[object]:
        """An optional JSON array; missing or null → empty."""
        value = parent.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.error((*loc, key), "expected a list")
        return []

    def item_object(self, value: object, loc: Loc) -> dict[str, object] | None:
        """A list element that must be an object (the caller's `loc` includes the index)."""
        if isinstance(value, dict):
            return value
        self.error(loc, "expected an object")
        return None

    def _present(
        self,
        parent: dict[str, object],
        key: str,
        loc: Loc,
        type_: type[T],
        expected: str,
        required: bool,
    ) -> T | None:
        """The value when present and of `type_`; otherwise None, with an error when it is
        required and missing or present with the wrong type."""
        value = parent.get(key)
        if value is None:
            if required:
                self.error((*loc, key), "field required")
            return None
        if not isinstance(value, type_):
            self.error((*loc, key), expected)
            return None
        return value

    def string(
        self, parent: dict[str, object], key: str, loc: Loc, *, required: bool = False
    ) -> str | None:
        """A string; empty strings count as missing when `required`."""
        value = self._present(parent, key, loc, str, "expected a string", required)
        if value is None:
            return None
        if required and not value.strip():
            self.error((*loc, key), "must not be empty")
            return None
        return value

    def oid(
        self,
        parent: dict[str, object],
        key: str,
        loc: Loc,
        kind: OidKind,
        *,
        required: bool = False,
    ) -> str | None:
        """An OID of `kind` in `OID_FORMATS`; any other text is an error, so that neither
        a typo nor a value of any length reaches the store or an event."""
        value = self.string(parent, key, loc, required=required)
        if value is None:
            return None
        if not is_oid(value, kind):
            self.error((*loc, key), f"expected a {kind} OID {OID_FORMATS[kind][1]}")
            return None
        return value

    def integer(self, parent: dict[str, object], key: str, loc: Loc) -> int | None:
        """An optional integer; booleans and floats are errors (JSON `true` is not 1)."""
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.error((*loc, key), "expected an integer")
        return None

    def date(
        self, parent: dict[str, object], key: str, loc: Loc, *, required: bool = False
    ) -> dt.date | None:
        """A strict ISO calendar date `YYYY-MM-DD` (2023-02-30 and 2023-2-3 are errors)."""
        value = self._present(parent, key, loc, str, "expected a date string YYYY-MM-DD", required)
        if value is None:
            return None
        parsed = parse_strict_date(value)
        if parsed is None:
            self.error((*loc, key), "invalid date, expected a real calendar date YYYY-MM-DD")
        return parsed

    def period(
        self, parent: dict[str, object], loc: Loc, *, alku_required: bool
    ) -> tuple[dt.date | None, dt.date | None]:
        """`alku` and optional `loppu` of a period; `loppu` before `alku` is an error."""
        alku = self.date(parent, "alku", loc, required=alku_required)
        loppu = self.date(parent, "loppu", loc)
        if alku is not None and loppu is not None and loppu < alku:
            self.error((*loc, "loppu"), "loppu is before alku")
        return alku, loppu


def is_oid(value: str, kind: OidKind) -> bool:
    """Whether `value` is an OID of `kind` in `OID_FORMATS`."""
    return OID_FORMATS[kind][0].fullmatch(value) is not None


def parse_strict_date(value: str) -> dt.date | None:
    """`YYYY-MM-DD` as a real date, else None.

    `date.fromisoformat` alone is too lenient since Python 3.11 (it takes `20230101`,
    week dates and more), so the shape is checked first.
    """
    if len(value) != 10 or _DATE_RE.fullmatch(value) is None:
        return None
    try:
        return dt.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return None


def koodiarvo(reader: Reader, parent: dict[str, object], key: str, loc: Loc) -> str | None:
    """`parent[key].koodiarvo` of a Koodisto reference; `{}` or missing → None."""
    koodi = reader.obj(parent, key, loc)
    if koodi is None:
        return None
    return reader.string(koodi, "koodiarvo", (*loc, key))
