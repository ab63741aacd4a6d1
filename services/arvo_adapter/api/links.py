"""A bundle link's status, read through to Arvo (api.md, "arvo_adapter"): the sender asks
before a reminder (S3). A caller waits, so Arvo gets `ARVO_STATUS_TIMEOUT_SECONDS`; when
it does not answer (or the circuit is open) the answer is a clear 503, never a guess."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from services.arvo_adapter.arvo import ArvoError, ArvoNotFound
from services.arvo_adapter.usecases import ArvoAdapter, NotVisible
from shared.auth import ApiClient, require_scope
from shared.errors import ApiError, error_responses
from shared.service import provided

router = APIRouter(prefix="/api/v1", tags=["links"])
Reader = Annotated[ApiClient, Depends(require_scope("palaute:read"))]
AdapterDep = Annotated[ArvoAdapter, provided(ArvoAdapter)]
Tunniste = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,200}$")]


class LinkStatusOut(BaseModel):
    """Arvo's `GET status/{tunniste}`: answered yet, and the last answer day."""

    vastattu: bool
    voimassa_loppupvm: dt.date


@router.get(
    "/links/{tunniste}/status",
    response_model=LinkStatusOut,
    responses=error_responses(
        401,
        403,
        404,
        422,
        503,
        descriptions={
            404: "Arvo knows no such link, or it is another koulutustoimija's",
            503: "Arvo did not answer in time (or is unavailable): retry later",
        },
    ),
)
async def link_status(tunniste: Tunniste, client: Reader, adapter: AdapterDep) -> LinkStatusOut:
    try:
        status = await adapter.link_status(tunniste, client=client)
    except (ArvoNotFound, NotVisible) as exc:
        raise ApiError(404, "no such link") from exc
    except ArvoError as exc:
        raise ApiError(
            503,
            f"Arvo did not answer the status request ({type(exc).__name__}); retry later",
            headers={"Retry-After": "30"},
        ) from exc
    return LinkStatusOut(vastattu=status.vastattu, voimassa_loppupvm=status.voimassa_loppupvm)


Admin = Annotated[ApiClient, Depends(require_scope("admin"))]


class CallInDoubtOut(BaseModel):
    """A creating call whose effect is unknown (its answer was lost, or the adapter died
    before writing it down). `create_nippu`: reconciled by the bundle's next attempt;
    `create_vastaajatunnus`, `create_tyopaikkakysely_tunnus`: Arvo may hold a code or
    link made by it that the contract cannot find; Arvo's staff can, by `request_id`."""

    endpoint: str
    request_id: uuid.UUID
    subject: uuid.UUID
    jakso_id: int | None
    state: str
    created_at: dt.datetime


@router.get(
    "/calls/in-doubt",
    response_model=list[CallInDoubtOut],
    responses=error_responses(401, 403),
)
async def calls_in_doubt(
    _: Admin,
    adapter: AdapterDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[CallInDoubtOut]:
    rows = await adapter.calls_in_doubt(limit=limit)
    return [CallInDoubtOut.model_validate(r, from_attributes=True) for r in rows]


class RetriedOut(BaseModel):
    rows: int


@router.post(
    "/work/{id}/retry",
    response_model=RetriedOut,
    status_code=202,
    responses=error_responses(401, 403, 404, 422),
)
async def retry_work(id: uuid.UUID, _: Admin, adapter: AdapterDep) -> RetriedOut:
    """Make a bundle's (`nippu_id`) or TPK bundle's (`tpk_nippu_id`) waiting work due now;
    404 when it has none waiting."""
    rows = await adapter.retry_now(id)
    if rows == 0:
        raise ApiError(404, "no work waiting for that id")
    return RetriedOut(rows=rows)
