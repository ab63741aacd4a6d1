"""Reports (api.md, "bundler"): jaksot with their bundles taken apart (N5), response
rates, and contact data to fix before the niputuspvm (C3, J2)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from services.bundler.api.dependencies import FlowDep
from services.bundler.api.niput import NEXT_CURSOR, Cursor, bad_cursor, decode_cursor, encode_cursor
from services.bundler.usecases import NotFound
from shared.auth import ApiClient, require_scope
from shared.errors import ApiError, error_responses

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Reader = Annotated[ApiClient, Depends(require_scope("palaute:read"))]
ERRORS = error_responses(401, 403, 404, 422)
CSV = "text/csv"


class JaksoReportOut(BaseModel):
    """N5: one jakso with its bundle's link, sending and answer status (no instructor)."""

    jakso_id: int
    hoks_id: int
    yksiloiva_tunniste: str | None
    koulutustoimija: str | None
    hankkimistapa: str
    tyopaikka: str | None
    ytunnus: str | None
    tutkinto: str | None
    alku: dt.date
    loppu: dt.date | None
    osa_aikaisuus: int | None
    kesto: int | None
    tila: str
    syy: str
    niputuspvm: dt.date | None
    nippu_id: uuid.UUID | None
    tunniste: str | None
    linkki: str | None
    nippu_tila: str | None
    lahetyspvm: dt.date | None
    voimassa_loppupvm: dt.date | None
    vastattu: bool


def _check_range(alku: dt.date | None, loppu: dt.date | None) -> None:
    if alku is not None and loppu is not None and loppu < alku:
        raise ApiError(
            422,
            "invalid request: loppu",
            [{"loc": ["query", "loppu"], "msg": "loppu is before alku"}],
        )


@router.get(
    "/jaksot",
    response_model=list[JaksoReportOut],
    responses={
        **ERRORS,
        200: {"content": {CSV: {}}, "description": "JSON, or CSV with `Accept: text/csv`"},
    },
)
async def jaksot_report(
    request: Request,
    client: Reader,
    flow: FlowDep,
    koulutustoimija: str | None = None,
    alku: Annotated[dt.date | None, Query(description="jaksot ending on or after")] = None,
    loppu: Annotated[dt.date | None, Query(description="jaksot ending on or before")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    cursor: Cursor = None,
) -> Response:
    """One row per jakso (N5), JSON or CSV by `Accept`; pages by `X-Next-Cursor`."""
    _check_range(alku, loppu)
    after = None
    if cursor is not None:
        (raw,) = decode_cursor(cursor, 1)
        if not raw.isdigit():
            raise bad_cursor()
        after = int(raw)
    try:
        rows = await flow.jaksot_report(
            client=client,
            koulutustoimija=koulutustoimija,
            alku=alku,
            loppu=loppu,
            after=after,
            limit=limit,
        )
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    out = [JaksoReportOut.model_validate(r, from_attributes=True) for r in rows]
    headers = {NEXT_CURSOR: encode_cursor(rows[-1].jakso_id)} if len(rows) == limit else {}
    if CSV in request.headers.get("accept", ""):
        return Response(_csv(out), media_type=f"{CSV}; charset=utf-8", headers=headers)
    body = "[" + ",".join(r.model_dump_json() for r in out) + "]"
    return Response(body, media_type="application/json", headers=headers)


def _csv(rows: list[JaksoReportOut]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(JaksoReportOut.model_fields))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.model_dump(mode="json").items()})
    return buffer.getvalue()


class ResponseRateOut(BaseModel):
    """Per koulutustoimija and survey (`kysely`: tep): bundles sent and answered (one
    link, one answer each) and their rate; the jaksot they cover beside them. `rate` is
    null when nothing was sent."""

    koulutustoimija: str
    kysely: str
    sent: int
    answered: int
    rate: float | None
    jaksot_sent: int
    jaksot_answered: int
    jaksot_rate: float | None


@router.get("/response-rates", response_model=list[ResponseRateOut], responses=ERRORS)
async def response_rates(
    client: Reader,
    flow: FlowDep,
    koulutustoimija: str | None = None,
    alku: Annotated[dt.date | None, Query(description="bundles of niputuspvm on or after")] = None,
    loppu: Annotated[
        dt.date | None, Query(description="bundles of niputuspvm on or before")
    ] = None,
) -> list[ResponseRateOut]:
    _check_range(alku, loppu)
    try:
        rates = await flow.response_rates(
            client=client, koulutustoimija=koulutustoimija, alku=alku, loppu=loppu
        )
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    return [ResponseRateOut.model_validate(r, from_attributes=True) for r in rates]


class ContactIssueOut(BaseModel):
    """A jakso still to be sent whose instructor contact is missing, invalid or ambiguous
    (C3: `no-email`, `email-invalid`, `email-mismatch`, `no-phone`, `phone-invalid`,
    `phone-mismatch`) or which has no yksiloiva-tunniste (J2: `tunniste-puuttuu`); fix
    it by `korjattava_viimeistaan` (its niputuspvm). The addresses are never shown."""

    jakso_id: int
    hoks_id: int
    yksiloiva_tunniste: str | None
    koulutustoimija: str | None
    tyopaikka: str | None
    ytunnus: str | None
    tila: str
    syy: str
    korjattava_viimeistaan: dt.date | None
    issues: list[str]


@router.get("/contact-data", response_model=list[ContactIssueOut], responses=ERRORS)
async def contact_data(
    client: Reader, flow: FlowDep, koulutustoimija: str | None = None
) -> list[ContactIssueOut]:
    try:
        rows = await flow.contact_data(client=client, koulutustoimija=koulutustoimija)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    return [ContactIssueOut.model_validate(r, from_attributes=True) for r in rows]
