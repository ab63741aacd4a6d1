"""The frame every service runs in: migrate, serve HTTP, consume, relay the outbox.

A service builds one `Service`, registers its routers and consumers, and `run()`s it
(`python -m services.<name>`). Start-up does not wait for the broker: HTTP is served and
the outbox keeps events while RabbitMQ is away; consumers start when it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy import Table

from shared.auth import ApiClients
from shared.clock import Clock
from shared.db import Database
from shared.errors import install_error_handlers
from shared.logging import configure_logging
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, MessageHandler
from shared.messaging.outbox import OutboxRelay
from shared.messaging.topology import QueueSpec
from shared.migrations import upgrade
from shared.observability import RequestMiddleware, health_router
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 8.0


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
        self.name = name
        self.settings = settings
        self.schema = schema
        self.migrations = migrations
        self.clock = Clock(settings.clock_today)
        self.db = Database(settings.database_url, settings.db_pool_size)
        self.broker = Broker(
            settings.amqp_url,
            retry_delays_ms=settings.retry_delays_ms,
            connect_timeout=settings.broker_connect_timeout_seconds,
            publish_timeout=settings.broker_publish_timeout_seconds,
        )
        self.relay = OutboxRelay(
            self.db,
            outbox,
            self.broker,
            poll_seconds=settings.outbox_poll_seconds,
            batch_size=settings.outbox_batch_size,
            # The service's inbox, when it has one, shares the outbox's schema.
            inbox=outbox.metadata.tables.get(f"{schema}.inbox"),
            inbox_retention=dt.timedelta(days=settings.inbox_retention_days),
        )
        self.consumers: list[Consumer] = []
        self.routers: list[APIRouter] = []
        self._tasks: list[asyncio.Task[Any]] = []

    def add_consumer(
        self, spec: QueueSpec, handler: MessageHandler, *, rejected_queue: str | None = None
    ) -> Consumer:
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

    async def start(self) -> None:
        self.clock.warn_if_frozen()
        self._tasks.append(asyncio.create_task(self._connect_broker(), name="broker-connect"))
        if self.settings.outbox_relay_enabled:
            self.relay.start()

    async def stop(self) -> None:
        """Stop taking messages, let in-flight handlers finish, close connections."""
        await asyncio.gather(*(c.stop() for c in self.consumers), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.broker.close(), timeout=SHUTDOWN_GRACE_SECONDS / 2)
        await self.db.dispose()

    def create_app(self, **fastapi_kwargs: Any) -> FastAPI:
        # Here rather than only in run(): worker processes (WEB_CONCURRENCY) start afresh.
        configure_logging(self.name, self.settings.log_level)

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

        app = FastAPI(
            title=f"työelämäpalaute {self.name}",
            lifespan=lifespan,
            **fastapi_kwargs,
        )
        app.state.service = self
        install_error_handlers(app)
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
        return app

    def migrate(self) -> None:
        upgrade(self.settings.database_url, self.schema, self.migrations)

    def run(self, app_factory: str) -> None:
        """`python -m services.<name>`: migrate, then serve until SIGTERM.

        `app_factory` is the import path of the function that builds the app
        ("services.ingest.app:create_app"), so that `WEB_CONCURRENCY` > 1 can start that
        many worker processes; each runs its own consumers and relay, which share queues
        and the outbox (SKIP LOCKED) as replicas do.
        """
        configure_logging(self.name, self.settings.log_level)
        self.migrate()
        uvicorn.run(
            app_factory,
            factory=True,
            workers=self.settings.web_concurrency,
            host=self.settings.host,
            port=self.settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
        )
