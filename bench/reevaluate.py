"""Benchmark of the runs' re-evaluation step: N jaksot judged again, beside one SQL statement.

Seeds a fresh database (the bundler's migrations) like bench/niputus.py, but every due
jakso was last judged while it still ran (E1, `jakso_kesken`): N students, each with a
HOKS whose jakso ended in the first half of March 2025 and a second HOKS whose jakso
still runs. Then times, for the run of 2025-03-16:

- baseline: the same selection and the same judgement as one SQL statement, rolled back
  afterwards: every waiting jakso that has ended (E1 → E15) set `odottaa_niputusta`
  with its niputuspvm (D1: the 16th, or the 1st of the next month), and one E18
  transition each; no locks, no domain rules, no opiskeluoikeus read;
- the run's step: `Niputus.rejudge`, the code path every TEP and TPK run starts with
  (`hoksit_to_rejudge`, then per batch of HOKS: advisory locks, HOKS, study rights and
  jaksot loaded and locked, `judge_hoks`, judgements and E18 transitions written).

Prints both times and the ratio. The issue's figure is for a million jaksot
(`--jaksot 1000000`: seeding alone takes several minutes).

    python bench/reevaluate.py --jaksot 100000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.bundler.app import MIGRATIONS
from services.bundler.store.tables import SCHEMA, jaksot, outbox
from services.bundler.usecases import Bundler, Niputus
from shared.clock import Clock
from shared.db import Database
from shared.migrations import upgrade
from tests.support.bundler_seed import seed_due_jaksot
from tests.support.infra import create_infra, destroy_infra

RUN_DATE = dt.date(2025, 3, 16)

BASELINE = f"""
WITH judged AS (
    UPDATE {SCHEMA}.jaksot j
    SET syy = 'odottaa_niputusta', rule = 'E15', updated_at = now(),
        niputuspvm = CASE WHEN extract(day FROM j.loppu) <= 15
                          THEN (date_trunc('month', j.loppu) + interval '15 days')::date
                          ELSE (date_trunc('month', j.loppu) + interval '1 month')::date END
    WHERE j.tila = 'odottaa' AND j.nippu_id IS NULL AND NOT j.poistettu
      AND j.syy = 'jakso_kesken' AND j.loppu <= :today
    RETURNING j.id
), recorded AS (
    INSERT INTO {SCHEMA}.jakso_transitions (jakso_id, at, from_tila, from_syy, to_tila,
        to_syy, rule, changed, cause, message_id, applied)
    SELECT id, now(), 'odottaa', 'jakso_kesken', 'odottaa', 'odottaa_niputusta', 'E15',
        '[]'::json, 'baseline', gen_random_uuid(), true
    FROM judged
    RETURNING 1
)
SELECT (SELECT count(*) FROM judged), (SELECT count(*) FROM recorded)
"""


async def baseline(db: Database) -> tuple[float, int]:
    """The selection and judgement as one statement, rolled back so the run that follows
    finds the same jaksot to judge."""
    async with db.engine.connect() as conn:
        started = time.perf_counter()
        judged, recorded = (await conn.execute(text(BASELINE), {"today": RUN_DATE})).one()
        elapsed = time.perf_counter() - started
        await conn.rollback()
    assert judged == recorded
    return elapsed, int(judged)


async def the_step(db: Database, batch: int) -> tuple[float, int]:
    clock = Clock(RUN_DATE)
    bundler = Bundler(db=db, clock=clock)
    niputus = Niputus(db=db, clock=clock, bundler=bundler, outbox=outbox, rejudge_batch=batch)
    started, cpu = time.perf_counter(), time.process_time()
    hoksit = await niputus.rejudge(RUN_DATE, job="tep-niputus")
    elapsed = time.perf_counter() - started
    print(f"  (re-evaluation: {time.process_time() - cpu:.1f} s of it CPU in this process)")
    return elapsed, hoksit


async def eligible(db: Database) -> int:
    async with db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(jaksot)
                .where(jaksot.c.syy == "odottaa_niputusta", jaksot.c.niputuspvm == RUN_DATE)
            )
            or 0
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jaksot", type=int, default=100000)
    parser.add_argument("--batch", type=int, default=500, help="HOKS per transaction")
    args = parser.parse_args()
    infra = await create_infra()
    db = Database(infra.database_url, 5, statement_timeout=3600)
    try:
        await asyncio.to_thread(upgrade, infra.database_url, SCHEMA, MIGRATIONS)
        t0 = time.perf_counter()
        await seed_due_jaksot(
            db, args.jaksot, niputuspvm=RUN_DATE, first_id=10**10, kt_base=10**10, judged=False
        )
        seeded = time.perf_counter() - t0
        base_s, base_jaksot = await baseline(db)
        run_s, hoksit = await the_step(db, args.batch)
        judged = await eligible(db)
        assert base_jaksot == judged == hoksit == args.jaksot, (base_jaksot, judged, hoksit)
        print(f"jaksot judged again:                {args.jaksot} (seeded in {seeded:.1f} s)")
        print(f"baseline, one SQL statement:        {base_s:8.2f} s")
        print(f"re-evaluation (Niputus.rejudge):    {run_s:8.2f} s")
        print(f"ratio run/baseline:                 {run_s / base_s:8.1f}")
        print(json.dumps({"jaksot": args.jaksot, "baseline_s": base_s, "run_s": run_s}))
    finally:
        await db.dispose()
        await destroy_infra(infra)


if __name__ == "__main__":
    asyncio.run(main())
