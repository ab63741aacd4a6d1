"""The sender service. Sends survey links by e-mail and SMS, reminders, delivery status."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.sender.settings import SenderSettings
from services.sender.store.tables import SCHEMA, outbox
from shared.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: SenderSettings | None = None) -> Service:
    return Service(
        "sender", settings or SenderSettings(), schema=SCHEMA, outbox=outbox, migrations=MIGRATIONS
    )


def create_app(service: Service | None = None) -> FastAPI:
    return (service or create_service()).create_app(
        description="Sends survey links by e-mail and SMS, reminders, delivery status."
    )
