"""Normalised names (N4) and bundle identifiers sent to Arvo (N2)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
_SUFFIX = re.compile(r"[a-z0-9]+")

#: Stands in for a workplace name that normalises to nothing (N2 needs a name part).
EMPTY_NAME_PLACEHOLDER = "tyopaikka"


@lru_cache(maxsize=65536)  # pure; a run normalises the same few names thousands of times
def normalize_name(name: str) -> str:
    """N4: strip accents, runs of other characters → `_`, trim `_`, lower case.

    "Perhosen Päiväkoti" → "perhosen_paivakoti". Only ASCII letters and digits count as
    alphanumeric, so the result always fits Arvo's `[a-z0-9_-]` (N2): letters without
    an ASCII base (ø, ß) act as separators.
    """
    decomposed = unicodedata.normalize("NFD", name)
    without_marks = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NOT_ALPHANUMERIC.sub("_", without_marks.lower()).strip("_")


def suffix_from_bytes(random_bytes: bytes) -> str:
    """N2: the random suffix made from bytes the caller drew (e.g. `secrets.token_bytes(8)`).

    Taking the randomness as an argument keeps this module pure and testable.
    """
    if not random_bytes:
        raise ValueError("the random suffix needs at least one random byte")
    return random_bytes.hex()


def nippu_tunniste(tyopaikan_nimi: str, niputuspvm: date, suffix: str) -> str:
    """N2: the bundle identifier: normalised workplace name, bundling date, random suffix.

    Example: ("Perhosen Päiväkoti", 2022-03-16, "1a2b") → "perhosen_paivakoti_2022-03-16_1a2b".
    """
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"suffix must match [a-z0-9]+, got {suffix!r}")
    name = normalize_name(tyopaikan_nimi) or EMPTY_NAME_PLACEHOLDER
    return f"{name}_{niputuspvm.isoformat()}_{suffix}"
