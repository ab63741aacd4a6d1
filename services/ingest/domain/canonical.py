"""The canonical form of a received document, to tell a changed one from a resend.

api.md: the same content again answers `changed: false` and emits nothing. Upstream
systems re-serialise documents freely, so key order and whitespace must not count as a
change; the hash is over JSON with sorted keys, no whitespace, UTF-8.
"""

from __future__ import annotations

import hashlib

import orjson

from services.ingest.domain.validation import DocumentInvalid, FieldError

__all__ = ["canonical_json", "check_storable", "content_hash"]


def canonical_json(document: object) -> bytes:
    """Sorted keys, no whitespace, UTF-8 with non-ASCII unescaped (orjson).

    Raises TypeError for values JSON cannot hold (NaN is written as null by orjson, and
    integers beyond 64 bits are refused): callers pass documents decoded from JSON.
    """
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def content_hash(document: object) -> str:
    """Hex sha256 of `canonical_json(document)`: equal for equal content, any key order."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def check_storable(raw_json: bytes) -> None:
    """PostgreSQL's jsonb cannot hold the NUL character; refuse it as a field error rather
    than fail at the database."""
    if b"\\u0000" in raw_json:
        raise DocumentInvalid([FieldError((), "the NUL character (\\u0000) is not allowed")])
