"""PUT/DELETE of HOKS documents and PUT of study rights (api.md, "ingest")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from services.ingest.api.body import read_json_document
from services.ingest.domain.canonical import check_storable
from services.ingest.domain.hoks import parse_hoks
from services.ingest.domain.opiskeluoikeus import parse_opiskeluoikeus
from services.ingest.domain.validation import OPISKELUOIKEUS_OID_PATTERN, DocumentInvalid
from services.ingest.store.documents import Kind, Recorded, exists
from services.ingest.usecases import delete_hoks, upsert_hoks, upsert_opiskeluoikeus
from shared.auth import ApiClient, require_scope
from shared.errors import ApiError, error_responses
from shared.service import Service

router = APIRouter(prefix="/api/v1", tags=["ingest"])
Writer = Annotated[ApiClient, Depends(require_scope("hoks:write"))]
HoksId = Annotated[int, Path(gt=0, le=2**63 - 1, description="eHOKS's integer id")]
Oid = Annotated[
    str,
    Path(pattern=OPISKELUOIKEUS_OID_PATTERN, description="Koski OID 1.2.246.562.15.<11 digits>"),
]
SOURCE = "http"
Parsed = TypeVar("Parsed")


class Accepted(BaseModel):
    version: int
    changed: bool


class HoksAccepted(Accepted):
    hoks_id: int


class OpiskeluoikeusAccepted(Accepted):
    oid: str


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _invalid(exc: DocumentInvalid) -> ApiError:
    details = [{"loc": ["body", *e.loc], "msg": e.msg} for e in exc.errors]
    fields = ", ".join(".".join(str(p) for p in d["loc"]) for d in details)
    return ApiError(422, f"invalid document: {fields}", details)


async def _accept(
    request: Request,
    response: Response,
    parse: Callable[[object], Parsed],
    store: Callable[[asyncpg.Connection, Parsed, object, str, str], Awaitable[Recorded]],
) -> Recorded:
    """Read, validate (pure, before any I/O), store; 201 for a document's first version."""
    service = _service(request)
    document, raw = await read_json_document(request, service.settings.max_body_bytes)
    try:
        check_storable(raw)
        parsed = parse(document)
    except DocumentInvalid as exc:
        raise _invalid(exc) from exc
    async with service.db.driver_connection() as conn:
        recorded = await store(conn, parsed, document, raw.decode(), SOURCE)
    if recorded.changed:
        service.relay.wake()
    response.status_code = 201 if recorded.created else 200
    return recorded


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
    hoks_id: HoksId, request: Request, response: Response, _: Writer
) -> HoksAccepted:
    recorded = await _accept(
        request, response, lambda document: parse_hoks(hoks_id, document), upsert_hoks
    )
    return HoksAccepted(hoks_id=hoks_id, version=recorded.version, changed=recorded.changed)


@router.put(
    "/opiskeluoikeudet/{oid}",
    response_model=OpiskeluoikeusAccepted,
    responses={201: {"model": OpiskeluoikeusAccepted, "description": "first version"}, **ERRORS},
    openapi_extra=_document_body(
        "A Koski ammatillinen opiskeluoikeus (camelCase); an `oid` must equal the path's."
    ),
)
async def put_opiskeluoikeus(
    oid: Oid, request: Request, response: Response, _: Writer
) -> OpiskeluoikeusAccepted:
    recorded = await _accept(
        request,
        response,
        lambda document: parse_opiskeluoikeus(oid, document),
        upsert_opiskeluoikeus,
    )
    return OpiskeluoikeusAccepted(oid=oid, version=recorded.version, changed=recorded.changed)


@router.delete(
    "/hoks/{hoks_id}",
    status_code=204,
    responses=error_responses(
        401, 403, 404, 422, 503, descriptions={403: "the client lacks scope hoks:write"}
    ),
)
async def remove_hoks(hoks_id: HoksId, request: Request, _: Writer) -> Response:
    service = _service(request)
    async with service.db.transaction() as session:
        deleted = await delete_hoks(session, hoks_id, SOURCE)
        if not deleted.changed and not await exists(session, Kind.HOKS, str(hoks_id)):
            raise ApiError(404, f"HOKS {hoks_id} is not known")
    if deleted.changed:
        service.relay.wake()
    return Response(status_code=204)
