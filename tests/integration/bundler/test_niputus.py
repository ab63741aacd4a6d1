"""TEP and TPK niputus (issue 12, "Dated jobs"): events in through `bundler.events`,
`POST /api/v1/runs`, then the bundles, the jaksot's states and the `nippu.ready` /
`tpk_nippu.ready` events the outbox relay published.

Runs are unique by (job, date) in the session's one database and a run takes every due
jakso, other tests' too: each test keeps to a year of its own and a koulutustoimija of
its own, and looks only at its own bundles and events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from aio_pika.abc import AbstractChannel
from sqlalchemy import func, select, update

from services.bundler.store.tables import jakso_transitions, niput, outbox, tpk_niput
from services.bundler.store.tables import jaksot as jaksot_table
from services.bundler.usecases import Bundler, Niputus
from shared.events import OhjaajaPayload
from tests.integration.bundler.conftest import (
    Student,
    apply,
    history,
    jakso,
    jakso_id,
    jaksot,
    new_id,
    states,
)
from tests.support.bundler_seed import koulutustoimija as seeded_koulutustoimija
from tests.support.bundler_seed import seed_due_jaksot
from tests.support.events import EventCapture
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, Running, ServiceProcess, service_env

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MAIJA = OhjaajaPayload(nimi="Maija Mentori", sahkoposti="maija@perhonen.fi")


def niputus_of(bundler: Running, *, rejudge_batch: int = 500) -> Niputus:
    """The use case itself, on the running service's database, past the runs' lock."""
    service = bundler.service
    return Niputus(
        db=service.db,
        clock=service.clock,
        bundler=Bundler.of(service),
        outbox=outbox,
        rejudge_batch=rejudge_batch,
    )


def koulutustoimija() -> str:
    return f"1.2.246.562.10.{new_id()}"


async def post_run(bundler: Running, job: str, date: str) -> dict[str, Any]:
    response = await bundler.client.post(
        "/api/v1/runs", json={"job": job, "date": date}, headers=ADMIN
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def run(bundler: Running, job: str, date: str) -> dict[str, Any]:
    """Run a job for a date through the API and wait until it is done."""
    run_id = (await post_run(bundler, job, date))["run_id"]

    async def probe() -> dict[str, Any]:
        response = await bundler.client.get(f"/api/v1/runs/{run_id}", headers=ADMIN)
        body: dict[str, Any] = response.json()
        return body

    done = await eventually(probe, lambda r: r["status"] in ("done", "failed"), what="run")
    assert done["status"] == "done", done
    return done


async def bundles_of(bundler: Running, kt: str) -> list[dict[str, Any]]:
    """The koulutustoimija's TEP bundles with their jaksot's row ids, by niputuspvm."""
    async with bundler.service.db.transaction() as session:
        rows = (
            (
                await session.execute(
                    select(niput)
                    .where(niput.c.koulutustoimija_oid == kt)
                    .order_by(niput.c.niputuspvm, niput.c.ohjaaja_normalisoitu)
                )
            )
            .mappings()
            .all()
        )
        result = []
        for row in rows:
            ids = (
                await session.scalars(
                    select(jaksot_table.c.id)
                    .where(jaksot_table.c.nippu_id == row["id"])
                    .order_by(jaksot_table.c.id)
                )
            ).all()
            result.append({**row, "jaksot": list(ids)})
    return result


async def tpk_bundles_of(bundler: Running, kt: str) -> list[dict[str, Any]]:
    async with bundler.service.db.transaction() as session:
        rows = (
            (
                await session.execute(
                    select(tpk_niput)
                    .where(tpk_niput.c.koulutustoimija_oid == kt)
                    .order_by(tpk_niput.c.created_at, tpk_niput.c.tyopaikka_normalisoitu)
                )
            )
            .mappings()
            .all()
        )
        result = []
        for row in rows:
            ids = (
                await session.scalars(
                    select(jaksot_table.c.id)
                    .where(jaksot_table.c.tpk_nippu_id == row["id"])
                    .order_by(jaksot_table.c.id)
                )
            ).all()
            result.append({**row, "jaksot": list(ids)})
    return result


async def outbox_drained(bundler: Running) -> None:
    """Until the relay has published every staged event (confirmed by the broker)."""

    async def pending() -> int:
        async with bundler.service.db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)

    await eventually(pending, lambda n: n == 0, what="outbox drained")


def of(kt: str, event_type: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == event_type and e["payload"]["koulutustoimija_oid"] == kt


async def only(events: EventCapture, kt: str, event_type: str, count: int) -> list[dict[str, Any]]:
    """Exactly `count` events of the type for the koulutustoimija, once all are out."""
    await events.wait_for(of(kt, event_type), count)
    return events.matching(of(kt, event_type))


async def n1_transitions(bundler: Running, jakso_row_id: int) -> int:
    async with bundler.service.db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(jakso_transitions)
                .where(
                    jakso_transitions.c.jakso_id == jakso_row_id,
                    jakso_transitions.c.rule == "N1",
                )
            )
            or 0
        )


# --- TEP ------------------------------------------------------------------------------


async def test_two_students_of_one_instructor_in_one_half_month_share_a_bundle(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """N1, N2, W1, W2, K1–K2: jaksot ending 3.4. and 12.4. with one instructor form one
    bundle on 16.4., another instructor's jakso its own; kesto is computed over all the
    student's HOKS (an overlapping jakso in a second HOKS halves the shared days)."""
    kt = koulutustoimija()
    s1, s2, s3 = Student(), Student(), Student()
    s1_other_hoks = Student(oid=s1.oid, oppija_oid=s1.oppija_oid)
    await apply(
        bundler,
        channel,
        s1.opiskeluoikeus(koulutustoimija=kt),
        s2.opiskeluoikeus(koulutustoimija=kt),
        s3.opiskeluoikeus(koulutustoimija=kt),
        s1.hoks(jakso("a", alku="2030-01-07", loppu="2030-04-03")),
        s1_other_hoks.hoks(jakso("x", alku="2030-03-04", loppu="2030-05-31")),
        s2.hoks(jakso("b", alku="2030-02-04", loppu="2030-04-12", osa_aikaisuus=50)),
        s3.hoks(jakso("c", alku="2030-03-01", loppu="2030-04-10", ohjaaja=MAIJA)),
    )
    # Judged on 2025-03-20 (the clock), the jaksot had not ended: the run judges again.
    assert (await states(bundler, s1.hoks_id))["a"][1] == "jakso_kesken"

    done = await run(bundler, "tep-niputus", "2030-04-16")
    assert done["counts"]["niput"] >= 2

    maija, olli = await bundles_of(bundler, kt)  # by instructor
    a, b, c = (
        await jakso_id(bundler, s1.hoks_id, "a"),
        await jakso_id(bundler, s2.hoks_id, "b"),
        await jakso_id(bundler, s3.hoks_id, "c"),
    )
    assert (olli["ohjaaja_normalisoitu"], olli["jaksot"]) == ("olli_ohjaaja", sorted([a, b]))
    assert (maija["ohjaaja_normalisoitu"], maija["jaksot"]) == ("maija_mentori", [c])
    assert re.fullmatch(r"perhosen_paivakoti_2030-04-16_[a-z0-9]+", olli["tunniste"])
    assert olli["tunniste"] != maija["tunniste"]
    assert (str(olli["lahetyspvm"]), str(olli["voimassa_loppupvm"])) == (
        "2030-04-16",
        "2030-05-15",
    )
    assert (olli["tutkinto"], olli["tyopaikan_ytunnus"], olli["tila"]) == (
        "351301",
        "1234567-8",
        "odottaa_lahetysta",
    )

    ready = await only(events, kt, "nippu.ready", 2)
    (together,) = [e["payload"] for e in ready if e["payload"]["nippu_id"] == str(olli["id"])]
    assert together["tunniste"] == olli["tunniste"]
    assert (
        together["niputuspvm"],
        together["voimassa_alkupvm"],
        together["voimassa_loppupvm"],
    ) == (
        "2030-04-16",
        "2030-04-16",
        "2030-05-15",
    )
    # K1: a's 87 days, 31 of them shared with x (1/2 each) → 71.5 → 72; b 68 days at 50%.
    by_jakso = {j["jakso_id"]: j for j in together["jaksot"]}
    assert {k: v["kesto"] for k, v in by_jakso.items()} == {a: 72, b: 34}
    assert by_jakso[a] | {"kesto": 0} == {
        "jakso_id": a,
        "koulutustoimija_oid": kt,
        "oppilaitos_oid": "1.2.246.562.10.52251087186",
        "toimipiste_oid": None,
        "tyonantaja": "1234567-8",
        "tyopaikka": "Perhosen Päiväkoti",
        "tyopaikka_normalisoitu": "perhosen_paivakoti",
        "tutkintotunnus": "351301",
        "tutkinnon_osa": "106945",
        "paikallinen_tutkinnon_osa": None,
        "tutkintonimike": [],
        "osaamisala": [],
        "tyopaikkajakson_alkupvm": "2030-01-07",
        "tyopaikkajakson_loppupvm": "2030-04-03",
        "rahoituskausi_pvm": "2030-04-03",
        "osa_aikaisuus": 100,
        "sopimustyyppi": "koulutussopimus",
        "oppisopimuksen_perusta": None,
        "kesto": 0,
    }

    rows = {j["yksiloiva_tunniste"]: j for j in (await jaksot(bundler, s1.hoks_id)).json()}
    assert (rows["a"]["tila"], rows["a"]["syy"], rows["a"]["kesto"]) == (
        "niputettu",
        "niputettu",
        72,
    )
    assert rows["a"]["nippu_id"] == str(olli["id"])
    assert (await states(bundler, s1_other_hoks.hoks_id))["x"][:2] == ("odottaa", "jakso_kesken")
    *_, judged, bundled = await history(bundler, a)
    assert (judged["to_syy"], judged["rule"], judged["cause"]) == (
        "odottaa_niputusta",
        "E15",
        "tep-niputus 2030-04-16",
    )
    assert (bundled["from_tila"], bundled["to_tila"], bundled["rule"]) == (
        "odottaa",
        "niputettu",
        "N1",
    )
    assert bundled["cause"] == "tep-niputus 2030-04-16"


async def test_jaksot_of_two_half_months_form_two_bundles_each_on_its_date(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """N1, N3: loppu 5.5. → 16.5.; loppu 20.5. → 1.6.: one instructor, two bundles, and
    the single later jakso waits for its own date."""
    kt = koulutustoimija()
    s1, s2 = Student(), Student()
    await apply(
        bundler,
        channel,
        s1.opiskeluoikeus(koulutustoimija=kt),
        s2.opiskeluoikeus(koulutustoimija=kt),
        s1.hoks(jakso("a", alku="2032-03-02", loppu="2032-05-05")),
        s2.hoks(jakso("b", alku="2032-03-02", loppu="2032-05-20")),
    )
    await run(bundler, "tep-niputus", "2032-05-16")
    (first,) = await bundles_of(bundler, kt)
    assert first["jaksot"] == [await jakso_id(bundler, s1.hoks_id, "a")]
    assert await states(bundler, s2.hoks_id) == {"b": ("odottaa", "jakso_kesken", None)}

    await run(bundler, "tep-niputus", "2032-06-01")
    first_again, second = await bundles_of(bundler, kt)
    assert first_again["id"] == first["id"]
    assert (str(second["niputuspvm"]), second["jaksot"]) == (
        "2032-06-01",
        [await jakso_id(bundler, s2.hoks_id, "b")],
    )
    await only(events, kt, "nippu.ready", 2)


async def test_a_late_jakso_goes_in_the_first_run_after_and_one_without_time_does_not(
    bundler: Running,
    channel: AbstractChannel,
    events: EventCapture,
    set_today: Callable[[str], None],
) -> None:
    """D3, W1–W3: known only on 20.6., a jakso of niputuspvm 16.6. is bundled on 1.7.
    with its own niputuspvm (valid until min(1.7.+29, 16.6.+59) = 30.7.); one of
    niputuspvm 1.5. has no answer day left on 1.7. (W2 ends 29.6.): not sent."""
    kt = koulutustoimija()
    await run(bundler, "tep-niputus", "2033-06-16")
    set_today("2033-06-20")
    late, too_late = Student(), Student()
    await apply(
        bundler,
        channel,
        late.opiskeluoikeus(koulutustoimija=kt),
        too_late.opiskeluoikeus(koulutustoimija=kt),
        late.hoks(jakso("late", alku="2033-04-01", loppu="2033-06-03")),
        too_late.hoks(jakso("too-late", alku="2033-03-01", loppu="2033-04-20")),
    )
    assert await states(bundler, too_late.hoks_id) == {
        "too-late": ("odottaa", "odottaa_niputusta", "2033-05-01")
    }

    done = await run(bundler, "tep-niputus", "2033-07-01")
    assert done["counts"]["vastausaika_umpeutunut"] >= 1
    (bundle,) = await bundles_of(bundler, kt)
    assert bundle["jaksot"] == [await jakso_id(bundler, late.hoks_id, "late")]
    assert [str(bundle[k]) for k in ("niputuspvm", "lahetyspvm", "voimassa_loppupvm")] == [
        "2033-06-16",
        "2033-07-01",
        "2033-07-30",
    ]
    assert await states(bundler, too_late.hoks_id) == {
        "too-late": ("ei_laheteta", "vastausaika_umpeutunut", "2033-05-01")
    }
    *_, last = await history(bundler, await jakso_id(bundler, too_late.hoks_id, "too-late"))
    assert (last["rule"], last["cause"]) == ("W3", "tep-niputus 2033-07-01")
    (ready,) = await only(events, kt, "nippu.ready", 1)
    assert ready["payload"]["niputuspvm"] == "2033-06-16"


async def test_the_same_run_again_forms_nothing_new(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """Runs API: the same job and date answer the same run; the use case itself run
    again finds every due jakso bundled."""
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(jakso("a", alku="2034-01-09", loppu="2034-03-05")),
    )
    first = await run(bundler, "tep-niputus", "2034-03-16")
    again = await post_run(bundler, "tep-niputus", "2034-03-16")
    assert (again["run_id"], again["status"]) == (first["run_id"], "done")
    await niputus_of(bundler).tep(dt.date(2034, 3, 16), job="tep-niputus")

    (bundle,) = await bundles_of(bundler, kt)
    a = await jakso_id(bundler, student.hoks_id, "a")
    assert bundle["jaksot"] == [a]
    assert await n1_transitions(bundler, a) == 1
    await outbox_drained(bundler)
    assert len(await only(events, kt, "nippu.ready", 1)) == 1


async def test_two_runs_at_once_bundle_each_jakso_once(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """Two TEP runs of one date at the same moment (as two processes would, past the
    runs' lock), both judging the same HOKS again in batches first: each jakso ends in
    exactly one bundle, each bundle has one event. Two requests of one run at once get
    the same run."""
    kt = koulutustoimija()
    students = [Student() for _ in range(24)]
    payloads: list[Any] = [s.opiskeluoikeus(koulutustoimija=kt) for s in students]
    for index, student in enumerate(students):
        ohjaaja = {"ohjaaja": MAIJA} if index % 3 == 0 else {}
        payloads.append(student.hoks(jakso("a", alku="2035-02-01", loppu="2035-03-10", **ohjaaja)))
    await apply(bundler, channel, *payloads)

    niputus = niputus_of(bundler, rejudge_batch=5)  # the 24 HOKS judged again in 5 batches
    results = await asyncio.gather(
        niputus.tep(dt.date(2035, 3, 16), job="tep-niputus"),
        niputus.tep(dt.date(2035, 3, 16), job="tep-niputus"),
    )
    assert sum(r["jaksot"] for r in results) >= len(students)

    bundles = await bundles_of(bundler, kt)
    assert [len(b["jaksot"]) for b in bundles] == [8, 16]  # maija, olli
    all_ids = [i for b in bundles for i in b["jaksot"]]
    assert len(all_ids) == len(set(all_ids)) == len(students)
    for jakso_row in all_ids:
        assert await n1_transitions(bundler, jakso_row) == 1
    await outbox_drained(bundler)
    assert len(await only(events, kt, "nippu.ready", 2)) == 2

    first, second = await asyncio.gather(
        post_run(bundler, "tep-niputus", "2035-04-01"),
        post_run(bundler, "tep-niputus", "2035-04-01"),
    )
    assert first["run_id"] == second["run_id"]


async def test_the_earlier_jakso_of_a_jatkumo_waits_and_joins_the_latest(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """J4 (seed: 1.1.–31.1. and 1.3.–31.5., one workplace and instructor): the run of
    1.2. leaves the first jakso waiting; the run of 1.6. bundles both in one bundle."""
    kt = koulutustoimija()
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=kt),
        student.hoks(
            jakso("first", alku="2036-01-02", loppu="2036-01-31"),
            jakso("second", alku="2036-03-02", loppu="2036-05-29"),
        ),
    )
    await run(bundler, "tep-niputus", "2036-02-01")
    assert await bundles_of(bundler, kt) == []
    assert (await states(bundler, student.hoks_id))["first"] == (
        "odottaa",
        "jatkuu_myohemmin",
        "2036-06-01",
    )

    await run(bundler, "tep-niputus", "2036-06-01")
    (bundle,) = await bundles_of(bundler, kt)
    assert bundle["jaksot"] == sorted(
        [
            await jakso_id(bundler, student.hoks_id, "first"),
            await jakso_id(bundler, student.hoks_id, "second"),
        ]
    )
    (ready,) = await only(events, kt, "nippu.ready", 1)
    assert len(ready["payload"]["jaksot"]) == 2


# --- TPK ------------------------------------------------------------------------------


async def test_tpk_on_1_7_bundles_the_spring_by_workplace(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """T1–T4: the run of 1.7. forms the spring's bundles; spellings that normalise alike
    share one, "Päiväkoti Perhonen" is another; an entrepreneur's own apprenticeship
    and an autumn jakso are left out."""
    kt = koulutustoimija()
    same1, same2, other, yrittaja, autumn = (Student() for _ in range(5))
    spring = {"alku": "2037-02-01", "loppu": "2037-05-12"}
    await apply(
        bundler,
        channel,
        *(s.opiskeluoikeus(koulutustoimija=kt) for s in (same1, same2, other, yrittaja, autumn)),
        same1.hoks(jakso("a", **spring, tyopaikan_nimi="Perhosen päiväkoti")),
        same2.hoks(jakso("a", **spring, tyopaikan_nimi="PERHOSEN  Päiväkoti!")),
        other.hoks(jakso("a", **spring, tyopaikan_nimi="Päiväkoti Perhonen")),
        yrittaja.hoks(
            jakso(
                "a",
                **spring,
                hankkimistapa="oppisopimus",
                oppisopimuksen_perusta="02",
                tyopaikan_nimi="Perhosen päiväkoti",
            )
        ),
        autumn.hoks(jakso("a", alku="2037-05-01", loppu="2037-07-10")),
    )
    done = await run(bundler, "tpk-niputus", "2037-07-01")
    assert done["counts"]["tpk_niput"] >= 2

    bundles = {b["tyopaikka_normalisoitu"]: b for b in await tpk_bundles_of(bundler, kt)}
    assert sorted(bundles) == ["paivakoti_perhonen", "perhosen_paivakoti"]
    perhonen = bundles["perhosen_paivakoti"]
    assert perhonen["jaksot"] == sorted(
        [await jakso_id(bundler, same1.hoks_id, "a"), await jakso_id(bundler, same2.hoks_id, "a")]
    )
    assert [str(perhonen[k]) for k in ("kausi_alku", "kausi_loppu")] == [
        "2037-01-01",
        "2037-06-30",
    ]
    assert [str(perhonen[k]) for k in ("vastaamisajan_alkupvm", "vastaamisajan_loppupvm")] == [
        "2037-07-01",
        "2037-08-31",
    ]
    ready = await only(events, kt, "tpk_nippu.ready", 2)
    payload = next(
        e["payload"] for e in ready if e["payload"]["tpk_nippu_id"] == str(perhonen["id"])
    )
    assert payload == {
        "tpk_nippu_id": str(perhonen["id"]),
        "koulutustoimija_oid": kt,
        "tyonantaja": "1234567-8",
        "tyopaikka": perhonen["tyopaikka"],
        "tyopaikka_normalisoitu": "perhosen_paivakoti",
        "tiedonkeruu_alkupvm": "2037-01-01",
        "tiedonkeruu_loppupvm": "2037-06-30",
        "vastaamisajan_alkupvm": "2037-07-01",
        "vastaamisajan_loppupvm": "2037-08-31",
    }


async def test_a_repeated_tpk_run_adds_late_jaksot(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """T4: within the answer window a late jakso joins its workplace's bundle while it
    has no link; once it has one, the next late jakso forms a new bundle. (The late
    ones end on 20.6.: TEP-eligible still, T2; one of 12.5. would by now be E13.)"""
    kt = koulutustoimija()
    first, late, later = Student(), Student(), Student()
    spring = {"alku": "2038-02-01", "loppu": "2038-05-12"}
    await apply(
        bundler,
        channel,
        *(s.opiskeluoikeus(koulutustoimija=kt) for s in (first, late, later)),
        first.hoks(jakso("a", **spring)),
    )
    await run(bundler, "tpk-niputus", "2038-07-01")
    (bundle,) = await tpk_bundles_of(bundler, kt)

    late_spring = {"alku": "2038-03-01", "loppu": "2038-06-20"}
    await apply(bundler, channel, late.hoks(jakso("a", **late_spring)))
    done = await run(bundler, "tpk-niputus", "2038-07-16")
    assert done["counts"]["jaksot_to_existing"] >= 1
    (joined,) = await tpk_bundles_of(bundler, kt)
    assert joined["id"] == bundle["id"]
    assert joined["jaksot"] == sorted(
        [await jakso_id(bundler, first.hoks_id, "a"), await jakso_id(bundler, late.hoks_id, "a")]
    )

    async with bundler.service.db.transaction() as session:
        await session.execute(
            update(tpk_niput)
            .where(tpk_niput.c.id == bundle["id"])
            .values(tunnus="t1", kysely_linkki="https://arvo.example/v/t1")
        )
    await apply(bundler, channel, later.hoks(jakso("a", **late_spring)))
    await run(bundler, "tpk-niputus", "2038-08-01")
    linked, new = await tpk_bundles_of(bundler, kt)
    assert linked["id"] == bundle["id"]
    assert new["jaksot"] == [await jakso_id(bundler, later.hoks_id, "a")]
    await outbox_drained(bundler)
    ready = await only(events, kt, "tpk_nippu.ready", 2)
    assert {e["payload"]["tpk_nippu_id"] for e in ready} == {str(bundle["id"]), str(new["id"])}


# --- A run cut short ------------------------------------------------------------------


async def test_a_run_killed_midway_completes_after_restart(
    infra: Infra, bundler: Running, events: EventCapture
) -> None:
    """Issue 12: SIGKILL during a TEP run of 10,000 due jaksot; after a restart the same
    run completes, with every jakso in exactly one bundle and one `nippu.ready` (one
    message id) per bundle. The jaksot are written straight into the tables."""
    count = 10_000
    salt = random.randint(0, 10**6)
    kt_base = 8 * 10**14 + salt * 100
    niputuspvm = dt.date(2039, 3, 16)
    await seed_due_jaksot(
        bundler.service.db,
        count,
        niputuspvm=niputuspvm,
        first_id=9 * 10**14 + salt * 10**5,
        kt_base=kt_base,
    )
    kts = sorted({seeded_koulutustoimija(kt_base, n) for n in range(count)})
    mine = jaksot_table.c.koulutustoimija_oid.in_(kts)

    async def bundled() -> int:
        async with bundler.service.db.transaction() as session:
            return int(
                await session.scalar(
                    select(func.count()).where(mine, jaksot_table.c.nippu_id.is_not(None))
                )
                or 0
            )

    body = {"job": "tep-niputus", "date": niputuspvm.isoformat()}
    first = ServiceProcess("bundler", service_env(infra, WEB_CONCURRENCY="1"))
    await first.start()
    try:
        async with httpx.AsyncClient(base_url=first.base_url, headers=ADMIN) as client:
            run_id = (await client.post("/api/v1/runs", json=body)).json()["run_id"]
        await eventually(bundled, lambda n: n > 0, timeout=120, what="a first bundle")
    finally:
        first.kill()
    partial = await bundled()
    assert 0 < partial < count, "killed while the run was under way"

    second = ServiceProcess("bundler", service_env(infra, WEB_CONCURRENCY="1"))
    await second.start()
    try:
        async with httpx.AsyncClient(base_url=second.base_url, headers=ADMIN) as client:
            again = (await client.post("/api/v1/runs", json=body)).json()
            assert again["run_id"] == run_id

            async def status() -> dict[str, Any]:
                body: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
                return body

            done = await eventually(
                status, lambda r: r["status"] in ("done", "failed"), timeout=180, what="run"
            )
            assert done["status"] == "done", done
    finally:
        await second.terminate()

    assert await bundled() == count
    async with bundler.service.db.transaction() as session:
        sizes = (
            await session.execute(
                select(jaksot_table.c.nippu_id, func.count())
                .where(mine, jaksot_table.c.nippu_id.is_not(None))
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
    assert len(bundle_ids) == count // 4
    assert {nippu_id for nippu_id, _ in sizes} == bundle_ids
    assert {size for _, size in sizes} == {4}, "each instructor's 4 students, once"
    assert n1 == count

    def ready(e: dict[str, Any]) -> bool:
        return e["type"] == "nippu.ready" and e["payload"]["koulutustoimija_oid"] in kts

    def distinct_bundles() -> int:
        return len({e["payload"]["nippu_id"] for e in events.matching(ready)})

    async def probe() -> int:
        return distinct_bundles()

    await eventually(probe, lambda n: n == len(bundle_ids), timeout=120, what="events")
    messages: dict[str, set[str]] = {}
    for e in events.matching(ready):
        messages.setdefault(e["payload"]["nippu_id"], set()).add(e["message_id"])
    assert {uuid.UUID(k) for k in messages} == bundle_ids
    assert all(len(ids) == 1 for ids in messages.values()), "one event per bundle"
