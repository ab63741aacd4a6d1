"""Moving "today" of a running service, in development mode only (demo, e2e tests).

`CLOCK_TODAY` freezes a service's date for its whole life; a demo that walks a half-year
through the dated jobs needs every service to agree on a date that moves. So, only when
`DEVELOPMENT_MODE=true`, each service serves `GET/PUT /api/v1/dev/clock` (scope `admin`):
`PUT {"today": "YYYY-MM-DD"}` freezes the clock there, `{"today": null}` lets it run again.
Production never mounts the router (a 404 there, like any unknown path). The date is held
per process: with `WEB_CONCURRENCY` > 1 each worker has its own, so keep one worker.
"""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from shared.auth import require_scope
from shared.clock import Clock
from shared.errors import error_responses

log = logging.getLogger(__name__)


class ClockBody(BaseModel):
    today: dt.date | None = Field(
        description="the date the service takes for today; null lets its clock run again"
    )


class ClockOut(BaseModel):
    today: dt.date
    frozen: bool


def dev_clock_router(clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/api/v1/dev", tags=["development"])
    admin = Depends(require_scope("admin"))
    errors = error_responses(401, 403, 422)

    @router.get("/clock", response_model=ClockOut, dependencies=[admin], responses=errors)
    async def get_dev_clock() -> ClockOut:
        return ClockOut(today=clock.today(), frozen=clock.frozen is not None)

    @router.put("/clock", response_model=ClockOut, dependencies=[admin], responses=errors)
    async def put_dev_clock(body: ClockBody) -> ClockOut:
        clock.frozen = body.today
        log.warning(
            "clock set through the development API",
            extra={"clock_today": body.today.isoformat() if body.today else None},
        )
        return ClockOut(today=clock.today(), frozen=clock.frozen is not None)

    return router
