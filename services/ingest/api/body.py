"""Reading a raw JSON document body: size, content type and syntax, before any parsing.

The documents belong to eHOKS and Koski, so FastAPI's pydantic bodies do not fit: we read
bytes, bound them, and hand the decoded JSON to the domain parser.
"""

from __future__ import annotations

from fastapi import Request

from services.ingest.domain.canonical import decode_json
from services.ingest.domain.validation import DocumentInvalid
from shared.errors import ApiError


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json_document(request: Request, max_bytes: int) -> tuple[object, bytes]:
    """The decoded document and its raw bytes (stored as received).

    Decoding is `decode_json`'s: numbers exact, nesting and numbers bounded; what it
    refuses is a 422 naming the place, as a document's own field errors are.
    """
    if not _is_json(request.headers.get("content-type")):
        raise ApiError(
            415,
            "body must be application/json",
            [{"loc": ["header", "content-type"], "msg": "expected application/json"}],
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return decode_json(raw), raw
    except DocumentInvalid as exc:
        raise ApiError(
            422,
            f"body is not accepted: {exc}",
            [{"loc": ["body", *e.loc], "msg": e.msg} for e in exc.errors],
        ) from exc
