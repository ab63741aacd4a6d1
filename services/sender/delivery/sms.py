"""SMS over the gateway of arvo-api.md (httpx): ``POST {SMS_GATEWAY_URL}/messages`` with
``Authorization: Bearer {SMS_GATEWAY_TOKEN}``, one attempt per message.

The unknown-outcome window: once the request has gone out, the gateway may accept it even
if its answer never reaches us (a read timeout, a dropped connection). Those attempts are
``UNKNOWN``, never ``TEMPORARY``; only a failure to connect is surely harmless. The gateway
is not documented to deduplicate ``client_ref`` (we send the message key there), so a
blind retry could send the SMS twice. The window is the gateway's response time, at most
SMS_TIMEOUT_SECONDS.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from services.sender.delivery.attempts import logged
from services.sender.delivery.smtp import WITHDRAWN, Handover
from services.sender.domain.compose import OutgoingSms
from services.sender.domain.outcomes import (
    DeliveryResult,
    Outcome,
    classify_gateway_status,
    without_recipient,
)
from services.sender.settings import SenderSettings

#: Nothing reached the gateway: safe to try again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class SmsGatewayClient:
    """One pooled HTTP client per process; close it with ``aclose()`` or ``async with``."""

    def __init__(
        self,
        *,
        base_url: str,
        token: SecretStr,
        sender: str = "OPH",
        timeout: float = 10.0,
    ) -> None:
        self.sender = sender
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            timeout=timeout,
        )

    @classmethod
    def from_settings(cls, settings: SenderSettings) -> SmsGatewayClient:
        return cls(
            base_url=settings.sms_gateway_url,
            token=settings.sms_gateway_token,
            sender=settings.sms_sender,
            timeout=settings.sms_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"SmsGatewayClient({self._http.base_url})"

    async def __aenter__(self) -> SmsGatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self, sms: OutgoingSms, *, label: str, handover: Handover | None = None
    ) -> DeliveryResult:
        """One attempt; ``label`` names the message in logs (its key, never the number);
        ``handover`` runs right before the request goes out."""
        return await logged("sms", label, self._attempt(sms, handover))

    async def _attempt(self, sms: OutgoingSms, handover: Handover | None) -> DeliveryResult:
        body = {
            "sender": self.sender,
            "destination": [sms.destination],
            "text": sms.text,
            "client_ref": sms.client_ref,
        }
        if handover is not None and not await handover():
            return WITHDRAWN
        try:
            response = await self._http.post("/messages", json=body)
        except _NOT_SENT as exc:
            return DeliveryResult(Outcome.TEMPORARY, f"{type(exc).__name__}: not connected")
        except httpx.TransportError as exc:
            # The request went out; the gateway may have taken it.
            return DeliveryResult(Outcome.UNKNOWN, f"{type(exc).__name__}: no answer")
        outcome = classify_gateway_status(response.status_code)
        answer = _json(response)
        if outcome is not Outcome.SENT:
            detail = without_recipient(_errors(answer) or response.reason_phrase, sms.destination)
            return DeliveryResult(outcome, f"{response.status_code} {detail}", response.status_code)
        server_id = _message_id(answer, sms.destination)
        detail = "accepted" if server_id else "accepted; the answer carried no message_id"
        return DeliveryResult(Outcome.SENT, detail, response.status_code, server_id)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _errors(answer: Any) -> str:
    """arvo-api.md: errors come as ``{"errors": [...]}``."""
    if isinstance(answer, dict) and isinstance(answer.get("errors"), list):
        return "; ".join(str(error) for error in answer["errors"])
    return ""


def _message_id(answer: Any, destination: str) -> str | None:
    """``{"messages": {"+3584...": {"status": ..., "message_id": ...}}}``."""
    if not isinstance(answer, dict) or not isinstance(answer.get("messages"), dict):
        return None
    entry = answer["messages"].get(destination)
    message_id = entry.get("message_id") if isinstance(entry, dict) else None
    return message_id if isinstance(message_id, str) and message_id else None
