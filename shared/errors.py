"""One error shape everywhere (api.md): `{"error", "message", "details": [{"loc", "msg"}]}`.

Domain code raises `ApiError` subclasses or its own exceptions mapped here; FastAPI's own
validation errors and HTTP errors are reshaped to the same form, so a client never sees
two formats and never a 500 for bad input.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import UNAVAILABLE_ERRORS, is_unavailable

log = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


DESCRIPTIONS = {
    401: "missing or unknown bearer token",
    403: "the client lacks the scope this operation needs",
    404: "not known, or not visible to this client",
    409: "conflicts with the stored state",
    413: "body larger than MAX_BODY_BYTES",
    415: "body is not application/json",
    422: "invalid request: `details[].loc` names each bad field",
    503: "a dependency (database, broker) is unavailable; retry later",
}


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description='Where: e.g. ["body", "osaamisen-hankkimistavat", 0]')
    msg: str


class ErrorBody(BaseModel):
    """The one error shape of every service (api.md)."""

    error: str = Field(description="A stable code: " + ", ".join(sorted(set(ERROR_CODES.values()))))
    message: str = Field(description="For a human; never holds personal data")
    details: list[ErrorDetail]


def error_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, each documented as an `ErrorBody`.

    Naming 422 also replaces FastAPI's own validation-error schema, which we never send.
    """
    described = {**DESCRIPTIONS, **(descriptions or {})}
    return {s: {"model": ErrorBody, "description": described.get(s, "error")} for s in statuses}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        details: Sequence[dict[str, Any]] = (),
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = list(details)
        self.code = code or ERROR_CODES.get(status, "error")
        self.headers = headers


def problem(
    status: int,
    message: str,
    details: Sequence[dict[str, Any]] = (),
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {
            "error": code or ERROR_CODES.get(status, "error"),
            "message": message,
            "details": list(details),
        },
        status_code=status,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.message, exc.details, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        fields = ", ".join(".".join(str(p) for p in d["loc"]) for d in details)
        return problem(422, f"invalid request: {fields}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        """The database unreachable, silent or refusing: 503 in our shape, one log line
        with the error's type only (its text may hold statement parameters)."""
        log.warning("database unavailable; answered 503", extra={"error": type(exc).__name__})
        return problem(
            503, "the database is unavailable; retry later", headers={"Retry-After": "5"}
        )

    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)

    @app.exception_handler(sqlalchemy.exc.DBAPIError)
    async def _database_error(request: Request, exc: sqlalchemy.exc.DBAPIError) -> JSONResponse:
        """A driver error SQLAlchemy wraps generically: 503 when it means the database is
        unavailable (too many connections), else a 500 in our shape, logged by type only."""
        if is_unavailable(exc):
            return await _database_unavailable(request, exc)
        log.error("database error; answered 500", extra={"error": type(exc).__name__})
        return problem(500, "internal error")
