"""Benchmark of the TEP niputus run: N due jaksot bundled, beside one SQL statement.

Seeds a fresh database (the bundler's migrations) with N jaksot of N students, each
eligible (E15, `odottaa_niputusta`) with niputuspvm 2025-03-16, spread over 20
koulutustoimijat and instructors of about 4 students each, every student with a second,
overlapping jakso in another HOKS (so kesto, K1, has real sharing to do). Then times:

- baseline: the same grouping (N1 key) as one SQL statement on the same tables, rolled
  back afterwards: a `niput` row per key and every due jakso's `nippu_id` and state set,
  nothing else (no kesto, no transitions, no events);
- the run: `Niputus.tep` for 2025-03-16 as the job runs it: locks, N1 grouping, W3,
  kesto across each student's HOKS, `niput` rows, states, E18 transitions and one
  `nippu.ready` per bundle in the outbox, one transaction per koulutustoimija.

Prints both times and the ratio. Optionally (`--rejudge M`) also times a run whose M
jaksot were last judged before they ended (E1), so the run judges their HOKS again first.

    python bench/niputus.py --jaksot 20000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.bundler.app import MIGRATIONS
from services.bundler.store.tables import SCHEMA, niput, outbox
from services.bundler.usecases import Bundler, Niputus
from shared.clock import Clock
from shared.db import Database
from shared.migrations import upgrade
from tests.support.bundler_seed import seed_due_jaksot
from tests.support.infra import create_infra, destroy_infra

RUN_DATE = dt.date(2025, 3, 16)


BASELINE = f"""
WITH groups AS (
    SELECT gen_random_uuid() AS nippu_id, array_agg(j.id) AS ids,
           j.ohjaaja_normalisoitu, j.tyopaikan_ytunnus, j.koulutustoimija_oid,
           o.data -> 'suoritukset' -> 0 ->> 'tutkinto' AS tutkinto, j.niputuspvm,
           min(j.tyopaikan_nimi) AS tyopaikka, min(j.tyopaikka_normalisoitu) AS normalisoitu
    FROM {SCHEMA}.jaksot j JOIN {SCHEMA}.opiskeluoikeudet o ON o.oid = j.opiskeluoikeus_oid
    WHERE j.tila = 'odottaa' AND j.syy = 'odottaa_niputusta' AND j.niputuspvm <= :run_date
      AND j.nippu_id IS NULL AND NOT j.poistettu
    GROUP BY j.ohjaaja_normalisoitu, j.tyopaikan_ytunnus, j.koulutustoimija_oid,
             o.data -> 'suoritukset' -> 0 ->> 'tutkinto', j.niputuspvm
), bundles AS (
    INSERT INTO {SCHEMA}.niput (id, tunniste, ohjaaja_normalisoitu, tyopaikan_ytunnus,
        koulutustoimija_oid, tutkinto, niputuspvm, tyopaikka, tyopaikka_normalisoitu,
        lahetyspvm, voimassa_loppupvm, tila)
    SELECT nippu_id, normalisoitu || '_' || niputuspvm || '_' || nippu_id,
        ohjaaja_normalisoitu, tyopaikan_ytunnus, koulutustoimija_oid, tutkinto, niputuspvm,
        tyopaikka, normalisoitu, :run_date, :run_date + 29, 'odottaa_lahetysta'
    FROM groups
    RETURNING 1
), members AS (
    SELECT nippu_id, unnest(ids) AS id FROM groups
), bundled AS (
    UPDATE {SCHEMA}.jaksot j
    SET nippu_id = m.nippu_id, tila = 'niputettu', syy = 'niputettu', rule = 'N1'
    FROM members m WHERE j.id = m.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM bundles), (SELECT count(*) FROM bundled)
"""


async def baseline(db: Database) -> tuple[float, int, int]:
    """The N1 grouping, the bundle rows and the jaksot's update as one statement, on the
    same tables, rolled back so the run that follows finds the same due jaksot."""
    async with db.engine.connect() as conn:
        started = time.perf_counter()
        niput_count, jaksot_count = (
            await conn.execute(text(BASELINE), {"run_date": RUN_DATE})
        ).one()
        elapsed = time.perf_counter() - started
        await conn.rollback()
    return elapsed, int(niput_count), int(jaksot_count)


async def the_run(db: Database, job: str, workers: int = 1) -> tuple[float, dict[str, int]]:
    clock = Clock(RUN_DATE)
    bundler = Bundler(db=db, clock=clock)
    niputus = Niputus(db=db, clock=clock, bundler=bundler, outbox=outbox, workers=workers)
    started, cpu = time.perf_counter(), time.process_time()
    counts = await niputus.tep(RUN_DATE, job=job)
    elapsed = time.perf_counter() - started
    print(f"  ({job}: {time.process_time() - cpu:.1f} s of it CPU in this process)")
    return elapsed, counts


async def count(db: Database, table: Any) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jaksot", type=int, default=20000)
    parser.add_argument("--rejudge", type=int, default=0, help="also time M jaksot judged E1")
    parser.add_argument("--workers", type=int, default=1, help="koulutustoimijat side by side")
    args = parser.parse_args()
    infra = await create_infra()
    db = Database(infra.database_url, 5, statement_timeout=600)
    try:
        await asyncio.to_thread(upgrade, infra.database_url, SCHEMA, MIGRATIONS)
        t0 = time.perf_counter()
        await seed_due_jaksot(db, args.jaksot, niputuspvm=RUN_DATE, first_id=10**10, kt_base=10**10)
        seeded = time.perf_counter() - t0
        base_s, base_niput, base_jaksot = await baseline(db)
        run_s, counts = await the_run(db, "tep-niputus", args.workers)
        assert counts["jaksot"] == args.jaksot == base_jaksot, (counts, base_jaksot)
        assert counts["niput"] == base_niput == await count(db, niput), (counts, base_niput)
        assert await count(db, outbox) == counts["niput"]
        print(f"due jaksot:                         {args.jaksot} (seeded in {seeded:.1f} s)")
        print(f"bundles formed:                     {counts['niput']}")
        print(f"baseline, one SQL statement:        {base_s:8.2f} s")
        print(f"TEP niputus run (Niputus.tep):      {run_s:8.2f} s")
        print(f"ratio run/baseline:                 {run_s / base_s:8.1f}")
        if args.rejudge:
            await seed_due_jaksot(
                db,
                args.rejudge,
                niputuspvm=RUN_DATE,
                first_id=2 * 10**10,
                kt_base=2 * 10**10,
                judged=False,
            )
            rejudge_s, rejudge_counts = await the_run(db, "tep-niputus-rejudge", args.workers)
            print(
                f"run with {args.rejudge} jaksot judged again first: {rejudge_s:8.2f} s "
                f"({rejudge_counts['hoksit_rejudged']} HOKS judged, "
                f"{rejudge_counts['jaksot']} jaksot bundled)"
            )
        print(json.dumps({"jaksot": args.jaksot, "baseline_s": base_s, "run_s": run_s}))
    finally:
        await db.dispose()
        await destroy_infra(infra)


if __name__ == "__main__":
    asyncio.run(main())
