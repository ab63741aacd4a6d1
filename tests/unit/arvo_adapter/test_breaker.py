"""The circuit breaker's states, driven by a hand-moved clock."""

from __future__ import annotations

import pytest

from services.arvo_adapter.arvo import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        "test",
        failure_threshold=3,
        cooldown_seconds=10,
        clock=clock,
        on_change=None if changes is None else changes.append,
    )


def test_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the count
    b.record_failure()
    b.record_failure()
    assert (b.state, b.allow()) == (BreakerState.CLOSED, True)
    b.record_failure()
    assert (b.state, b.allow()) == (BreakerState.OPEN, False)
    assert b.seconds_until_retry() == 10


def test_half_open_after_cooldown_lets_one_trial_through() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    b = breaker(clock, changes)
    for _ in range(3):
        b.record_failure()
    clock.now += 9.9
    assert not b.allow()
    clock.now += 0.1
    assert b.state is BreakerState.HALF_OPEN
    assert b.seconds_until_retry() == 0
    assert b.allow() is True
    assert b.allow() is False  # one trial at a time
    b.record_success()
    assert (b.state, b.allow(), b.consecutive_failures) == (BreakerState.CLOSED, True, 0)
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_trial_opens_for_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now += 5
    assert not b.allow()
    assert b.seconds_until_retry() == 5


def test_released_trial_lets_the_next_one_through() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.release()  # e.g. the trial was cancelled
    assert b.allow()


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, -1.0)])
def test_rejects_nonsense_configuration(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=threshold, cooldown_seconds=cooldown)
