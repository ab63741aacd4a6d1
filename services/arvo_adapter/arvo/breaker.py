"""A small circuit breaker: stop calling an Arvo that is down, try again after a cooldown.

Closed: calls pass; ``failure_threshold`` consecutive failures open it. Open: calls are
refused (the backlog waits in the queue) until ``cooldown_seconds`` have passed, then it
is half-open: one trial call passes; its success closes the breaker, its failure opens it
for another cooldown. Any answer from Arvo, a 4xx included, counts as success: Arvo is up.
Single event loop, no locks needed; the clock is injectable for tests.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class BreakerState(enum.IntEnum):
    """Values are the ``arvo_circuit_state`` gauge's: 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or cooldown_seconds < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_seconds >= 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.cooldown_seconds
        ):
            self._set(BreakerState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def seconds_until_retry(self) -> float:
        """How long an open breaker still refuses calls (0 when it lets a call through)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_seconds - self._clock())

    def allow(self) -> bool:
        """May a call go out now? Half-open lets exactly one trial through at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        # The count survives opening, so a failed half-open trial opens it again.
        self._failures += 1
        self._trial_in_flight = False
        if self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A call ended without a verdict (cancelled): let another trial through."""
        self._trial_in_flight = False

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        log.warning("circuit breaker %s", state.name.lower(), extra={"breaker": self.name})
        if self._on_change is not None:
            self._on_change(state)
