"""TEP and TPK bundles (api.md, "bundler"): the lists a provider reads, and the resend
of a link (S4).

Lists page by `limit` and `cursor`: the body is the list api.md fixes; when more rows
follow, the `X-Next-Cursor` response header holds the cursor of the next page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.bundler.api.dependencies import FlowDep
from services.bundler.domain.flow import InvalidAddress, ResendRefused
from services.bundler.usecases import NotFound
from shared.auth import ApiClient, require_scope
from shared.errors import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["niput"])
Reader = Annotated[ApiClient, Depends(require_scope("palaute:read"))]
Writer = Annotated[ApiClient, Depends(require_scope("palaute:write"))]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`X-Next-Cursor` of the previous page")
]
NEXT_CURSOR = "X-Next-Cursor"
ERRORS = error_responses(401, 403, 404, 422)


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode()


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The parts of a cursor; 422 naming `cursor` when it is not one of ours."""
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = []
    if len(parts) != count:
        raise bad_cursor()
    return parts


def bad_cursor() -> ApiError:
    return ApiError(
        422, "invalid request: cursor", [{"loc": ["query", "cursor"], "msg": "not a cursor"}]
    )


class LahetysOut(BaseModel):
    """One report of the sender: `kanava` email|sms, `tyyppi` initial|reminder|resend,
    `tila` accepted|sent|delivered|failed|bounced, `aika` when."""

    kanava: str | None
    tyyppi: str
    tila: str | None
    aika: dt.datetime


class NippuOut(BaseModel):
    """A TEP bundle (N1): `tila` its sending state (Arvo's statuses, plus `niputettu`,
    `arvo_ei_kyselya`, `peruttu`), `linkki` without the channel tag."""

    nippu_id: uuid.UUID
    tunniste: str
    niputuspvm: dt.date
    koulutustoimija: str
    ytunnus: str
    tyopaikka: str
    tutkinto: str
    jaksot: list[int]
    tila: str
    linkki: str | None
    voimassa_loppupvm: dt.date
    lahetyspvm: dt.date
    resend_count: int
    lahetykset: list[LahetysOut]


def _nippu_out(view: object) -> NippuOut:
    lahetykset = [
        LahetysOut(kanava=s.kanava, tyyppi=s.kind, tila=s.tila, aika=s.at)
        for s in view.lahetykset  # type: ignore[attr-defined]
    ]
    data = {k: getattr(view, k) for k in NippuOut.model_fields if k != "lahetykset"}
    return NippuOut(**data, lahetykset=lahetykset)


@router.get("/niput", response_model=list[NippuOut], responses=ERRORS)
async def niput(
    client: Reader,
    flow: FlowDep,
    response: Response,
    koulutustoimija: str | None = None,
    niputuspvm: dt.date | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[NippuOut]:
    """TEP bundles of the caller's koulutustoimijat, by niputuspvm."""
    after = None
    if cursor is not None:
        pvm, nippu_id = decode_cursor(cursor, 2)
        try:
            after = (dt.date.fromisoformat(pvm), uuid.UUID(nippu_id))
        except ValueError as exc:
            raise bad_cursor() from exc
    try:
        views = await flow.niput(
            client=client,
            koulutustoimija=koulutustoimija,
            niputuspvm=niputuspvm,
            after=after,
            limit=limit,
        )
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    if len(views) == limit:
        response.headers[NEXT_CURSOR] = encode_cursor(views[-1].niputuspvm, views[-1].nippu_id)
    return [_nippu_out(v) for v in views]


@router.get("/niput/{nippu_id}", response_model=NippuOut, responses=ERRORS)
async def nippu(nippu_id: uuid.UUID, client: Reader, flow: FlowDep) -> NippuOut:
    try:
        return _nippu_out(await flow.nippu(client=client, nippu_id=nippu_id))
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc


class ResendIn(BaseModel):
    """A corrected address and/or number; when given, only those get the link."""

    model_config = ConfigDict(extra="forbid")

    sahkoposti: str | None = Field(default=None, max_length=320)
    puhelinnumero: str | None = Field(default=None, max_length=40)


class ResendOut(BaseModel):
    nippu_id: uuid.UUID
    resend_number: int


@router.post(
    "/niput/{nippu_id}/resend",
    status_code=202,
    response_model=ResendOut,
    responses=error_responses(
        401, 403, 404, 409, 422, descriptions={409: "the answer window has closed, or no link"}
    ),
)
async def resend(
    nippu_id: uuid.UUID,
    client: Writer,
    flow: FlowDep,
    body: Annotated[ResendIn | None, Body()] = None,
) -> ResendOut:
    """S4: send the same link again, its validity unchanged, optionally to a corrected
    address."""
    body = body or ResendIn()
    try:
        number = await flow.resend(
            nippu_id=nippu_id,
            client=client,
            sahkoposti=body.sahkoposti,
            puhelinnumero=body.puhelinnumero,
        )
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except InvalidAddress as exc:
        raise ApiError(
            422,
            f"invalid request: {exc.field}",
            [{"loc": ["body", exc.field], "msg": str(exc)}],
        ) from exc
    except ResendRefused as exc:
        raise ApiError(409, str(exc)) from exc
    return ResendOut(nippu_id=nippu_id, resend_number=number)


class TpkNippuOut(BaseModel):
    """A TPK bundle (T3) of a kausi (T1) and its link (T5), once Arvo has made it."""

    tpk_nippu_id: uuid.UUID
    koulutustoimija: str
    ytunnus: str
    tyopaikka: str
    tyopaikka_normalisoitu: str
    kausi_alku: dt.date
    kausi_loppu: dt.date
    vastaamisajan_alkupvm: dt.date
    vastaamisajan_loppupvm: dt.date
    tunnus: str | None
    kysely_linkki: str | None
    voimassa_loppupvm: dt.date | None
    jaksoja: int


@router.get("/tpk-niput", response_model=list[TpkNippuOut], responses=ERRORS)
async def tpk_niput(
    client: Reader,
    flow: FlowDep,
    response: Response,
    koulutustoimija: str | None = None,
    kausi: Annotated[
        dt.date | None, Query(description="first day of the kausi: YYYY-01-01 or YYYY-07-01")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[TpkNippuOut]:
    """T5: the TPK links of the caller's koulutustoimijat, for the provider to hand out."""
    if kausi is not None and (kausi.day, kausi.month) not in ((1, 1), (1, 7)):
        raise ApiError(
            422,
            "invalid request: kausi",
            [{"loc": ["query", "kausi"], "msg": "a kausi starts on 01-01 or 07-01"}],
        )
    after = None
    if cursor is not None:
        (raw,) = decode_cursor(cursor, 1)
        try:
            after = uuid.UUID(raw)
        except ValueError as exc:
            raise bad_cursor() from exc
    try:
        views = await flow.tpk_niput(
            client=client, koulutustoimija=koulutustoimija, kausi=kausi, after=after, limit=limit
        )
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    if len(views) == limit:
        response.headers[NEXT_CURSOR] = encode_cursor(views[-1].tpk_nippu_id)
    return [TpkNippuOut.model_validate(v, from_attributes=True) for v in views]
