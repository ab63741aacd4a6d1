"""Benchmark of the bundler's personal-data clean-up (P1) on a fresh database.

Fills the bundler's schema with `--jaksot` jaksot (four in five bundled, bundles of five;
half the bundles' windows closed long ago, half still open; of the jaksot never bundled,
half finished long ago) and times `Bundler.remove_personal_data` (batches of 1,000 in
their own transactions, continuing after the last id). As a baseline measured in the same
run on the same rows, it times the same clean-up as one UPDATE statement per table (the
same conditions: what a run would do if it held every row lock at once). Between rounds
the data is put back. Figures, not assertions: these machines are noisy.

    python bench/cleanup.py --jaksot 100000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import JSON, Text, cast, literal, or_, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.bundler.app import MIGRATIONS  # noqa: E402
from services.bundler.domain.retention import Cutoff  # noqa: E402
from services.bundler.store.cleanup import Limits, jaksot_done, niput_done  # noqa: E402
from services.bundler.store.tables import jaksot, niput  # noqa: E402
from services.bundler.usecases import Bundler  # noqa: E402
from shared.clock import Clock  # noqa: E402
from shared.db import Database  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

BASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
RUN_DATE = dt.date(2025, 6, 1)
RETENTION = 30

FILL = """
INSERT INTO bundler.niput (id, tunniste, ohjaaja_normalisoitu, tyopaikan_ytunnus,
    koulutustoimija_oid, tutkinto, niputuspvm, tyopaikka, tyopaikka_normalisoitu,
    lahetyspvm, voimassa_loppupvm, tila, linkki, sahkoposti, puhelinnumero)
SELECT md5(n::text)::uuid, 'nippu_' || n, 'ohjaaja_' || n, '1234567-8', '1.2.246.562.10.1',
    '351301', d, 'Tyopaikka', 'tyopaikka', d, d + 29, 'lahetetty',
    'https://arvo.example/' || n, 'ohjaaja' || n || '@example.fi', '+35840' || n
FROM generate_series(1, :niput) AS n,
    LATERAL (SELECT CASE WHEN n % 2 = 0 THEN date '2025-01-16' ELSE date '2025-05-16' END) AS x(d);

INSERT INTO bundler.jaksot (hoks_id, tunniste, tunniste_puuttuu, hoks_version, oppija_oid,
    opiskeluoikeus_oid, koulutustoimija_oid, hankkimistapa, alku, loppu, osa_aikaisuus,
    tyopaikan_nimi, tyopaikan_ytunnus, tyopaikka_normalisoitu, ohjaaja_nimi,
    ohjaaja_sahkoposti, ohjaaja_puhelinnumero, ohjaaja_normalisoitu, data, tila, syy, rule,
    niputuspvm, kesto, nippu_id)
SELECT n, 'jakso-' || n, false, 1, '1.2.246.562.24.' || n, '1.2.246.562.15.' || n,
    '1.2.246.562.10.1', 'koulutussopimus', date '2024-09-02', loppu, 100, 'Tyopaikka',
    '1234567-8', 'tyopaikka', 'Olli Ohjaaja ' || n, 'olli' || n || '@example.fi',
    '040' || n, 'olli_ohjaaja_' || n,
    json_build_object('path', 'p', 'alku', '2024-09-02', 'loppu', loppu),
    CASE WHEN bundled THEN 'lahetetty' ELSE 'ei_laheteta' END,
    CASE WHEN bundled THEN 'odottaa_niputusta' ELSE 'opiskeluoikeus_paattynyt' END,
    'E15', loppu + 9, 30,
    CASE WHEN bundled THEN md5(((n - 1) / 5 + 1)::text)::uuid END
FROM generate_series(1, :jaksot) AS n,
    LATERAL (SELECT n <= :bundled) AS b(bundled),
    LATERAL (SELECT CASE WHEN n % 2 = 0 THEN date '2024-12-07' ELSE date '2025-05-07' END)
        AS l(loppu);
ANALYZE bundler.jaksot;
ANALYZE bundler.niput;
"""

RESTORE = """
UPDATE bundler.jaksot SET ohjaaja_nimi = 'Olli Ohjaaja ' || id,
    ohjaaja_sahkoposti = 'olli' || id || '@example.fi', ohjaaja_puhelinnumero = '040' || id,
    personal_data_removed_at = NULL;
UPDATE bundler.niput SET sahkoposti = 'o@example.fi', puhelinnumero = '+358401',
    personal_data_removed_at = NULL;
VACUUM ANALYZE bundler.jaksot;
VACUUM ANALYZE bundler.niput;
"""


def limits() -> Limits:
    cutoff = Cutoff(RUN_DATE, RETENTION)
    return Limits(
        bundle_closed_before=cutoff.bundle_closed_before,
        niputuspvm_before=cutoff.niputuspvm_before,
        loppu_before=cutoff.loppu_before,
        unchanged_since=cutoff.unchanged_since,
    )


async def baseline(db: Database) -> dict[str, int]:
    """The same clean-up as one UPDATE per table."""
    now = dt.datetime.now(dt.UTC)
    async with db.transaction() as session:
        n = await session.execute(
            update(niput)
            .where(
                niput_done(limits()),
                or_(niput.c.personal_data_removed_at.is_(None), niput.c.sahkoposti.is_not(None)),
            )
            .values(sahkoposti=None, puhelinnumero=None, personal_data_removed_at=now)
        )
        j = await session.execute(
            update(jaksot)
            .where(
                jaksot_done(limits()),
                or_(
                    jaksot.c.personal_data_removed_at.is_(None),
                    jaksot.c.ohjaaja_nimi.is_not(None),
                ),
            )
            .values(
                ohjaaja_nimi=None,
                ohjaaja_sahkoposti=None,
                ohjaaja_puhelinnumero=None,
                data=cast(cast(jaksot.c.data, JSONB).op("-")(literal("ohjaaja", Text)), JSON),
                personal_data_removed_at=now,
            )
        )
    return {"niput": n.rowcount, "jaksot": j.rowcount}  # type: ignore[attr-defined]


async def restore(database_url: str) -> None:
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        for statement in filter(str.strip, RESTORE.split(";")):
            await conn.execute(text(statement))
    await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    name = f"bench_p1_{uuid.uuid4().hex[:8]}"
    database_url = make_url(BASE_URL).set(database=name).render_as_string(False)
    admin = create_async_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        await asyncio.to_thread(upgrade, database_url, "bundler", MIGRATIONS)
        engine = create_async_engine(database_url)
        bundled = args.jaksot * 4 // 5
        async with engine.begin() as conn:
            for statement in filter(str.strip, FILL.split(";")):
                await conn.execute(
                    text(statement),
                    {"niput": bundled // 5, "jaksot": args.jaksot, "bundled": bundled},
                )
        await engine.dispose()
        db = Database(database_url, pool_size=2)
        bundler = Bundler(db=db, clock=Clock(RUN_DATE))
        ours: list[float] = []
        base: list[float] = []
        counts: dict[str, int] = {}
        for _ in range(args.rounds):
            for label, times in (("baseline", base), ("ours", ours)):
                start = time.perf_counter()
                if label == "ours":
                    got = await bundler.remove_personal_data(
                        date=RUN_DATE, retention_days=RETENTION
                    )
                else:
                    got = await baseline(db)
                times.append(time.perf_counter() - start)
                print(f"{label}: {got} in {times[-1]:.2f} s", flush=True)
                counts[label] = sum(got.values())
                if label == "ours":
                    start = time.perf_counter()
                    again = await bundler.remove_personal_data(
                        date=RUN_DATE, retention_days=RETENTION
                    )
                    idle = time.perf_counter() - start
                    print(f"ours again (nothing left): {again} in {idle:.2f} s", flush=True)
                await restore(database_url)
        await db.dispose()
        assert counts["ours"] == counts["baseline"], counts
        o, b = statistics.median(ours), statistics.median(base)
        print(
            f"{args.jaksot} jaksot, {counts['ours']} rows cleaned: clean-up {o:.2f} s, "
            f"one-statement baseline {b:.2f} s, ratio (baseline/ours) {b / o:.2f}"
        )
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jaksot", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
