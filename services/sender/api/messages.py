"""A bundle's messages and their history (api.md, "sender"), and the SMS gateway's
delivery reports (arvo-api.md, "SMS gateway")."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.sender.api.dependencies import SenderDep
from services.sender.usecases import NotFound, UnknownDeliveryReport
from shared.auth import ApiClient, require_scope
from shared.errors import ApiError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["messages"])
Reader = Annotated[ApiClient, Depends(require_scope("palaute:read"))]
_callback_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="SmsCallbackToken",
    description="SMS_CALLBACK_TOKEN, as `Bearer <token>` (or the `token` query parameter).",
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown bearer token"},
    403: {"description": "the client lacks scope palaute:read"},
    404: {"description": "not known, or another koulutustoimija's"},
}


class HistoryOut(BaseModel):
    at: dt.datetime
    status: str
    detail: str | None


class MessageOut(BaseModel):
    """One message: its unique key (bundle/kind/channel/resend number), its status
    (`recorded`, `sending`, `sent`, `failed`, `unknown`, `delivered`, `bounced`), the
    recipient until P1 removes it, the last server answer, and every change."""

    message_key: str
    kind: str
    kanava: str
    resend_number: int
    status: str
    recipient: str | None
    attempts: int
    detail: str | None
    sent_at: dt.datetime | None
    personal_data_removed_at: dt.datetime | None
    history: list[HistoryOut]


@router.get("/messages", response_model=list[MessageOut], responses=ERRORS)
async def list_messages(
    nippu_id: Annotated[uuid.UUID, Query(description="the bundler's id of the bundle")],
    client: Reader,
    sender: SenderDep,
) -> list[MessageOut]:
    try:
        views = await sender.messages(nippu_id=nippu_id, client=client)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    return [MessageOut.model_validate(v, from_attributes=True) for v in views]


class DeliveryReport(BaseModel):
    """arvo-api.md: `{"message_id", "status": "delivered"|"failed", "status_text"}`."""

    message_id: str = Field(min_length=1, max_length=200)
    status: Literal["delivered", "failed"]
    status_text: str | None = Field(default=None, max_length=2000)


class DeliveryReportOut(BaseModel):
    message_id: str
    status: str


def _callback_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_callback_bearer)],
    token: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> None:
    """The gateway's own token (SMS_CALLBACK_TOKEN), not an API client's: in the
    Authorization header, or in the callback URL's `token` parameter for gateways that
    cannot set headers."""
    given = credentials.credentials if credentials else token
    expected = request.app.state.service.settings.sms_callback_token.get_secret_value()
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise ApiError(
            401, "missing or invalid callback token", headers={"WWW-Authenticate": "Bearer"}
        )


@router.post(
    "/sms/delivery-reports",
    response_model=DeliveryReportOut,
    dependencies=[Depends(_callback_token)],
    responses={
        401: {"description": "missing or invalid callback token"},
        404: {"description": "unknown message id"},
    },
)
async def sms_delivery_report(report: DeliveryReport, sender: SenderDep) -> DeliveryReportOut:
    try:
        await sender.sms_delivery_report(
            server_id=report.message_id, status=report.status, status_text=report.status_text
        )
    except UnknownDeliveryReport as exc:
        # The gateway's id is no personal data; the report's text is not logged.
        log.warning(
            "delivery report for an unknown message",
            extra={"gateway_message_id": report.message_id},
        )
        raise ApiError(404, f"message {report.message_id} is not known") from exc
    return DeliveryReportOut(message_id=report.message_id, status=report.status)
