"""Retrying temporary failures with backoff, bounded by a configured time (issue 14).

Kept apart from the clients: a client makes one attempt and says what it came to; the
caller (a job or consumer) decides whether to wait here or to reschedule the message.
Only ``TEMPORARY`` is retried: ``UNKNOWN`` may have reached the server (see
services.sender.domain.outcomes) and ``PERMANENT`` never will.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from services.sender.domain.outcomes import DeliveryResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Waits grow from ``first_wait`` (doubling, with jitter) up to ``max_wait``; no attempt
    starts when its wait would end past ``max_seconds`` from the first attempt."""

    max_seconds: float
    first_wait: float = 1.0
    max_wait: float = 60.0


def _log_retry(label: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        result = state.outcome.result() if state.outcome else None
        log.warning(
            "delivery failed temporarily; retrying",
            extra={
                "message_key": label,
                "attempt": state.attempt_number,
                "wait_seconds": round(state.upcoming_sleep, 3),
                "code": getattr(result, "code", None),
                "detail": getattr(result, "detail", None),
            },
        )

    return before_sleep


async def deliver_with_retry(
    attempt: Callable[[], Awaitable[DeliveryResult]], policy: RetryPolicy, *, label: str
) -> DeliveryResult:
    """Run ``attempt`` until it is not temporary or the time is up; the last result.

    ``label`` names the message in logs (its key, never the recipient).
    """
    retrying = AsyncRetrying(
        retry=retry_if_result(lambda result: result.retryable),
        stop=stop_before_delay(policy.max_seconds),
        wait=wait_exponential(multiplier=policy.first_wait, max=policy.max_wait)
        + wait_random(0, policy.first_wait),
        before_sleep=_log_retry(label),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )

    async def once() -> DeliveryResult:
        # A coroutine function of its own: tenacity awaits only what it sees as one.
        return await attempt()

    result: DeliveryResult = await retrying(once)
    return result
