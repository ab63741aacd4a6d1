"""The daily personal-data clean-up (P1) as a dated job of the bundler."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from services.bundler.usecases import Bundler
from shared.jobs import Job

PERSONAL_DATA_CLEANUP = "personal-data-cleanup"


def personal_data_cleanup(bundler: Bundler, *, retention_days: int) -> Job:
    """Due every day: each run removes what became older than the retention since."""

    async def run(date: dt.date) -> Mapping[str, int]:
        return await bundler.remove_personal_data(date=date, retention_days=retention_days)

    return Job(PERSONAL_DATA_CLEANUP, run)
