"""The arvo_adapter service. The only code that talks to Arvo: answer codes and bundle links."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.arvo_adapter.api.links import router as links_router
from services.arvo_adapter.arvo import ArvoClient
from services.arvo_adapter.messaging.events import arvo_handlers
from services.arvo_adapter.settings import ArvoAdapterSettings
from services.arvo_adapter.store.tables import SCHEMA, outbox
from services.arvo_adapter.usecases import ArvoAdapter
from services.arvo_adapter.worker import Worker
from shared.messaging.topology import ARVO_ADAPTER_EVENTS
from shared.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: ArvoAdapterSettings | None = None) -> Service:
    settings = settings or ArvoAdapterSettings()
    service = Service(
        "arvo_adapter",
        settings,
        schema=SCHEMA,
        outbox=outbox,
        migrations=MIGRATIONS,
    )
    adapter = service.provide(
        ArvoAdapter(
            db=service.db,
            clock=service.clock,
            arvo=ArvoClient(settings),
            broker=service.broker,
            settings=settings,
        )
    )
    worker = Worker(
        adapter,
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.arvo_work_poll_seconds,
    )
    service.workers.append(worker)
    service.routers.append(links_router)
    service.add_event_consumer(ARVO_ADAPTER_EVENTS, arvo_handlers(adapter, worker.wake))
    return service


def create_app(service: Service | None = None) -> FastAPI:
    return (service or create_service()).create_app(
        description="The only code that talks to Arvo: answer codes and bundle links."
    )
