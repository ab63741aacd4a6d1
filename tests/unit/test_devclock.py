"""The development clock API: the demo moves every service's "today"; production has none."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import pytest

from services.ingest.app import create_service
from services.ingest.settings import IngestSettings
from shared.auth import ApiClients, hash_token
from shared.service import Service
from shared.settings import DEV_API_CLIENTS_FILE

ADMIN = {"Authorization": "Bearer dev-admin-token"}
READER = {"Authorization": "Bearer dev-reader-token"}


def client_for(settings: IngestSettings) -> tuple[httpx.AsyncClient, Service]:
    service = create_service(settings)
    app = service.create_app()
    # The lifespan (not run by the ASGI transport) would load the clients file.
    app.state.api_clients = ApiClients.from_file(settings.api_clients_file)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return client, service


async def test_in_development_mode_an_admin_moves_today_and_lets_it_run_again() -> None:
    client, service = client_for(IngestSettings(development_mode=True))
    async with client:
        moved = await client.put("/api/v1/dev/clock", json={"today": "2025-03-16"}, headers=ADMIN)
        assert moved.json() == {"today": "2025-03-16", "frozen": True}
        assert service.clock.today() == dt.date(2025, 3, 16)
        read = await client.get("/api/v1/dev/clock", headers=ADMIN)
        assert read.json()["today"] == "2025-03-16"
        released = await client.put("/api/v1/dev/clock", json={"today": None}, headers=ADMIN)
        assert released.json()["frozen"] is False
        assert service.clock.frozen is None


async def test_only_admins_move_it_and_a_bad_date_is_named() -> None:
    client, _ = client_for(IngestSettings(development_mode=True))
    async with client:
        forbidden = await client.put(
            "/api/v1/dev/clock", json={"today": "2025-03-16"}, headers=READER
        )
        assert forbidden.status_code == 403
        bad = await client.put("/api/v1/dev/clock", json={"today": "16.3.2025"}, headers=ADMIN)
        assert bad.status_code == 422
        assert bad.json()["details"][0]["loc"] == ["body", "today"]


async def test_outside_development_mode_there_is_no_clock_api(tmp_path: Path) -> None:
    clients = tmp_path / "clients.json"
    entries = json.loads(DEV_API_CLIENTS_FILE.read_text())
    entries[2]["token_sha256"] = hash_token("a production admin token")
    clients.write_text(json.dumps(entries[2:]))
    client, _ = client_for(IngestSettings(development_mode=False, api_clients_file=clients))
    async with client:
        answer = await client.put(
            "/api/v1/dev/clock",
            json={"today": "2025-03-16"},
            headers={"Authorization": "Bearer a production admin token"},
        )
        assert answer.status_code == 404
        assert "/api/v1/dev/clock" not in (await client.get("/openapi.json")).text


@pytest.fixture(autouse=True)
def _no_environment_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOCK_TODAY", raising=False)
