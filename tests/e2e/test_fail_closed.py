"""Fail closed (issue 11): outside DEVELOPMENT_MODE a service refuses to start with the
published development tokens or credentials, says why in one line, and exits non-zero."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.auth import hash_token
from shared.settings import DEV_API_CLIENTS_FILE, REPO_ROOT
from tests.support.infra import Infra
from tests.support.services import ServiceProcess, free_port, service_env

pytestmark = pytest.mark.e2e
PRODUCTION_TOKEN = "a-token-only-this-test-knows"


@pytest.fixture
def production_clients(tmp_path: Path) -> Path:
    path = tmp_path / "api-clients.json"
    entry = {
        "client": "ehoks",
        "token_sha256": hash_token(PRODUCTION_TOKEN),
        "scopes": ["hoks:write"],
        "koulutustoimijat": ["*"],
    }
    path.write_text(json.dumps([entry]))
    return path


def production_env(infra: Infra, **extra: str) -> dict[str, str]:
    return {**service_env(infra), "DEVELOPMENT_MODE": "false", **extra}


async def refusal(name: str, env: dict[str, str]) -> str:
    """Run `python -m services.<name>` to its end; its one CRITICAL line, with no traceback."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", f"services.{name}"],
        cwd=REPO_ROOT,
        env={**os.environ, **env, "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    [critical] = [line for line in lines if line["level"] == "CRITICAL"]
    assert critical["event"].startswith("refusing to start outside development mode: ")
    message: str = critical["event"]
    return message


async def test_the_development_clients_file_is_refused(infra: Infra, tmp_path: Path) -> None:
    # Under another name too: it is the tokens that are published, not the file name.
    renamed = tmp_path / "clients.json"
    renamed.write_text(DEV_API_CLIENTS_FILE.read_text())
    default, copy = await asyncio.gather(
        refusal("ingest", production_env(infra)),
        refusal("ingest", production_env(infra, API_CLIENTS_FILE=str(renamed))),
    )
    assert f"API_CLIENTS_FILE {DEV_API_CLIENTS_FILE} holds the development tokens" in default
    assert f"API_CLIENTS_FILE {renamed} holds the development tokens" in copy


async def test_default_arvo_credentials_are_refused(infra: Infra, production_clients: Path) -> None:
    env = production_env(infra, API_CLIENTS_FILE=str(production_clients))
    both, password = await asyncio.gather(
        refusal("arvo_adapter", env), refusal("arvo_adapter", {**env, "ARVO_USER": "tep"})
    )
    assert "ARVO_USER is the development default" in both
    assert "ARVO_PASSWORD is the development default" in both
    assert "API_CLIENTS_FILE" not in both
    assert "ARVO_USER" not in password and "ARVO_PASSWORD" in password


async def test_the_default_sms_token_is_refused(infra: Infra, production_clients: Path) -> None:
    message = await refusal(
        "sender", production_env(infra, API_CLIENTS_FILE=str(production_clients))
    )
    assert "SMS_GATEWAY_TOKEN is the development default" in message
    assert "SMS_CALLBACK_TOKEN is the development default" in message
    assert "ARVO_ADAPTER_TOKEN is the development default" in message


async def test_a_production_configuration_starts_and_serves_its_own_clients(
    infra: Infra, production_clients: Path
) -> None:
    process = ServiceProcess(
        "ingest", production_env(infra, API_CLIENTS_FILE=str(production_clients))
    )
    await process.start()
    try:
        async with httpx.AsyncClient(base_url=process.base_url, timeout=10) as client:
            known = await client.delete(
                "/api/v1/hoks/1", headers={"authorization": f"Bearer {PRODUCTION_TOKEN}"}
            )
            published = await client.delete(
                "/api/v1/hoks/1", headers={"authorization": "Bearer dev-upstream-token"}
            )
        assert known.status_code == 404  # authenticated; this HOKS is not known
        assert published.status_code == 401
    finally:
        await process.terminate()


async def test_development_mode_allows_the_development_defaults(infra: Infra) -> None:
    process = ServiceProcess("arvo_adapter", {**service_env(infra), "DEVELOPMENT_MODE": "true"})
    await process.start()
    await process.terminate()
