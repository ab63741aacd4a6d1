"""Jaksot and their history (api.md, "bundler"): why a jakso is where it is (E18)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from services.bundler.api.dependencies import BundlerDep
from services.bundler.usecases import NotFound
from shared.auth import ApiClient, require_scope
from shared.errors import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["jaksot"])
Reader = Annotated[ApiClient, Depends(require_scope("palaute:read"))]
Id = Annotated[int, Path(gt=0, le=2**63 - 1)]

ERRORS = error_responses(
    401,
    403,
    404,
    422,
    descriptions={
        403: "the client lacks scope palaute:read",
        404: "not known, or another koulutustoimija's",
    },
)


class JaksoOut(BaseModel):
    """A workplace period and its state (`tila`, `syy`: rules.md E1–E18, J4)."""

    jakso_id: int
    hoks_id: int
    yksiloiva_tunniste: str | None
    hankkimistapa: str
    alku: dt.date
    loppu: dt.date | None
    osa_aikaisuus: int | None
    kesto: int | None
    tila: str
    syy: str
    niputuspvm: dt.date | None
    nippu_id: uuid.UUID | None


class TransitionOut(BaseModel):
    """One re-evaluation (E18): old → new state by `rule`, the names of the fields that
    changed (never values), the cause (`<event type> v<version>`) and its message.
    `applied` is false when the jakso was already bundled: recorded, nothing changed.
    `loppu_muutos`: W4's kind of end-date change, when `loppu` moved."""

    at: dt.datetime
    from_tila: str | None
    from_syy: str | None
    to_tila: str
    to_syy: str
    rule: str
    changed: list[str]
    cause: str
    message_id: uuid.UUID
    applied: bool
    loppu_muutos: str | None


@router.get("/hoks/{hoks_id}/jaksot", response_model=list[JaksoOut], responses=ERRORS)
async def hoks_jaksot(hoks_id: Id, client: Reader, bundler: BundlerDep) -> list[JaksoOut]:
    try:
        views = await bundler.hoks_jaksot(hoks_id=hoks_id, client=client)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    return [JaksoOut.model_validate(v, from_attributes=True) for v in views]


@router.get("/jaksot/{jakso_id}/history", response_model=list[TransitionOut], responses=ERRORS)
async def jakso_history(jakso_id: Id, client: Reader, bundler: BundlerDep) -> list[TransitionOut]:
    try:
        transitions = await bundler.jakso_history(jakso_id=jakso_id, client=client)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    return [TransitionOut.model_validate(t, from_attributes=True) for t in transitions]
