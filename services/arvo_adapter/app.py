"""The arvo_adapter service. The only code that talks to Arvo: answer codes and bundle links."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.arvo_adapter.settings import ArvoAdapterSettings
from services.arvo_adapter.store.tables import SCHEMA, outbox
from shared.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: ArvoAdapterSettings | None = None) -> Service:
    return Service(
        "arvo_adapter",
        settings or ArvoAdapterSettings(),
        schema=SCHEMA,
        outbox=outbox,
        migrations=MIGRATIONS,
    )


def create_app(service: Service | None = None) -> FastAPI:
    return (service or create_service()).create_app(
        description="The only code that talks to Arvo: answer codes and bundle links."
    )
