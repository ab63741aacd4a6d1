"""Each service's Alembic history builds exactly the tables its code declares."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrations import upgrade
from shared.settings import REPO_ROOT
from tests.support.infra import Infra

SERVICES = ("ingest", "bundler", "arvo_adapter", "sender")


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(infra: Infra, service: str) -> None:
    await asyncio.to_thread(
        upgrade, infra.database_url, service, Path(REPO_ROOT) / "services" / service / "migrations"
    )
    metadata = importlib.import_module(f"services.{service}.store.tables").metadata

    def differences(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, kind, _: kind != "schema" or name == service,
            },
        )
        return [
            diff
            for diff in compare_metadata(context, metadata)
            if not (diff[0] == "remove_table" and diff[1].name == "alembic_version")
        ]

    engine = create_async_engine(infra.database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await engine.dispose()
