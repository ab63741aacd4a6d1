"""Dated jobs: idempotent functions of a date, run once per (job, date) (architecture.md,
"Time").

A run is a row unique by (job, date). Asking for the same job and date again returns the
same run; a run that is done is never run again. While a run executes, its process holds
a PostgreSQL session advisory lock on it, so with several replicas exactly one executes
it; a crash releases the lock with the connection, and the run is taken up again by the
next request or scheduler pass (the jobs themselves are idempotent, so resuming a
half-done run completes it without doing anything twice).

The scheduler asks the clock for today and, from the configured time of day (00:30 in
Helsinki), runs each job that is due today and not yet done; at start-up too, so a run
missed while the service was down happens when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Depends
from prometheus_client import Counter
from pydantic import BaseModel, Field
from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.auth import require_scope
from shared.clock import HELSINKI, Clock
from shared.db import Database
from shared.errors import ApiError, error_responses

log = logging.getLogger(__name__)

RUNS = Counter("job_runs_total", "Dated job runs finished", ["job", "status"])

JobFunction = Callable[[dt.date], Awaitable[Mapping[str, int]]]
"""A job: does the work of one date and returns what it counted (shown by the runs API)."""


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Job:
    """A dated job: its name (the API's `job`), its work, and the dates it is due on."""

    name: str
    run: JobFunction
    due: Callable[[dt.date], bool] = lambda _: True


@dataclass(frozen=True)
class Run:
    id: uuid.UUID
    job: str
    date: dt.date
    status: RunStatus
    counts: dict[str, int]
    error: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def runs_table(metadata: MetaData) -> Table:
    return Table(
        "runs",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("job", Text, nullable=False),
        Column("date", Date, nullable=False),
        Column("status", Text, nullable=False),
        Column("counts", JSON, nullable=False, server_default=text("'{}'::json")),
        Column("error", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("started_at", DateTime(timezone=True)),
        Column("finished_at", DateTime(timezone=True)),
        UniqueConstraint("job", "date"),
    )


def _lock_key(schema: str, job: str, date: dt.date) -> int:
    """A signed 64-bit advisory-lock key for one run of one service's schema."""
    high = zlib.crc32(f"{schema}:{job}".encode())
    low = date.toordinal()
    return ((high << 32) | low) - (1 << 63)


class UnknownJob(ValueError):
    pass


class Runs:
    """Runs a service's dated jobs once per date, across replicas."""

    def __init__(self, db: Database, table: Table, jobs: list[Job]) -> None:
        self.db = db
        self.table = table
        self.jobs = {job.name: job for job in jobs}
        self._tasks: set[asyncio.Task[Run]] = set()

    def job(self, name: str) -> Job:
        try:
            return self.jobs[name]
        except KeyError:
            raise UnknownJob(name) from None

    async def get(self, run_id: uuid.UUID) -> Run | None:
        async with self.db.transaction() as session:
            row = (
                await session.execute(select(self.table).where(self.table.c.id == run_id))
            ).first()
        return None if row is None else _run(row._mapping)

    async def _ensure(self, job: str, date: dt.date) -> Run:
        """The run row of (job, date), made when missing: the same one for every caller."""
        async with self.db.transaction() as session:
            await session.execute(
                insert(self.table)
                .values(id=uuid.uuid4(), job=job, date=date, status=RunStatus.PENDING)
                .on_conflict_do_nothing(index_elements=["job", "date"])
            )
            row = (
                await session.execute(
                    select(self.table).where(self.table.c.job == job, self.table.c.date == date)
                )
            ).one()
        return _run(row._mapping)

    async def request(self, job: str, date: dt.date) -> Run:
        """The run of (job, date), started in the background unless it is done."""
        self.job(job)
        run = await self._ensure(job, date)
        if run.status is not RunStatus.DONE:
            task = asyncio.create_task(self.execute(job, date), name=f"run-{job}-{date}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return run

    async def execute(self, job: str, date: dt.date) -> Run:
        """Run (job, date) to the end here, unless it is done or another process runs it."""
        work = self.job(job)
        run = await self._ensure(job, date)
        if run.status is RunStatus.DONE:
            return run
        schema = self.table.schema or "public"
        key = _lock_key(schema, job, date)
        async with self.db.engine.connect() as lock_conn:
            got = await lock_conn.scalar(select(func.pg_try_advisory_lock(key)))
            await lock_conn.commit()
            if not got:
                return run
            try:
                return await self._execute_locked(work, run)
            finally:
                await _release(lock_conn, key)

    async def _execute_locked(self, work: Job, run: Run) -> Run:
        # Under the lock, read again: another process may have finished it meanwhile.
        current = await self.get(run.id)
        if current is not None and current.status is RunStatus.DONE:
            return current
        await self._set(run.id, status=RunStatus.RUNNING, started_at=func.now(), error=None)
        log.info("job run started", extra={"job": work.name, "date": run.date.isoformat()})
        try:
            counts = dict(await work.run(run.date))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.exception("job run failed", extra={"job": work.name, "date": run.date.isoformat()})
            await self._set(run.id, status=RunStatus.FAILED, error=error, finished_at=func.now())
            RUNS.labels(work.name, RunStatus.FAILED).inc()
        else:
            await self._set(run.id, status=RunStatus.DONE, counts=counts, finished_at=func.now())
            RUNS.labels(work.name, RunStatus.DONE).inc()
            log.info(
                "job run done",
                extra={"job": work.name, "date": run.date.isoformat(), "counts": counts},
            )
        finished = await self.get(run.id)
        assert finished is not None
        return finished

    async def _set(self, run_id: uuid.UUID, **values: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(self.table).where(self.table.c.id == run_id).values(**values)
            )

    async def stop(self) -> None:
        """Cancel runs in progress; each is resumed later (its lock goes with the connection)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _release(conn: AsyncConnection, key: int) -> None:
    """Unlock; if that cannot be done (cancelled, connection broken), close the connection
    instead of returning it to the pool still holding the lock."""
    try:
        await asyncio.shield(conn.execute(select(func.pg_advisory_unlock(key))))
        await conn.commit()
    except BaseException:
        await conn.invalidate()
        raise


def _run(row: RowMapping) -> Run:
    return Run(
        id=row["id"],
        job=row["job"],
        date=row["date"],
        status=RunStatus(row["status"]),
        counts=dict(row["counts"] or {}),
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


class Scheduler:
    """Runs each job due today once its time of day has come (Helsinki time)."""

    def __init__(
        self,
        runs: Runs,
        clock: Clock,
        *,
        at: dt.time = dt.time(0, 30),
        poll_seconds: float = 60.0,
    ) -> None:
        self.runs = runs
        self.clock = clock
        self.at = at
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def tick(self) -> list[Run]:
        """One pass: today's due jobs whose time has come, each run here or elsewhere."""
        if dt.datetime.now(HELSINKI).time() < self.at:
            return []
        today = self.clock.today()
        return [
            await self.runs.execute(job.name, today)
            for job in self.runs.jobs.values()
            if job.due(today)
        ]

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.warning("scheduler pass failed; will retry", exc_info=True)
            await asyncio.sleep(self.poll_seconds)


# --- The runs API (api.md: POST /api/v1/runs, GET /api/v1/runs/{run_id}) -------------


class RunRequest(BaseModel):
    job: str = Field(description="the job's name, e.g. `tep-niputus`")
    date: dt.date = Field(description="the date the job runs for")


class RunOut(BaseModel):
    run_id: uuid.UUID
    job: str
    date: dt.date
    status: RunStatus
    counts: dict[str, int]
    error: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            run_id=run.id,
            job=run.job,
            date=run.date,
            status=run.status,
            counts=run.counts,
            error=run.error,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


def runs_router(runs: Runs) -> APIRouter:
    """`POST /api/v1/runs` runs a job for any date (scope `admin`); the same job and date
    again answers the same run and does nothing twice."""
    router = APIRouter(prefix="/api/v1", tags=["runs"])
    admin = Depends(require_scope("admin"))
    errors = error_responses(401, 403, 404, 422)

    @router.post(
        "/runs", status_code=202, response_model=RunOut, dependencies=[admin], responses=errors
    )
    async def request_run(body: RunRequest) -> RunOut:
        if body.job not in runs.jobs:
            names = ", ".join(sorted(runs.jobs))
            raise ApiError(
                422,
                f"invalid request: body.job must be one of {names}",
                [{"loc": ["body", "job"], "msg": f"unknown job; one of {names}"}],
            )
        return RunOut.of(await runs.request(body.job, body.date))

    @router.get("/runs/{run_id}", response_model=RunOut, dependencies=[admin], responses=errors)
    async def get_run(run_id: uuid.UUID) -> RunOut:
        run = await runs.get(run_id)
        if run is None:
            raise ApiError(404, f"run {run_id} is not known")
        return RunOut.of(run)

    return router
