"""Dated jobs against the real PostgreSQL: one run per (job, date), across processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import Column, Date, Integer, Table, Text, func, insert, select, text

from shared.auth import ApiClients
from shared.clock import Clock
from shared.db import Database, service_metadata
from shared.errors import install_error_handlers
from shared.jobs import Job, Runs, RunStatus, Scheduler, runs_router, runs_table
from shared.settings import DEV_API_CLIENTS_FILE
from tests.fakes.server import serve
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, READER_TOKEN

SCHEMA = "jobs_test"
metadata = service_metadata(SCHEMA)
runs = runs_table(metadata)
#: What the test jobs did: one row per execution, so "done once" is counted in the database.
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", Text, nullable=False),
    Column("date", Date, nullable=False),
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(infra: Infra) -> AsyncIterator[Database]:
    database = Database(infra.database_url, pool_size=5)
    async with database.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


def recording(db: Database, name: str, gate: asyncio.Event | None = None) -> Job:
    """A job that records each execution; with a gate, it waits for it to open first."""

    async def run(date: dt.date) -> Mapping[str, int]:
        if gate is not None:
            await gate.wait()
        async with db.transaction() as session:
            await session.execute(insert(effects).values(job=name, date=date))
        return {"effects": 1}

    return Job(name, run)


async def executions(db: Database, name: str) -> int:
    async with db.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(effects).where(effects.c.job == name)
        )
    return int(count or 0)


def job_name() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


async def test_the_same_job_and_date_twice_is_one_run_done_once(db: Database) -> None:
    name = job_name()
    registry = Runs(db, runs, [recording(db, name)])
    day = dt.date(2026, 3, 16)
    first = await registry.execute(name, day)
    second = await registry.execute(name, day)
    assert (first.id, first.status, first.counts) == (second.id, RunStatus.DONE, {"effects": 1})
    assert await executions(db, name) == 1


async def test_two_processes_running_one_date_at_once_do_it_once(
    db: Database, infra: Infra
) -> None:
    name = job_name()
    gate = asyncio.Event()
    other_db = Database(infra.database_url, pool_size=3)  # another replica's own pool
    try:
        one = Runs(db, runs, [recording(db, name, gate)])
        two = Runs(other_db, runs, [recording(other_db, name, gate)])
        day = dt.date(2026, 4, 1)
        racing = [asyncio.create_task(r.execute(name, day)) for r in (one, two, one, two)]
        await asyncio.sleep(0.2)  # let every racer reach the lock before the work finishes
        gate.set()
        results = await asyncio.gather(*racing)
        assert len({r.id for r in results}) == 1
        assert await executions(db, name) == 1
        assert (await one.execute(name, day)).status is RunStatus.DONE
    finally:
        await other_db.dispose()


async def test_a_failed_run_says_why_and_completes_when_asked_again(db: Database) -> None:
    name = job_name()
    attempts = 0

    async def flaky(date: dt.date) -> Mapping[str, int]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("database said no")
        return {"bundles": 2}

    registry = Runs(db, runs, [Job(name, flaky)])
    failed = await registry.execute(name, dt.date(2026, 5, 1))
    assert (failed.status, failed.error) == (RunStatus.FAILED, "RuntimeError: database said no")
    done = await registry.execute(name, dt.date(2026, 5, 1))
    assert (done.id, done.status, done.counts, done.error) == (
        failed.id,
        RunStatus.DONE,
        {"bundles": 2},
        None,
    )


async def test_a_run_interrupted_midway_is_taken_up_by_another_process(
    db: Database, infra: Infra
) -> None:
    name = job_name()
    never = asyncio.Event()
    registry = Runs(db, runs, [recording(db, name, never)])
    day = dt.date(2026, 6, 16)
    interrupted = asyncio.create_task(registry.execute(name, day))
    run = await eventually(
        lambda: registry._ensure(name, day), lambda r: r.status is RunStatus.RUNNING
    )
    interrupted.cancel()
    with pytest.raises(asyncio.CancelledError):
        await interrupted
    other_db = Database(infra.database_url, pool_size=2)
    try:
        resumed = await Runs(other_db, runs, [recording(other_db, name)]).execute(name, day)
    finally:
        await other_db.dispose()
    assert (resumed.id, resumed.status) == (run.id, RunStatus.DONE)
    assert await executions(db, name) == 1


async def test_the_scheduler_runs_what_is_due_today_once(db: Database) -> None:
    due, not_due = job_name(), job_name()
    today = dt.date(2026, 7, 1)
    registry = Runs(
        db,
        runs,
        [
            Job(due, recording(db, due).run, due=lambda d: d.day in (1, 16)),
            Job(not_due, recording(db, not_due).run, due=lambda d: d.month == 12),
        ],
    )
    scheduler = Scheduler(registry, Clock(today), at=dt.time(0, 0))
    assert [(r.job, r.date, r.status) for r in await scheduler.tick()] == [
        (due, today, RunStatus.DONE)
    ]
    await scheduler.tick()
    assert (await executions(db, due), await executions(db, not_due)) == (1, 0)


@pytest_asyncio.fixture(loop_scope="session")
async def api(db: Database) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    name = job_name()
    registry = Runs(db, runs, [recording(db, name)])
    app = FastAPI()
    app.state.api_clients = ApiClients.from_file(DEV_API_CLIENTS_FILE)
    install_error_handlers(app)
    app.include_router(runs_router(registry))
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        client.headers["authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client, name
    await registry.stop()


async def test_runs_api_answers_the_same_run_for_the_same_job_and_date(
    api: tuple[httpx.AsyncClient, str], db: Database
) -> None:
    client, name = api
    first = await client.post("/api/v1/runs", json={"job": name, "date": "2026-03-16"})
    assert first.status_code == 202
    run_id = first.json()["run_id"]
    done = await eventually(
        lambda: client.get(f"/api/v1/runs/{run_id}"), lambda r: r.json()["status"] == "done"
    )
    assert done.json()["counts"] == {"effects": 1}
    again = await client.post("/api/v1/runs", json={"job": name, "date": "2026-03-16"})
    assert (again.status_code, again.json()["run_id"], again.json()["status"]) == (
        202,
        run_id,
        "done",
    )
    assert await executions(db, name) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"job": "no-such-job", "date": "2026-03-16"}, ["body", "job"]),
        ({"job": "x", "date": "2026-02-30"}, ["body", "date"]),
    ],
    ids=["unknown-job", "impossible-date"],
)
async def test_runs_api_names_the_bad_field(
    api: tuple[httpx.AsyncClient, str], body: dict[str, str], loc: list[str]
) -> None:
    client, _ = api
    answer = await client.post("/api/v1/runs", json=body)
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["details"]] == [loc]


async def test_runs_api_is_for_admins_and_knows_its_runs(
    api: tuple[httpx.AsyncClient, str],
) -> None:
    client, name = api
    body = {"job": name, "date": "2026-01-01"}
    reader = {"authorization": f"Bearer {READER_TOKEN}"}
    assert (await client.post("/api/v1/runs", json=body, headers=reader)).status_code == 403
    assert (
        await client.post("/api/v1/runs", json=body, headers={"authorization": ""})
    ).status_code == 401
    assert (await client.get(f"/api/v1/runs/{uuid.uuid4()}")).status_code == 404
