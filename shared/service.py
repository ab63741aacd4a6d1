"""The frame every service runs in: migrate, serve HTTP, consume, relay the outbox.

A service builds one `Service` per process, registers its routers, consumers and use-case
object (`provide`), and `run()`s it (`python -m services.<name>`). Routes receive the
use-case object through a typed dependency: `IngestDep = Annotated[Ingest,
provided(Ingest)]`. Start-up does not wait for the broker: HTTP is served and
the outbox keeps events while RabbitMQ is away; consumers start when it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import Table
from uvicorn.importer import import_from_string

from shared.auth import ApiClients
from shared.clock import Clock
from shared.db import UNAVAILABLE_ERRORS, Database, retry_while_unreachable
from shared.devclock import dev_clock_router
from shared.errors import install_error_handlers
from shared.jobs import Job, Runs, Scheduler, runs_router
from shared.logging import configure_logging
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, EventHandler, MessageHandler, event_handler
from shared.messaging.outbox import OutboxRelay
from shared.messaging.topology import QueueSpec
from shared.migrations import upgrade
from shared.observability import (
    RequestMiddleware,
    health_router,
    mark_metrics_process_dead,
    prepare_multiprocess_metrics,
)
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 8.0
T = TypeVar("T")
ExceptionHandler = Callable[[Request, Any], Awaitable[Response]]


class Worker(Protocol):
    """A background loop of a service (e.g. the sender's delivery): started after the
    broker connection is being sought, stopped before the relay so its last commits'
    events still leave."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class Service:
    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        schema: str,
        outbox: Table,
        migrations: Path,
    ) -> None:
        configure_logging(name, settings.log_level)
        self.name = name
        self.settings = settings
        self.schema = schema
        self.migrations = migrations
        self.clock = Clock(settings.clock_today)
        self.db = Database(
            settings.database_url,
            settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout_seconds,
            statement_timeout=settings.db_statement_timeout_seconds,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        self.broker = Broker(
            settings.amqp_url,
            retry_delays_ms=settings.retry_delays_ms,
            connect_timeout=settings.broker_connect_timeout_seconds,
            publish_timeout=settings.broker_publish_timeout_seconds,
        )
        # The service's inbox, when it has one, shares the outbox's schema.
        self.inbox = outbox.metadata.tables.get(f"{schema}.inbox")
        self.relay = OutboxRelay(
            self.db,
            outbox,
            self.broker,
            poll_seconds=settings.outbox_poll_seconds,
            batch_size=settings.outbox_batch_size,
            inbox=self.inbox,
            inbox_retention=dt.timedelta(days=settings.inbox_retention_days),
        )
        self.consumers: list[Consumer] = []
        self.routers: list[APIRouter] = []
        self.workers: list[Worker] = []
        # The service's domain exceptions and the HTTP problem each maps to.
        self.exception_handlers: dict[type[Exception], ExceptionHandler] = {}
        self._provided: dict[type[Any], Any] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self.runs: Runs | None = None
        self.scheduler: Scheduler | None = None
        log.info("service built", extra={"pid": os.getpid()})

    def provide(self, value: T) -> T:
        """Make `value` what routes declaring `provided(type(value))` receive: built once
        with the Service, shared by every request of this process."""
        self._provided[type(value)] = value
        return value

    def add_event_consumer(self, spec: QueueSpec, handlers: Mapping[str, EventHandler]) -> Consumer:
        """A consumer of our own events: the envelope decoded, each message applied once
        through this service's inbox, dispatched by type to `handlers`."""
        if self.inbox is None:
            raise ValueError(f"the {self.name} service has no inbox table")
        return self.add_consumer(
            spec, event_handler(self.inbox, handlers), batch_size=self.settings.consumer_batch_size
        )

    def add_jobs(self, table: Table, jobs: list[Job]) -> Runs:
        """The service's dated jobs: run by its scheduler each day at `JOBS_AT` (Helsinki),
        and for any date through `POST /api/v1/runs` (shared/jobs.py)."""
        self.runs = Runs(self.db, table, jobs)
        self.scheduler = Scheduler(
            self.runs,
            self.clock,
            at=self.settings.jobs_at,
            poll_seconds=self.settings.scheduler_poll_seconds,
        )
        self.routers.append(runs_router(self.runs))
        return self.runs

    def add_consumer(
        self,
        spec: QueueSpec,
        handler: MessageHandler,
        *,
        rejected_queue: str | None = None,
        batch_size: int = 1,
    ) -> Consumer:
        """A consumer applying each message in a transaction of its own (`batch_size` 1),
        or several at once when the handler can (`BatchMessageHandler`)."""
        consumer = Consumer(
            self.db,
            self.broker,
            spec,
            handler,
            prefetch=self.settings.consumer_prefetch,
            max_attempts=self.settings.consumer_max_attempts,
            retry_delays_ms=self.settings.retry_delays_ms,
            rejected_queue=rejected_queue,
            after_commit=self.relay.wake,
            batch_size=batch_size,
        )
        self.consumers.append(consumer)
        return consumer

    async def _connect_broker(self) -> None:
        """Keep trying until the broker answers, then start the consumers."""
        delay = 0.5
        while True:
            try:
                await self.broker.connect()
                break
            except Exception as exc:
                log.warning(
                    "broker not reachable; retrying",
                    extra={"error": type(exc).__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        for consumer in self.consumers:
            await consumer.start()
        log.info("broker connected", extra={"consumers": [c.spec.name for c in self.consumers]})

    def refuse_development_defaults(self) -> None:
        """Fail closed: outside DEVELOPMENT_MODE, never serve with published credentials.

        Says why in one log line and exits non-zero (README, "Operations").
        """
        if self.settings.development_mode:
            return
        reasons = [
            f"{name} is the development default"
            for name in self.settings.development_defaults_in_use()
        ]
        path = self.settings.api_clients_file
        if ApiClients.from_file(path).holds_development_tokens:
            reasons.insert(0, f"API_CLIENTS_FILE {path} holds the development tokens")
        if reasons:
            log.critical(
                "refusing to start outside development mode: "
                + "; ".join(reasons)
                + " (DEVELOPMENT_MODE=true is for a developer's machine only)"
            )
            raise SystemExit(2)

    async def start(self) -> None:
        self.clock.warn_if_frozen()
        self._tasks.append(asyncio.create_task(self._connect_broker(), name="broker-connect"))
        if self.settings.outbox_relay_enabled:
            self.relay.start()
        if self.scheduler is not None and self.settings.scheduler_enabled:
            self.scheduler.start()
        for worker in self.workers:
            worker.start()

    async def stop(self) -> None:
        """Stop taking messages, let in-flight handlers finish, close connections."""
        await asyncio.gather(*(c.stop() for c in self.consumers), return_exceptions=True)
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.runs is not None:
            await self.runs.stop()
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.broker.close(), timeout=SHUTDOWN_GRACE_SECONDS / 2)
        await self.db.dispose()

    def create_app(self, **fastapi_kwargs: Any) -> FastAPI:
        self.refuse_development_defaults()

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            app.state.api_clients = ApiClients.from_file(self.settings.api_clients_file)
            await self.start()
            # Everything loaded so far lives as long as the process: keep it out of the
            # cyclic collector's scans, which otherwise dominate a busy request path.
            gc.freeze()
            try:
                yield
            finally:
                await self.stop()
                mark_metrics_process_dead()

        # /docs and /redoc from files shipped in fastapi-offline: no CDN needed.
        app = FastAPIOffline(
            title=f"työelämäpalaute {self.name}",
            lifespan=lifespan,
            generate_unique_id_function=_operation_id,
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
            **fastapi_kwargs,
        )
        app.state.service = self
        install_error_handlers(app)
        for exception, handler in self.exception_handlers.items():
            app.add_exception_handler(exception, handler)
        app.add_middleware(RequestMiddleware)
        app.include_router(
            health_router(
                self.db,
                self.broker,
                self.relay if self.settings.outbox_relay_enabled else None,
                self.settings.outbox_max_age_seconds,
            )
        )
        for router in self.routers:
            app.include_router(router)
        if self.settings.development_mode:
            app.include_router(dev_clock_router(self.clock))
        return app

    def migrate(self) -> None:
        upgrade(self.settings.database_url, self.schema, self.migrations)

    def run(self, app_factory: str) -> None:
        """`python -m services.<name>`: migrate, then serve until SIGTERM.

        `app_factory` is the import path of the function that builds the app from a
        Service ("services.ingest.app:create_app"). With `WEB_CONCURRENCY` 1 it is called
        with this Service and the app is served here: one Service in the process. With
        more, uvicorn starts that many worker processes and calls it in each without one,
        so each worker builds its own Service (once per process), with its consumers and
        relay, which share queues and the outbox (SKIP LOCKED) as replicas do.
        """
        self.refuse_development_defaults()
        within = self.settings.db_startup_timeout_seconds
        try:
            retry_while_unreachable(self.migrate, within_seconds=within, what="migrate")
        except UNAVAILABLE_ERRORS as exc:
            log.error(
                "database not reachable; giving up",
                extra={"within_s": within, "error": type(exc).__name__},
            )
            raise SystemExit(1) from None
        prepare_multiprocess_metrics(self.name, self.settings.port, self.settings.web_concurrency)
        workers = self.settings.web_concurrency
        app = import_from_string(app_factory)(self) if workers == 1 else app_factory
        uvicorn.run(
            app,
            factory=workers > 1,
            workers=workers,
            host=self.settings.host,
            port=self.settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
        )


def _operation_id(route: APIRoute) -> str:
    """Readable OpenAPI operation ids: the route function's name (`put_hoks`)."""
    return route.name


def provided(kind: type[T]) -> Any:
    """The FastAPI dependency on the `kind` value the app's Service provides (`provide`):
    `IngestDep = Annotated[Ingest, provided(Ingest)]`, then `ingest: IngestDep`."""

    async def dependency(request: Request) -> T:
        service: Service = request.app.state.service
        if kind not in service._provided:
            raise LookupError(f"the {service.name} service provides no {kind.__name__}")
        return cast(T, service._provided[kind])

    return Depends(dependency)
