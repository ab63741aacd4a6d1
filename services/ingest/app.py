"""The ingest service: upstream systems post HOKS and study-right changes here."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.ingest.api.problems import PROBLEMS
from services.ingest.api.routes import router
from services.ingest.jobs.cleanup import personal_data_cleanup
from services.ingest.messaging.changes import CHANGES_QUEUE, INVALID_QUEUE, change_handler
from services.ingest.settings import IngestSettings
from services.ingest.store.tables import SCHEMA, outbox, runs
from services.ingest.usecases import Ingest
from shared.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: IngestSettings | None = None) -> Service:
    settings = settings or IngestSettings()
    service = Service(
        "ingest",
        settings,
        schema=SCHEMA,
        outbox=outbox,
        migrations=MIGRATIONS,
    )
    ingest = service.provide(
        Ingest(
            db=service.db,
            wake_relay=service.relay.wake,
            max_body_bytes=settings.max_body_bytes,
        )
    )
    service.routers.append(router)
    service.exception_handlers.update(PROBLEMS)
    service.add_consumer(CHANGES_QUEUE, change_handler(ingest), rejected_queue=INVALID_QUEUE)
    service.add_jobs(
        runs, [personal_data_cleanup(ingest, retention_days=settings.personal_data_retention_days)]
    )
    return service


def create_app(service: Service | None = None) -> FastAPI:
    return (service or create_service()).create_app(
        description="Receives HOKS documents and study rights; emits change events."
    )
