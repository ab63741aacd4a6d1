"""The bundler service. Judges workplace periods and forms TEP and TPK bundles on schedule."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.bundler.api.jaksot import router as jaksot_router
from services.bundler.api.niput import router as niput_router
from services.bundler.api.reports import router as reports_router
from services.bundler.jobs.cleanup import personal_data_cleanup
from services.bundler.jobs.flow import flow_jobs
from services.bundler.jobs.niputus import niputus_jobs
from services.bundler.messaging.flow import flow_handlers
from services.bundler.messaging.state import state_handlers
from services.bundler.settings import BundlerSettings
from services.bundler.store.tables import SCHEMA, outbox, runs
from services.bundler.usecases import Bundler, Niputus
from shared.messaging.topology import BUNDLER_EVENTS
from shared.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: BundlerSettings | None = None) -> Service:
    settings = settings or BundlerSettings()
    service = Service(
        "bundler",
        settings,
        schema=SCHEMA,
        outbox=outbox,
        migrations=MIGRATIONS,
    )
    bundler = service.provide(Bundler.of(service))
    flow = service.provide(bundler.flow)
    niputus = service.provide(Niputus.of(service, bundler))
    service.routers.extend([jaksot_router, niput_router, reports_router])
    service.add_event_consumer(BUNDLER_EVENTS, {**state_handlers(bundler), **flow_handlers(flow)})
    service.add_jobs(
        runs,
        [
            *niputus_jobs(niputus),
            *flow_jobs(flow),
            personal_data_cleanup(bundler, retention_days=settings.personal_data_retention_days),
        ],
    )
    return service


def create_app(service: Service | None = None) -> FastAPI:
    return (service or create_service()).create_app(
        description="Judges workplace periods and forms TEP and TPK bundles on schedule."
    )
