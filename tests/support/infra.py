"""Real PostgreSQL and RabbitMQ for tests: one fresh database and vhost per test session.

Both must already run on loopback (CI machines have them). When one does not answer,
the session stops at once and says how to start it, instead of failing test by test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aio_pika
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

BASE_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BASE_AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

HOW_TO_START = (
    "Start them on loopback, e.g. on Debian: "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` and "
    "`rabbitmq-server -detached`; or with Docker: `docker compose up -d postgres rabbitmq`."
)


class InfrastructureMissing(RuntimeError):
    pass


def tcp_unreachable(name: str, url: str, default_port: int) -> str | None:
    """Why `url`'s server cannot be reached (a quick TCP connect), or None when it answers.

    The up-front word before a session or `scripts/run` starts; the real checks (a query,
    an AMQP handshake) follow in `create_infra`.
    """
    parts = urlsplit(url.replace("postgresql+asyncpg", "postgresql"))
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        return f"{name} is not reachable at {host}:{port} ({exc.strerror or exc})"


def missing_test_infra() -> list[str]:
    """What of the tests' PostgreSQL (TEST_DATABASE_URL) and RabbitMQ (TEST_AMQP_URL) is down."""
    checks = (
        tcp_unreachable("PostgreSQL", BASE_DATABASE_URL, 5432),
        tcp_unreachable("RabbitMQ", BASE_AMQP_URL, 5672),
    )
    return [problem for problem in checks if problem]


@dataclass(frozen=True)
class Infra:
    database_url: str
    amqp_url: str
    vhost: str | None


async def _check_postgres() -> None:
    engine = create_async_engine(BASE_DATABASE_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise InfrastructureMissing(
            f"PostgreSQL is not reachable at {BASE_DATABASE_URL}: {exc}. {HOW_TO_START}"
        ) from exc
    finally:
        await engine.dispose()


async def _check_rabbitmq(url: str) -> None:
    try:
        connection = await aio_pika.connect(url, timeout=5)
        await connection.close()
    except Exception as exc:
        raise InfrastructureMissing(
            f"RabbitMQ is not reachable at {url}: {exc}. {HOW_TO_START}"
        ) from exc


def _rabbitmqctl(*args: str) -> bool:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return False
    result = subprocess.run([ctl, *args], capture_output=True, timeout=60, check=False)
    return result.returncode == 0


async def create_infra() -> Infra:
    await _check_postgres()
    await _check_rabbitmq(BASE_AMQP_URL)
    suffix = uuid.uuid4().hex[:10]
    name = f"tp_test_{suffix}"
    admin = create_async_engine(BASE_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    database_url = make_url(BASE_DATABASE_URL).set(database=name).render_as_string(False)

    vhost_name = f"tp_test_{suffix}"
    vhost: str | None = None
    amqp_url = BASE_AMQP_URL  # without rabbitmqctl here, share the default vhost
    if await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost_name):
        await asyncio.to_thread(
            _rabbitmqctl, "set_permissions", "-p", vhost_name, "guest", ".*", ".*", ".*"
        )
        vhost = vhost_name
        amqp_url = BASE_AMQP_URL.rstrip("/") + "/" + quote(vhost_name, safe="")
    await _check_rabbitmq(amqp_url)
    return Infra(database_url=database_url, amqp_url=amqp_url, vhost=vhost)


async def destroy_infra(infra: Infra) -> None:
    name = make_url(infra.database_url).database
    admin = create_async_engine(BASE_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
    if infra.vhost is not None:
        await asyncio.to_thread(_rabbitmqctl, "delete_vhost", infra.vhost)
