"""Health and metrics for operators (api.md, "Every service").

`/health/live` says the process runs; `/health/ready` that its database and broker answer;
`/metrics` is Prometheus text with request counts and latencies by route template.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import Database
from shared.logging import correlation_id_var
from shared.messaging.broker import Broker
from shared.messaging.outbox import OutboxRelay, backlog

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
READY_TIMEOUT_SECONDS = 2.0
CORRELATION_HEADER = "X-Correlation-ID"
# A caller's id is carried into logs and events only when it is a plain token.
VALID_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def health_router(
    db: Database,
    broker: Broker,
    relay: OutboxRelay | None = None,
    outbox_max_age_seconds: float = 60.0,
) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        checks: dict[str, str] = {}
        # Alongside the database check, within the same time bound.
        outbox = (
            asyncio.ensure_future(_outbox_check(relay, outbox_max_age_seconds))
            if relay is not None
            else None
        )
        try:
            # Bounded: a pool busy with requests must not make the probe hang.
            await asyncio.wait_for(db.ping(), timeout=READY_TIMEOUT_SECONDS)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        checks["broker"] = "ok" if broker.connected else "error: not connected"
        if outbox is not None:
            checks["outbox"] = await outbox
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _outbox_check(relay: OutboxRelay, max_age_seconds: float) -> str:
    """A relay that stopped, or events waiting too long, mean events are not leaving."""
    if not relay.alive:
        return "error: relay not running"
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with relay.db.transaction() as session:
                waiting = await backlog(session, relay.outbox)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    if waiting.oldest_age_seconds > max_age_seconds:
        return f"error: oldest event waits {waiting.oldest_age_seconds:.0f} s"
    return "ok"


class RequestMiddleware:
    """Carry the correlation id from the request into logs and events, and time requests.

    Plain ASGI rather than `BaseHTTPMiddleware`: it sits on the ingest's hot path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(CORRELATION_HEADER, "")
        cid = incoming if VALID_CORRELATION_ID.fullmatch(incoming) else str(uuid.uuid4())
        token = correlation_id_var.set(cid)
        status = 500
        start = time.perf_counter()

        async def send_with_header(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(CORRELATION_HEADER, cid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            correlation_id_var.reset(token)
            route = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
