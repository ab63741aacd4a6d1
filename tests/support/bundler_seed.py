"""Many due jaksot written straight into the bundler's tables, for the niputus benchmark
and the crash test: what the state consumer would have stored for students whose HOKS
and study right arrived, without the events (which would take minutes for 10,000)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, text

from services.bundler.store.tables import SCHEMA, hoksit, jaksot, opiskeluoikeudet
from shared.db import Database

KOULUTUSTOIMIJAT = 20
STUDENTS_PER_INSTRUCTOR = 4


def koulutustoimija(base: int, index: int) -> str:
    """The koulutustoimija of student `index`: one of 20, instructors' groups kept whole."""
    return f"1.2.246.562.10.{base + (index // STUDENTS_PER_INSTRUCTOR) % KOULUTUSTOIMIJAT}"


def _jakso_data(tunniste: str, alku: dt.date, loppu: dt.date) -> dict[str, Any]:
    return {
        "yksiloiva_tunniste": tunniste,
        "path": f"hankittavat-ammat-tutkinnon-osat[0].osaamisen-hankkimistavat[{tunniste}]",
        "tunniste_puuttuu": False,
        "hankkimistapa": "koulutussopimus",
        "alku": alku.isoformat(),
        "loppu": loppu.isoformat(),
        "osa_aikaisuus": 100,
        "keskeytymisajanjaksot": [
            {
                "alku": (alku + dt.timedelta(days=20)).isoformat(),
                "loppu": (alku + dt.timedelta(days=24)).isoformat(),
            }
        ],
        "oppisopimuksen_perusta": None,
        "tyopaikan_nimi": "Perhosen Päiväkoti",
        "tyopaikan_ytunnus": "1234567-8",
        "tutkinnon_osa": {
            "kind": "ammatillinen",
            "koodi_uri": "tutkinnonosat_106945",
            "koodi": "106945",
        },
    }


def _opiskeluoikeus(oid: str, kt: str) -> dict[str, Any]:
    return {
        "oid": oid,
        "version": 1,
        "koulutustoimija_oid": kt,
        "oppilaitos_oid": "1.2.246.562.10.52251087186",
        "tyyppi": "ammatillinenkoulutus",
        "sisaltyy_opiskeluoikeuteen": None,
        "opiskeluoikeusjaksot": [
            {"alku": "2020-08-01", "tila": "lasna", "opintojen_rahoitus": "1"}
        ],
        "suoritukset": [
            {
                "tyyppi": "ammatillinentutkinto",
                "tutkinto": "351301",
                "osaamisalat": ["1525"],
                "tutkintonimikkeet": ["10024"],
                "toimipiste_oid": None,
                "suorituskieli": "FI",
            }
        ],
        "oppisopimuksen_purkamispaiva": None,
    }


async def seed_due_jaksot(
    db: Database,
    count: int,
    *,
    niputuspvm: dt.date,
    first_id: int,
    kt_base: int,
    judged: bool = True,
) -> None:
    """`count` students, each with a study right, a HOKS whose jakso ended in the half
    month before `niputuspvm` (a 16th), and a second HOKS with an overlapping jakso still
    running (K1 has sharing to do). Instructors have 4 students each, so `count / 4`
    bundles. `judged=False`: the due jakso was last judged while it still ran (E1), so a
    run must judge its HOKS again first. Ids from `first_id`, OIDs from `kt_base`."""
    assert niputuspvm.day == 16, "jaksot end on days 1-15 of the niputuspvm's month"
    alku = niputuspvm - dt.timedelta(days=70)
    other_loppu = niputuspvm + dt.timedelta(days=75)
    for start in range(0, count, 2000):
        hoks_rows, oo_rows, jakso_rows = [], [], []
        for n in range(start, min(count, start + 2000)):
            i = first_id + n
            kt = koulutustoimija(kt_base, n)
            oid = f"1.2.246.562.15.{i}"
            oppija = f"1.2.246.562.24.{i}"
            ohjaaja = f"ohjaaja_{kt_base}_{n // STUDENTS_PER_INSTRUCTOR}"
            oo_rows.append(
                {
                    "oid": oid,
                    "version": 1,
                    "koulutustoimija_oid": kt,
                    "data": _opiskeluoikeus(oid, kt),
                }
            )
            loppu = niputuspvm.replace(day=1 + n % 15)
            for hoks_id, tunniste, begin, end, due in (
                (2 * i, "due", alku, loppu, True),
                (2 * i + 1, "other", alku + dt.timedelta(days=40), other_loppu, False),
            ):
                hoks_rows.append(
                    {
                        "hoks_id": hoks_id,
                        "version": 1,
                        "oppija_oid": oppija,
                        "opiskeluoikeus_oid": oid,
                        "is_tuva": False,
                        "deleted": False,
                    }
                )
                eligible = due and judged
                jakso_rows.append(
                    {
                        "hoks_id": hoks_id,
                        "tunniste": tunniste,
                        "tunniste_puuttuu": False,
                        "hoks_version": 1,
                        "oppija_oid": oppija,
                        "opiskeluoikeus_oid": oid,
                        "koulutustoimija_oid": kt,
                        "hankkimistapa": "koulutussopimus",
                        "alku": begin,
                        "loppu": end,
                        "osa_aikaisuus": 100,
                        "tyopaikan_nimi": "Perhosen Päiväkoti",
                        "tyopaikan_ytunnus": "1234567-8",
                        "tyopaikka_normalisoitu": "perhosen_paivakoti",
                        "ohjaaja_nimi": ohjaaja,
                        "ohjaaja_sahkoposti": f"{ohjaaja}@example.fi",
                        "ohjaaja_puhelinnumero": "0401234567",
                        "ohjaaja_normalisoitu": ohjaaja,
                        "data": _jakso_data(tunniste, begin, end),
                        "tila": "odottaa",
                        "syy": "odottaa_niputusta" if eligible else "jakso_kesken",
                        "rule": "E15" if eligible else "E1",
                        "niputuspvm": niputuspvm if eligible else None,
                    }
                )
        async with db.transaction() as session:
            await session.execute(insert(opiskeluoikeudet), oo_rows)
            await session.execute(insert(hoksit), hoks_rows)
            await session.execute(insert(jaksot), jakso_rows)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"ANALYZE {SCHEMA}.jaksot"))
