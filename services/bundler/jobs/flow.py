"""The flow's daily job: answer windows that closed before any message went out (W2)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from services.bundler.usecases import Flow
from shared.jobs import Job

TEP_CLOSE_UNSENT = "tep-close-unsent"


def flow_jobs(flow: Flow) -> list[Job]:
    """Due every day: each run closes what the days since have closed."""

    async def close_unsent(date: dt.date) -> Mapping[str, int]:
        return await flow.close_unsent(date, job=TEP_CLOSE_UNSENT)

    return [Job(TEP_CLOSE_UNSENT, close_unsent)]
