"""One log line per delivery attempt, the same for every channel."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from services.sender.domain.outcomes import DeliveryResult

log = logging.getLogger(__name__)


async def logged(channel: str, label: str, attempt: Awaitable[DeliveryResult]) -> DeliveryResult:
    """Await ``attempt`` and log its outcome under the message's key (``label``): the
    server's answer is already without the recipient, so the line holds no personal data."""
    started = time.perf_counter()
    result = await attempt
    log.info(
        "delivery attempt",
        extra={
            "channel": channel,
            "message_key": label,
            "outcome": str(result.outcome),
            "code": result.code,
            "detail": result.detail,
            "seconds": round(time.perf_counter() - started, 4),
        },
    )
    return result
