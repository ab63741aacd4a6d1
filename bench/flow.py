"""Benchmark of the bundler's flow after a TEP run, each beside a baseline in the same run.

Seeds a fresh database with N due jaksot (tests/support/bundler_seed.py: instructors of
4 students, 20 koulutustoimijat) and forms their bundles with the real TEP run, then:

- `send.status`: M bundles get one `sent` report each through `Flow.apply_send_status`
  (one transaction per report, as the consumer applies it: lock, history, derived state,
  W2 validity, the jaksot's states and E18 history, `arvo.status_update` in the outbox),
  beside the baseline of the same row changes as two plain SQL statements per report
  (INSERT the report, UPDATE the bundle) in one transaction each;
- response rates over every koulutustoimija (`Flow.response_rates`) beside the same
  aggregate as one SQL text statement;
- the N5 report's first page of 1,000 rows for one koulutustoimija (`Flow.jaksot_report`)
  beside the same SELECT as SQL text.

Times are medians of 5 rounds (the send.status pass runs once). Prints times and ratios.

    python bench/flow.py --jaksot 20000 --reports 2000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.bundler.app import MIGRATIONS
from services.bundler.store.tables import SCHEMA, niput, outbox
from services.bundler.usecases import Bundler, Flow, FlowCause, Niputus
from shared.auth import ApiClient
from shared.clock import Clock
from shared.db import Database
from shared.events import SendStatus
from shared.migrations import upgrade
from tests.support.bundler_seed import koulutustoimija, seed_due_jaksot
from tests.support.infra import create_infra, destroy_infra

RUN_DATE = dt.date(2025, 3, 16)
SENT_AT = dt.datetime(2025, 3, 16, 10, 0, tzinfo=dt.UTC)
EVERYONE = ApiClient("bench", "", frozenset({"palaute:read"}), frozenset({"*"}))
KT_BASE = 10**10

BASELINE_REPORT = f"""
INSERT INTO {SCHEMA}.lahetykset (nippu_id, message_key, kind, kanava, tila, at)
VALUES (:nippu_id, :key, 'initial', 'email', 'sent', :at)
"""
BASELINE_STATE = f"""
UPDATE {SCHEMA}.niput SET tila = 'lahetetty', lahetyspvm = :day, voimassa_loppupvm = :until
WHERE id = :nippu_id
"""
BASELINE_RATES = f"""
SELECT n.koulutustoimija_oid,
       count(DISTINCT n.id) FILTER (WHERE n.tila IN ('lahetetty', 'vastattu')),
       count(DISTINCT n.id) FILTER (WHERE n.tila = 'vastattu'),
       count(j.id) FILTER (WHERE n.tila IN ('lahetetty', 'vastattu')),
       count(j.id) FILTER (WHERE n.tila = 'vastattu')
FROM {SCHEMA}.niput n LEFT JOIN {SCHEMA}.jaksot j ON j.nippu_id = n.id
GROUP BY n.koulutustoimija_oid ORDER BY n.koulutustoimija_oid
"""
BASELINE_PAGE = f"""
SELECT j.*, n.tunniste, n.tutkinto, n.linkki, n.tila, n.lahetyspvm, n.voimassa_loppupvm
FROM {SCHEMA}.jaksot j LEFT JOIN {SCHEMA}.niput n ON n.id = j.nippu_id
WHERE j.koulutustoimija_oid = :kt AND j.loppu >= :alku AND j.loppu <= :loppu
ORDER BY j.id LIMIT 1000
"""


async def median(rounds: int, work: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def link_all(db: Database) -> list[tuple[uuid.UUID, str]]:
    """Every bundle linked (as `nippu.linked` would leave it, with both channels)."""
    async with db.transaction() as session:
        await session.execute(
            niput.update().values(
                linkki="https://arvo.example/v/" + niput.c.tunniste,
                sahkoposti="ohjaaja@example.fi",
            )
        )
        rows = await session.execute(select(niput.c.id, niput.c.tunniste).order_by(niput.c.id))
        return [(r.id, r.tunniste) for r in rows]


async def send_status_pass(flow: Flow, bundles: list[tuple[uuid.UUID, str]]) -> float:
    started = time.perf_counter()
    for nippu_id, _ in bundles:
        async with flow.db.transaction() as session:
            payload = SendStatus(
                nippu_id=nippu_id,
                message_key=f"{nippu_id}:initial:email:0",
                kind="initial",
                kanava="email",
                tila="sent",
                at=SENT_AT,
            )
            await flow.apply_send_status(
                session, payload=payload, cause=FlowCause("send.status", uuid.uuid4())
            )
    return time.perf_counter() - started


async def baseline_pass(db: Database, bundles: list[tuple[uuid.UUID, str]]) -> float:
    started = time.perf_counter()
    for nippu_id, _ in bundles:
        async with db.engine.begin() as conn:
            params: dict[str, Any] = {"nippu_id": nippu_id, "at": SENT_AT}
            await conn.execute(text(BASELINE_REPORT), {**params, "key": f"{nippu_id}:b"})
            await conn.execute(
                text(BASELINE_STATE),
                {"nippu_id": nippu_id, "day": RUN_DATE, "until": RUN_DATE + dt.timedelta(29)},
            )
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jaksot", type=int, default=20000)
    parser.add_argument("--reports", type=int, default=2000, help="send.status reports")
    args = parser.parse_args()
    infra = await create_infra()
    db = Database(infra.database_url, 5, statement_timeout=600)
    try:
        await asyncio.to_thread(upgrade, infra.database_url, SCHEMA, MIGRATIONS)
        await seed_due_jaksot(
            db, args.jaksot, niputuspvm=RUN_DATE, first_id=KT_BASE, kt_base=KT_BASE
        )
        clock = Clock(RUN_DATE)
        bundler = Bundler(db=db, clock=clock)
        niputus = Niputus(db=db, clock=clock, bundler=bundler, outbox=outbox)
        counts = await niputus.tep(RUN_DATE, job="tep-niputus")
        bundles = await link_all(db)
        flow = bundler.flow
        reports = bundles[: args.reports]
        baseline_bundles = bundles[args.reports : 2 * args.reports]
        assert len(baseline_bundles) == len(reports), "need 2 × --reports bundles"

        base_s = await baseline_pass(db, baseline_bundles)
        flow_s = await send_status_pass(flow, reports)
        # Some answered, for the rates to count.
        async with db.transaction() as session:
            await session.execute(
                niput.update()
                .where(niput.c.id.in_([b for b, _ in reports[::3]]))
                .values(tila="vastattu")
            )

        async def rates() -> object:
            return await flow.response_rates(
                client=EVERYONE, koulutustoimija=None, alku=None, loppu=None
            )

        async def rates_sql() -> object:
            async with db.engine.connect() as conn:
                return (await conn.execute(text(BASELINE_RATES))).all()

        kt = koulutustoimija(KT_BASE, 0)
        window = {"alku": dt.date(2025, 1, 1), "loppu": dt.date(2025, 12, 31)}

        async def page() -> object:
            return await flow.jaksot_report(
                client=EVERYONE, koulutustoimija=kt, after=None, limit=1000, **window
            )

        async def page_sql() -> object:
            async with db.engine.connect() as conn:
                return (await conn.execute(text(BASELINE_PAGE), {"kt": kt, **window})).all()

        rates_s, rates_sql_s = await median(5, rates), await median(5, rates_sql)
        page_s, page_sql_s = await median(5, page), await median(5, page_sql)
        n = len(reports)
        print(f"jaksot {args.jaksot}, bundles {counts['niput']}, send.status reports {n}")
        print(
            f"send.status applied:  flow {flow_s:7.2f} s ({n / flow_s:7.0f}/s)   "
            f"baseline {base_s:7.2f} s ({n / base_s:7.0f}/s)   ratio {flow_s / base_s:5.2f}"
        )
        print(
            f"response rates:       flow {rates_s * 1000:7.1f} ms   "
            f"baseline {rates_sql_s * 1000:7.1f} ms   ratio {rates_s / rates_sql_s:5.2f}"
        )
        print(
            f"N5 report page 1000:  flow {page_s * 1000:7.1f} ms   "
            f"baseline {page_sql_s * 1000:7.1f} ms   ratio {page_s / page_sql_s:5.2f}"
        )
        print(
            json.dumps(
                {
                    "send_status_s": flow_s,
                    "send_status_baseline_s": base_s,
                    "rates_ms": rates_s * 1000,
                    "rates_baseline_ms": rates_sql_s * 1000,
                    "page_ms": page_s * 1000,
                    "page_baseline_ms": page_sql_s * 1000,
                }
            )
        )
    finally:
        await db.dispose()
        await destroy_infra(infra)


if __name__ == "__main__":
    asyncio.run(main())
