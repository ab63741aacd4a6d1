"""Typed settings read from the environment (architecture.md, "Configuration").

Every service extends `ServiceSettings`; the variable names are the contract with operators,
so they are plain (`DATABASE_URL`, not `INGEST_DATABASE_URL`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_API_CLIENTS_FILE = REPO_ROOT / "deploy" / "dev-api-clients.json"


class ServiceSettings(BaseSettings):
    """What every service reads: where its database and broker are, its port, its clock."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/tyoelamapalaute"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    port: int = 8000
    host: str = "127.0.0.1"
    clock_today: dt.date | None = None
    log_level: str = "INFO"
    web_concurrency: int = 1
    api_clients_file: Path = DEV_API_CLIENTS_FILE
    # Only on a developer's machine: allows the published development tokens and
    # credentials, which a service otherwise refuses to start with (fail closed).
    development_mode: bool = False

    # Operational knobs; defaults suit one replica serving the whole country.
    db_pool_size: int = 20
    # Every wait on PostgreSQL is bounded (docs/decisions.md, "Runtime"): beyond these a
    # request is answered 503 rather than hanging on a silent database.
    db_connect_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 10.0
    db_pool_timeout_seconds: float = 5.0
    db_startup_timeout_seconds: float = 60.0
    consumer_prefetch: int = 32
    # A consumer of our own events applies up to this many messages in one transaction,
    # with prefetch // batch workers (shared/messaging/consumer.py): two by default, one
    # applying while the other's messages arrive; 1 turns batching off.
    consumer_batch_size: int = 16
    consumer_max_attempts: int = 5
    retry_delays_ms: list[int] = Field(default_factory=lambda: [1_000, 10_000, 60_000])
    outbox_relay_enabled: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_batch_size: int = 200
    # Readiness fails when the oldest outbox row waits longer than this.
    outbox_max_age_seconds: float = 60.0
    broker_connect_timeout_seconds: float = 10.0
    broker_publish_timeout_seconds: float = 10.0
    inbox_retention_days: int = 14
    # Dated jobs (shared/jobs.py): the scheduler runs each job due today from this time of
    # day in Helsinki (and at start-up when that time has passed); tests turn it off.
    scheduler_enabled: bool = True
    jobs_at: dt.time = dt.time(0, 30)
    scheduler_poll_seconds: float = 60.0
    max_body_bytes: int = 1024 * 1024

    # Fields whose defaults are published development credentials (a service's subclass
    # names its own); outside development mode they must be set to something else.
    DEVELOPMENT_DEFAULTS: ClassVar[tuple[str, ...]] = ()

    def development_defaults_in_use(self) -> list[str]:
        """The variables still holding a published development default."""
        fields = type(self).model_fields
        return [
            name.upper()
            for name in self.DEVELOPMENT_DEFAULTS
            if getattr(self, name) == fields[name].default
        ]
