"""PUT/DELETE of HOKS documents and PUT of study rights (api.md, "ingest")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from services.ingest.api.body import read_json_document
from services.ingest.domain.validation import OPISKELUOIKEUS_OID_PATTERN
from services.ingest.usecases import Ingest
from shared.auth import ApiClient, require_scope
from shared.errors import error_responses
from shared.service import provided

router = APIRouter(prefix="/api/v1", tags=["ingest"])
IngestDep = Annotated[Ingest, provided(Ingest)]
Writer = Annotated[ApiClient, Depends(require_scope("hoks:write"))]
HoksId = Annotated[int, Path(gt=0, le=2**63 - 1, description="eHOKS's integer id")]
Oid = Annotated[
    str,
    Path(pattern=OPISKELUOIKEUS_OID_PATTERN, description="Koski OID 1.2.246.562.15.<11 digits>"),
]
SOURCE = "http"


class Accepted(BaseModel):
    version: int
    changed: bool


class HoksAccepted(Accepted):
    hoks_id: int


class OpiskeluoikeusAccepted(Accepted):
    oid: str


def _status(response: Response, *, created: bool) -> None:
    """201 for a document's first version, 200 after (api.md)."""
    response.status_code = 201 if created else 200


def _document_body(description: str) -> dict[str, Any]:
    """OpenAPI for a body read raw (the document belongs to eHOKS or Koski, not to us)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }


ERRORS = error_responses(
    401,
    403,
    413,
    415,
    422,
    503,
    descriptions={
        403: "the client lacks scope hoks:write",
        422: "invalid document: `details[].loc` names each bad field",
    },
)


@router.put(
    "/hoks/{hoks_id}",
    response_model=HoksAccepted,
    responses={201: {"model": HoksAccepted, "description": "first version"}, **ERRORS},
    openapi_extra=_document_body(
        "A HOKS as eHOKS stores it (kebab-case); `opiskeluoikeus-oid` and `oppija-oid` "
        "required, an `id` must equal the path's."
    ),
)
async def put_hoks(
    hoks_id: HoksId,
    request: Request,
    response: Response,
    ingest: IngestDep,
    _: Writer,
) -> HoksAccepted:
    document, raw = await read_json_document(request, ingest.max_body_bytes)
    accepted = await ingest.accept_hoks(hoks_id=hoks_id, document=document, raw=raw, source=SOURCE)
    _status(response, created=accepted.created)
    return HoksAccepted(hoks_id=hoks_id, version=accepted.version, changed=accepted.changed)


@router.put(
    "/opiskeluoikeudet/{oid}",
    response_model=OpiskeluoikeusAccepted,
    responses={201: {"model": OpiskeluoikeusAccepted, "description": "first version"}, **ERRORS},
    openapi_extra=_document_body(
        "A Koski ammatillinen opiskeluoikeus (camelCase); an `oid` must equal the path's."
    ),
)
async def put_opiskeluoikeus(
    oid: Oid,
    request: Request,
    response: Response,
    ingest: IngestDep,
    _: Writer,
) -> OpiskeluoikeusAccepted:
    document, raw = await read_json_document(request, ingest.max_body_bytes)
    accepted = await ingest.accept_opiskeluoikeus(
        oid=oid, document=document, raw=raw, source=SOURCE
    )
    _status(response, created=accepted.created)
    return OpiskeluoikeusAccepted(oid=oid, version=accepted.version, changed=accepted.changed)


@router.delete(
    "/hoks/{hoks_id}",
    status_code=204,
    responses=error_responses(
        401,
        403,
        404,
        422,
        503,
        descriptions={
            403: "the client lacks scope hoks:write",
            404: "no version of this HOKS was ever stored",
        },
    ),
)
async def remove_hoks(hoks_id: HoksId, ingest: IngestDep, _: Writer) -> Response:
    await ingest.delete_hoks(hoks_id=hoks_id, source=SOURCE)
    return Response(status_code=204)
