"""Health and metrics for operators (api.md, "Every service").

`/health/live` says the process runs; `/health/ready` that its database and broker answer;
`/metrics` is Prometheus text with request counts and latencies by route template, summed
over the worker processes when `WEB_CONCURRENCY` > 1 (prometheus-client's multiprocess
mode). Each request leaves one access log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from pydantic import BaseModel
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import CLIENT_NAME_STATE
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
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
access_log = logging.getLogger("access")
READY_TIMEOUT_SECONDS = 2.0
CORRELATION_HEADER = "X-Correlation-ID"
# A caller's id is carried into logs and events only when it is a plain token.
VALID_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


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

    @router.get(
        "/health/ready",
        responses={
            200: {"model": Readiness, "description": "the database and the broker answer"},
            503: {"model": Readiness, "description": "a check failed: `checks` says which"},
        },
    )
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
        return Response(_exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


def _exposition() -> bytes:
    if MULTIPROC_ENV not in os.environ:
        return generate_latest()
    # Every worker writes its values to files in the directory; whichever answers sums them.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def prepare_multiprocess_metrics(service: str, port: int, workers: int) -> None:
    """Before workers start: give them a fresh directory for their metric files.

    prometheus-client reads the variable when it is imported, so only processes started
    after this (uvicorn's workers) count in multiprocess mode; with one worker nothing is
    needed unless an operator set the variable. Files of earlier runs are removed, or their
    counts would be added to this run's.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if configured is None and workers <= 1:
        return
    default = Path(tempfile.gettempdir()) / f"tyoelamapalaute-{service}-{port}"
    directory = Path(configured) if configured else default
    directory.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for stale in directory.glob("*.db"):
        if not stale.name.endswith(own):
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)


def mark_metrics_process_dead() -> None:
    """At a worker's exit: its `live*` gauges stop counting."""
    if MULTIPROC_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


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
    """Carry the correlation id from the request into logs and events, time requests, and
    log each one: method, route template, status, duration, client name (once the auth
    dependency has named it in `scope["state"]`). Never the raw path, the query string,
    headers or bodies: they may hold personal data or tokens.

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
        # Shared with `request.state`, so that the auth dependency can name the client.
        state = scope.setdefault("state", {})
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
            duration = time.perf_counter() - start
            method = scope["method"]
            route = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(method, route).observe(duration)
            REQUESTS.labels(method, route, str(status)).inc()
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    "client": state.get(CLIENT_NAME_STATE),
                },
            )
            correlation_id_var.reset(token)
