"""The one place the ingest's domain exceptions become HTTP problems (api.md's error shape).

Use cases raise them; routes do not catch them.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from services.ingest.domain.validation import DocumentInvalid
from services.ingest.usecases import NotKnown
from shared.errors import problem
from shared.service import ExceptionHandler


async def _invalid(_: Request, exc: DocumentInvalid) -> JSONResponse:
    """422 naming each bad field, from the body's root."""
    details = [{"loc": ["body", *e.loc], "msg": e.msg} for e in exc.errors]
    fields = ", ".join(".".join(str(p) for p in d["loc"]) for d in details)
    return problem(422, f"invalid document: {fields}", details)


async def _not_known(_: Request, exc: NotKnown) -> JSONResponse:
    return problem(404, str(exc))


PROBLEMS: dict[type[Exception], ExceptionHandler] = {
    DocumentInvalid: _invalid,
    NotKnown: _not_known,
}
