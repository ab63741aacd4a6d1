"""Issue 12, "What must hold": two bundler processes on one database, asked for the same
TEP niputus date at the same moment. Every bundle is formed once, every jakso is in one
bundle, every bundle has one `nippu.ready` (one message id).

The jaksot are written straight into the tables (tests/support/bundler_seed.py), in a
year and koulutustoimijat of this test's own."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from services.bundler.store.tables import jakso_transitions, niput
from services.bundler.store.tables import jaksot as jaksot_table
from tests.support.bundler_seed import koulutustoimija as seeded_koulutustoimija
from tests.support.bundler_seed import seed_due_jaksot
from tests.support.events import EventCapture
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, Running, ServiceProcess, service_env

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_two_processes_running_one_date_at_once_bundle_each_jakso_once(
    infra: Infra, bundler: Running, events: EventCapture
) -> None:
    count = 2_000
    salt = random.randint(0, 10**6)
    kt_base = 6 * 10**14 + salt * 100
    niputuspvm = dt.date(2041, 3, 16)
    db = bundler.service.db
    await seed_due_jaksot(
        db, count, niputuspvm=niputuspvm, first_id=7 * 10**14 + salt * 10**5, kt_base=kt_base
    )
    kts = sorted({seeded_koulutustoimija(kt_base, n) for n in range(count)})
    mine = jaksot_table.c.koulutustoimija_oid.in_(kts)

    processes = [
        ServiceProcess("bundler", service_env(infra, WEB_CONCURRENCY="1")) for _ in range(2)
    ]
    try:
        await asyncio.gather(*(p.start() for p in processes))
        body = {"job": "tep-niputus", "date": niputuspvm.isoformat()}
        async with httpx.AsyncClient(headers=ADMIN, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post(f"{p.base_url}/api/v1/runs", json=body) for p in processes)
            )
            assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
            run_ids = {a.json()["run_id"] for a in answers}
            assert len(run_ids) == 1, "one run of (job, date), whichever process got it"
            (run_id,) = run_ids

            async def statuses() -> list[str]:
                got = await asyncio.gather(
                    *(client.get(f"{p.base_url}/api/v1/runs/{run_id}") for p in processes)
                )
                return [r.json()["status"] for r in got]

            done = await eventually(
                statuses,
                lambda s: all(x in ("done", "failed") for x in s),
                timeout=60,
                what="the run, seen from both processes",
            )
            assert done == ["done", "done"]
    finally:
        for p in processes:
            if p.proc is not None and p.proc.poll() is None:
                await p.terminate()

    async with db.transaction() as session:
        sizes = (
            await session.execute(
                select(jaksot_table.c.nippu_id, func.count())
                .where(mine)
                .group_by(jaksot_table.c.nippu_id)
            )
        ).all()
        bundle_ids = set(
            await session.scalars(select(niput.c.id).where(niput.c.koulutustoimija_oid.in_(kts)))
        )
        n1 = await session.scalar(
            select(func.count())
            .select_from(jakso_transitions.join(jaksot_table))
            .where(mine, jakso_transitions.c.rule == "N1")
        )
    # Each student's running second jakso is not due: it stays out of every bundle.
    assert {nippu_id for nippu_id, _ in sizes} == bundle_ids | {None}
    assert len(bundle_ids) == count // 4, "each instructor's bundle formed once"
    assert {size for nippu_id, size in sizes if nippu_id is not None} == {4}
    assert n1 == count, "each jakso bundled once (E18: one N1 transition each)"

    def ready(e: dict[str, Any]) -> bool:
        return e["type"] == "nippu.ready" and e["payload"]["koulutustoimija_oid"] in kts

    async def published() -> int:
        return len(events.matching(ready))

    await eventually(published, lambda n: n >= len(bundle_ids), timeout=60, what="events")
    messages: dict[str, set[str]] = {}
    for e in events.matching(ready):
        messages.setdefault(e["payload"]["nippu_id"], set()).add(e["message_id"])
    assert {uuid.UUID(k) for k in messages} == bundle_ids
    assert all(len(ids) == 1 for ids in messages.values()), "one event per bundle"
    assert sorted(len(e["payload"]["jaksot"]) for e in events.matching(ready)) == [4] * len(
        bundle_ids
    )
