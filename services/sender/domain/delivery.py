"""A message's life (issue 14, "never twice") and what one delivery attempt does to it.

recorded → sending → sent | failed | unknown; a temporary failure puts it back to
recorded with a later due time, until the retry time is spent. An SMS's delivery report
turns sent into delivered or bounced. `sending` is entered just before the message is
handed over (SMTP DATA, the gateway request): a message found there after its worker's
lease is the unknown-outcome window, and is never sent again (at most once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.sender.domain.outcomes import DeliveryResult, Outcome


class Status(StrEnum):
    RECORDED = "recorded"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DELIVERED = "delivered"
    BOUNCED = "bounced"


#: The `tila` a status is reported with in `send.status`. An unknown outcome is reported
#: `sent` with a reason saying it is unconfirmed: the message was handed over and in
#: practice arrived (docs/decisions.md), and the reminder (S3) follows it as any sent one,
#: so a message that did not arrive after all still gets its reminder.
REPORTED: dict[Status, str] = {
    Status.RECORDED: "accepted",
    Status.SENT: "sent",
    Status.FAILED: "failed",
    Status.UNKNOWN: "sent",
    Status.DELIVERED: "delivered",
    Status.BOUNCED: "bounced",
}

UNKNOWN_OUTCOME = "unconfirmed: the message was being handed over; not sent again"

#: Statuses of a message that went out (or, unknown, most likely did): they count as the
#: bundle's first send and carry its reminder.
WENT_OUT = frozenset({Status.SENT, Status.UNKNOWN, Status.DELIVERED})


@dataclass(frozen=True)
class Backoff:
    """Waits double from ``first_wait`` up to ``max_wait`` (plus up to one ``first_wait``
    of jitter); no attempt is due later than ``max_seconds`` after the first one."""

    max_seconds: float
    first_wait: float = 1.0
    max_wait: float = 60.0

    def next_attempt(
        self, *, attempts: int, first_attempt_at: datetime, now: datetime, jitter: float = 0.0
    ) -> datetime | None:
        """When to try again after ``attempts`` tries, or None when the time is spent.
        ``jitter`` in [0, 1) spreads retries of messages that failed together."""
        exponent = min(max(attempts - 1, 0), 30)
        wait = min(self.max_wait, self.first_wait * 2**exponent) + jitter * self.first_wait
        at = now + timedelta(seconds=wait)
        if at - first_attempt_at > timedelta(seconds=self.max_seconds):
            return None
        return at


@dataclass(frozen=True)
class Verdict:
    """Where an attempt leaves the message: its new status, the detail to record, and
    for a retry, when it is due again."""

    status: Status
    detail: str
    retry_at: datetime | None = None


def after_attempt(
    result: DeliveryResult,
    *,
    backoff: Backoff,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    jitter: float = 0.0,
) -> Verdict:
    """Issue 14, "Failures": sent; permanent → failed with the server's answer; unknown
    → unknown (never retried); temporary → retried with backoff until the time is spent,
    then failed with the last answer."""
    if result.outcome is Outcome.SENT:
        return Verdict(Status.SENT, result.detail)
    if result.outcome is Outcome.PERMANENT:
        return Verdict(Status.FAILED, result.detail)
    if result.outcome is Outcome.UNKNOWN:
        return Verdict(Status.UNKNOWN, f"{UNKNOWN_OUTCOME} ({result.detail})")
    retry_at = backoff.next_attempt(
        attempts=attempts, first_attempt_at=first_attempt_at, now=now, jitter=jitter
    )
    if retry_at is None:
        spent = round((now - first_attempt_at).total_seconds())
        return Verdict(
            Status.FAILED, f"gave up after {attempts} attempts in {spent} s: {result.detail}"
        )
    return Verdict(Status.RECORDED, result.detail, retry_at)


def report_status(status: str) -> Status | None:
    """An SMS delivery report's status (arvo-api.md): delivered, or failed → bounced (the
    gateway took the message but could not deliver it, as a mail bounce)."""
    return {"delivered": Status.DELIVERED, "failed": Status.BOUNCED}.get(status)
