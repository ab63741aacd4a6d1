"""TEP niputus on bundling dates (D3) and TPK niputus on 1.1 and 1.7 (T4), by name as
`POST /api/v1/runs` takes them (api.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from services.bundler.domain.niputus import is_tep_run_date
from services.bundler.domain.tpk import is_tpk_run_date
from services.bundler.usecases import Niputus
from shared.jobs import Job

TEP_NIPUTUS = "tep-niputus"
TPK_NIPUTUS = "tpk-niputus"


def niputus_jobs(niputus: Niputus) -> list[Job]:
    """The two niputus jobs, TEP first: on 1.1 and 1.7 the TPK run then sees the jaksot
    the TEP run has just judged again."""

    async def tep(date: dt.date) -> Mapping[str, int]:
        return await niputus.tep(date, job=TEP_NIPUTUS)

    async def tpk(date: dt.date) -> Mapping[str, int]:
        return await niputus.tpk(date, job=TPK_NIPUTUS)

    return [
        Job(TEP_NIPUTUS, tep, due=is_tep_run_date),
        Job(TPK_NIPUTUS, tpk, due=is_tpk_run_date),
    ]
