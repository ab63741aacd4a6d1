"""A message's life after one attempt (services.sender.domain.delivery): table-driven
verdicts, and the backoff's bounds as properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.sender.domain.delivery import (
    REPORTED,
    UNKNOWN_OUTCOME,
    WENT_OUT,
    Backoff,
    Status,
    after_attempt,
    report_status,
)
from services.sender.domain.outcomes import DeliveryResult, Outcome

T0 = datetime(2025, 3, 17, 7, 0, tzinfo=UTC)
BACKOFF = Backoff(max_seconds=300, first_wait=1, max_wait=60)


def result(outcome: Outcome, detail: str = "answer") -> DeliveryResult:
    return DeliveryResult(outcome, detail)


@pytest.mark.parametrize(
    ("outcome", "attempts", "elapsed", "status", "retried"),
    [
        (Outcome.SENT, 1, 0, Status.SENT, False),
        (Outcome.PERMANENT, 1, 0, Status.FAILED, False),
        (Outcome.UNKNOWN, 1, 0, Status.UNKNOWN, False),
        (Outcome.TEMPORARY, 1, 0, Status.RECORDED, True),
        (Outcome.TEMPORARY, 5, 200, Status.RECORDED, True),
        (Outcome.TEMPORARY, 9, 299, Status.FAILED, False),
        (Outcome.TEMPORARY, 20, 400, Status.FAILED, False),
    ],
)
def test_verdict_after_one_attempt(
    outcome: Outcome, attempts: int, elapsed: int, status: Status, retried: bool
) -> None:
    now = T0 + timedelta(seconds=elapsed)
    verdict = after_attempt(
        result(outcome), backoff=BACKOFF, attempts=attempts, first_attempt_at=T0, now=now
    )
    assert verdict.status is status
    assert (verdict.retry_at is not None) is retried
    if retried:
        assert verdict.retry_at is not None and verdict.retry_at > now


def test_the_reasons_keep_the_servers_answer() -> None:
    failed = after_attempt(
        result(Outcome.PERMANENT, "550 no such user"),
        backoff=BACKOFF,
        attempts=1,
        first_attempt_at=T0,
        now=T0,
    )
    assert failed.detail == "550 no such user"
    unknown = after_attempt(
        result(Outcome.UNKNOWN, "data: timeout"),
        backoff=BACKOFF,
        attempts=1,
        first_attempt_at=T0,
        now=T0,
    )
    assert unknown.detail.startswith(UNKNOWN_OUTCOME) and "data: timeout" in unknown.detail
    gave_up = after_attempt(
        result(Outcome.TEMPORARY, "451 later"),
        backoff=BACKOFF,
        attempts=12,
        first_attempt_at=T0,
        now=T0 + timedelta(seconds=299),
    )
    assert gave_up.detail == "gave up after 12 attempts in 299 s: 451 later"


@pytest.mark.parametrize(
    ("attempts", "wait"), [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (100, 60)]
)
def test_waits_double_up_to_the_maximum(attempts: int, wait: float) -> None:
    at = BACKOFF.next_attempt(attempts=attempts, first_attempt_at=T0, now=T0)
    assert at == T0 + timedelta(seconds=wait)


@given(
    attempts=st.integers(min_value=0, max_value=10_000),
    elapsed=st.floats(min_value=0, max_value=1_000),
    jitter=st.floats(min_value=0, max_value=0.999),
)
def test_no_attempt_is_due_past_the_retry_time(
    attempts: int, elapsed: float, jitter: float
) -> None:
    now = T0 + timedelta(seconds=elapsed)
    at = BACKOFF.next_attempt(attempts=attempts, first_attempt_at=T0, now=now, jitter=jitter)
    if at is not None:
        assert now < at <= T0 + timedelta(seconds=BACKOFF.max_seconds)
        assert at - now <= timedelta(seconds=BACKOFF.max_wait + BACKOFF.first_wait)


def test_reported_statuses() -> None:
    assert REPORTED[Status.RECORDED] == "accepted"
    assert REPORTED[Status.UNKNOWN] == "sent", "unconfirmed, followed by the reminder"
    assert Status.SENDING not in REPORTED, "an internal step, not a state change to report"
    assert {Status.SENT, Status.UNKNOWN, Status.DELIVERED} == WENT_OUT


@pytest.mark.parametrize(
    ("report", "status"),
    [("delivered", Status.DELIVERED), ("failed", Status.BOUNCED), ("processing", None)],
)
def test_sms_delivery_report_statuses(report: str, status: Status | None) -> None:
    assert report_status(report) is status
