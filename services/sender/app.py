"""The sender service. Sends survey links by e-mail and SMS, reminders, delivery status."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.sender.api.messages import router as messages_router
from services.sender.messaging.requests import request_handlers
from services.sender.settings import SenderSettings
from services.sender.store.tables import SCHEMA, outbox, runs
from services.sender.usecases import Ports, Sender
from services.sender.worker import DeliveryWorker
from shared.jobs import Job
from shared.messaging.topology import SENDER_EVENTS
from shared.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: SenderSettings | None = None) -> Service:
    settings = settings or SenderSettings()
    service = Service("sender", settings, schema=SCHEMA, outbox=outbox, migrations=MIGRATIONS)
    sender = service.provide(
        Sender(
            db=service.db,
            clock=service.clock,
            settings=settings,
            ports=Ports.from_settings(settings),
        )
    )
    sender.on_staged(service.relay.wake)
    service.routers.append(messages_router)
    service.add_event_consumer(SENDER_EVENTS, request_handlers(sender))
    service.add_jobs(
        runs,
        [
            Job("reminders", sender.reminders),
            Job("personal-data-cleanup", sender.personal_data_cleanup),
        ],
    )
    service.workers.append(DeliveryWorker(sender, settings))
    return service


def create_app(service: Service | None = None) -> FastAPI:
    return (service or create_service()).create_app(
        description="Sends survey links by e-mail and SMS, reminders, delivery status."
    )
