"""Fake SMS gateway (spec: arvo-api.md, section SMS gateway).

Accepts messages like the real gateway and keeps them in memory; delivery reports are not
automatic but triggered by the test (``POST /_fake/deliver``), which POSTs the report to
the given callback URL over real HTTP, so our callback endpoint is exercised end to end.
Errors are ``{"errors": [...]}``.

Control API under ``/_fake/`` (no auth): ``GET messages`` | ``POST reset`` |
``POST fail-next {"count": n}`` (next n sends answer 500) |
``POST delay-next {"count": n, "seconds": s}`` (next n sends are taken but answered s late) |
``POST deliver {"message_id", "status": "delivered"|"failed", "callback_url",
"status_text"?}`` (answers with the callback's HTTP status, 502 if unreachable).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

__all__ = ["MAX_TEXT_LENGTH", "SentSms", "SmsState", "create_app"]

MAX_TEXT_LENGTH = 1000
_E164_RE = re.compile(r"^\+\d{7,15}$")
_DELIVERY_STATUSES = frozenset({"delivered", "failed"})


@dataclass
class SentSms:
    """One accepted message to one destination (the gateway reports per number)."""

    message_id: str
    sender: str
    destination: str
    text: str
    client_ref: str
    status: str = "processing"
    status_text: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass
class SmsState:
    """Accepted messages (in order), the injected-failure counter and answer delays."""

    messages: list[SentSms] = field(default_factory=list)
    fail_next: int = 0
    delays: list[float] = field(default_factory=list)
    calls: int = 0
    """Every POST /messages, answered or not."""

    def reset(self) -> None:
        self.messages.clear()
        self.fail_next = 0
        self.delays.clear()
        self.calls = 0

    def by_id(self, message_id: str) -> SentSms | None:
        return next((m for m in self.messages if m.message_id == message_id), None)


def _error(status: int, errors: list[str]) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status)


async def _object_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _validate(body: dict[str, Any]) -> list[str]:
    """All problems of a send request; any invalid number rejects the whole request."""
    errors: list[str] = []
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender:
        errors.append("sender: required")
    destination = body.get("destination")
    if not isinstance(destination, list) or not destination:
        errors.append("destination: must be a non-empty list")
    else:
        for number in destination:
            if not isinstance(number, str) or not _E164_RE.match(number):
                errors.append(f"destination: invalid number {number!r}")
        if len(set(map(str, destination))) != len(destination):
            errors.append("destination: the same number twice")
    text = body.get("text")
    if not isinstance(text, str) or not text:
        errors.append("text: required")
    elif len(text) > MAX_TEXT_LENGTH:
        errors.append(f"text: {len(text)} characters, at most {MAX_TEXT_LENGTH} allowed")
    client_ref = body.get("client_ref")
    if not isinstance(client_ref, str) or not client_ref:
        errors.append("client_ref: required")
    return errors


def create_app(token: str = "sms-token") -> FastAPI:
    """Build a fresh fake SMS gateway; state is at ``app.state.sms`` (an :class:`SmsState`)."""
    state = SmsState()
    app = FastAPI(title="Fake SMS gateway", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.sms = state

    @app.post("/messages")
    async def send(request: Request) -> Response:
        state.calls += 1
        if state.fail_next > 0:
            state.fail_next -= 1
            return _error(500, ["simulated internal error"])
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), token.encode()):
            return _error(401, ["unauthorized"])
        body = await _object_body(request)
        if body is None:
            return _error(400, ["request body must be a JSON object"])
        errors = _validate(body)
        if errors:
            return _error(400, errors)
        result: dict[str, dict[str, str]] = {}
        for number in body["destination"]:
            sms = SentSms(
                message_id=uuid.uuid4().hex,
                sender=body["sender"],
                destination=number,
                text=body["text"],
                client_ref=body["client_ref"],
            )
            state.messages.append(sms)
            result[number] = {"status": sms.status, "message_id": sms.message_id}
        if state.delays:
            # Taken, but the answer comes late: the client's unknown-outcome window.
            await asyncio.sleep(state.delays.pop(0))
        return JSONResponse({"messages": result})

    app.include_router(_control_router(state))
    return app


def _control_router(state: SmsState) -> APIRouter:
    """Test control API (no auth)."""
    router = APIRouter(prefix="/_fake")

    @router.get("/messages")
    async def messages() -> list[dict[str, Any]]:
        return [asdict(m) for m in state.messages]

    @router.post("/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"ok": True}

    @router.post("/fail-next")
    async def fail_next(request: Request) -> Response:
        body = await _object_body(request) or {}
        count = body.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return _error(400, ["count: must be an integer >= 0"])
        state.fail_next = count
        return JSONResponse({"fail_next": count})

    @router.post("/delay-next")
    async def delay_next(request: Request) -> Response:
        body = await _object_body(request) or {}
        count, seconds = body.get("count"), body.get("seconds")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return _error(400, ["count: must be an integer >= 0"])
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return _error(400, ["seconds: must be a number >= 0"])
        state.delays = [float(seconds)] * count
        return JSONResponse({"delay_next": count, "seconds": seconds})

    @router.post("/deliver")
    async def deliver(request: Request) -> Response:
        """Set a message's final status and POST the delivery report to ``callback_url``.

        Answers with the callback's HTTP status, or 502 if the callback was unreachable,
        so the test sees whether our endpoint accepted the report.
        """
        body = await _object_body(request) or {}
        sms = state.by_id(str(body.get("message_id")))
        if sms is None:
            return _error(404, [f"message {body.get('message_id')!r} not found"])
        status = body.get("status")
        callback_url = body.get("callback_url")
        if status not in _DELIVERY_STATUSES:
            return _error(400, [f"status: must be one of {sorted(_DELIVERY_STATUSES)}"])
        if not isinstance(callback_url, str) or not callback_url.startswith(
            ("http://", "https://")
        ):
            return _error(400, ["callback_url: must be an http(s) URL"])
        status_text = body.get("status_text")
        if not isinstance(status_text, str):
            status_text = "Delivered" if status == "delivered" else "Delivery failed"
        sms.status = status
        sms.status_text = status_text
        report = {"message_id": sms.message_id, "status": status, "status_text": status_text}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(callback_url, json=report)
        except httpx.HTTPError as exc:
            return _error(502, [f"callback failed: {exc!r}"])
        return JSONResponse({"report": report, "callback_status": answer.status_code})

    return router
