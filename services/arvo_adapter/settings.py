"""arvo_adapter settings: where Arvo is, how to log in, how patiently to call it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from shared.settings import ServiceSettings


class ArvoAdapterSettings(ServiceSettings):
    """``ARVO_*`` variables; the password is a ``SecretStr`` so no repr or log shows it."""

    port: int = 8003
    arvo_url: str = "http://127.0.0.1:8090/api/"
    arvo_user: str = "arvo"
    arvo_password: SecretStr = SecretStr("arvo")
    # Per attempt: Arvo "can be slow (seconds)" (arvo-api.md), so reads get 10 s.
    arvo_connect_timeout_seconds: float = 3.0
    arvo_timeout_seconds: float = 10.0
    # The reminder's status read-through answers a caller who waits (issue 13).
    arvo_status_timeout_seconds: float = 2.0
    # Retries: exponential backoff with jitter, bounded by attempts and by total time.
    arvo_max_attempts: int = 5
    arvo_max_total_seconds: float = 60.0
    arvo_backoff_initial_seconds: float = 0.5
    arvo_backoff_max_seconds: float = 10.0
    # Circuit breaker: open after this many consecutive failed attempts, try again after.
    arvo_breaker_failure_threshold: int = 5
    arvo_breaker_cooldown_seconds: float = 30.0

    # The worker that calls Arvo for the recorded work: bundles in flight at once (each
    # holds a database connection for its lock), how often it looks for due work, and the
    # backoff of a piece of work that failed (exponential with jitter, capped).
    arvo_concurrency: int = 8
    arvo_work_poll_seconds: float = 1.0
    arvo_work_backoff_initial_seconds: float = 1.0
    arvo_work_backoff_max_seconds: float = 60.0

    DEVELOPMENT_DEFAULTS: ClassVar[tuple[str, ...]] = ("arvo_user", "arvo_password")

    @property
    def worker_concurrency(self) -> int:
        """`ARVO_CONCURRENCY`, within what the pool allows: each bundle in flight holds a
        connection for its lock, and the consumer, relay and routes need some too."""
        return max(1, min(self.arvo_concurrency, self.db_pool_size - 2))
