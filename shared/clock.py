"""The one clock: "today" is a calendar date in Europe/Helsinki (architecture.md, "Time").

`CLOCK_TODAY=YYYY-MM-DD` freezes it for demos and acceptance tests. Dated jobs receive the
date as an argument; only the scheduler and request handlers ask the clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

HELSINKI = ZoneInfo("Europe/Helsinki")
log = logging.getLogger(__name__)


class Clock:
    """Gives today's date in Helsinki, or the frozen date when one is configured."""

    def __init__(self, frozen: dt.date | None = None) -> None:
        self.frozen = frozen

    def warn_if_frozen(self) -> None:
        """Called at start-up, once logging is set up: a frozen clock must not go unnoticed."""
        if self.frozen is not None:
            log.warning(
                "clock frozen by CLOCK_TODAY", extra={"clock_today": self.frozen.isoformat()}
            )

    def today(self) -> dt.date:
        if self.frozen is not None:
            return self.frozen
        return dt.datetime.now(HELSINKI).date()

    def now(self) -> dt.datetime:
        """An aware timestamp; with a frozen date, that date at the current Helsinki time."""
        current = dt.datetime.now(HELSINKI)
        if self.frozen is None:
            return current
        return dt.datetime.combine(self.frozen, current.timetz())
