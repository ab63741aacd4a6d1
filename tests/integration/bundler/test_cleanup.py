"""P1 in the bundler: the `personal-data-cleanup` run removes instructors' names, e-mails
and phones from finished bundles and jaksot, and nothing else; later events keep it so.

The clean-up works on the whole database, so this module runs its own bundler on a
database and vhost of its own: it can assert exact counts and that every other row is
untouched, and never removes what the session's other tests (niputus) still read.
Bundles are written as rows (the state a TEP run and the sender leave), the jaksot come
through the queue as in production.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aio_pika.abc
import pytest_asyncio
from sqlalchemy import insert, select, update

from services.bundler.app import create_service
from services.bundler.settings import BundlerSettings
from services.bundler.store.tables import hoksit, jakso_transitions, jaksot, niput
from services.bundler.usecases import Bundler
from tests.integration.bundler.conftest import (
    TODAY,
    Student,
    apply,
    history,
    jakso,
    jakso_id,
    states,
)
from tests.support.infra import Infra, create_infra, destroy_infra
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, READER_TOKEN, Running, run_in_process

d = dt.date.fromisoformat
OLLI = {"nimi": "Olli Ohjaaja", "sahkoposti": "olli@perhonen.fi", "puhelinnumero": "0401234567"}
PERSONAL = ("ohjaaja_nimi", "ohjaaja_sahkoposti", "ohjaaja_puhelinnumero")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_infra() -> AsyncIterator[Infra]:
    infra = await create_infra()
    yield infra
    await destroy_infra(infra)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cleaner(own_infra: Infra) -> AsyncIterator[Running]:
    settings = BundlerSettings(
        database_url=own_infra.database_url,
        amqp_url=own_infra.amqp_url,
        outbox_poll_seconds=0.2,
        retry_delays_ms=[200, 500, 1000],
        clock_today=TODAY,
    )
    async with run_in_process(create_service(settings)) as running:
        running.client.headers["authorization"] = f"Bearer {READER_TOKEN}"
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_channel(own_infra: Infra) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(own_infra.amqp_url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


async def run_cleanup(running: Running, date: str) -> dict[str, Any]:
    """POST /api/v1/runs for the clean-up of `date`, then its finished run."""
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"job": "personal-data-cleanup", "date": date}
    answer = await running.client.post("/api/v1/runs", json=body, headers=admin)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]

    async def status() -> dict[str, Any]:
        response = await running.client.get(f"/api/v1/runs/{run_id}", headers=admin)
        result: dict[str, Any] = response.json()
        return result

    return await eventually(status, lambda r: r["status"] in ("done", "failed"), what="run")


async def bundle(
    running: Running, hoks_id: int, tunniste: str, *, voimassa: str, tila: str = "lahetetty"
) -> uuid.UUID:
    """A sent TEP bundle of one jakso, as niputus and the sender leave it."""
    nippu_id = uuid.uuid4()
    async with running.service.db.transaction() as session:
        await session.execute(
            insert(niput).values(
                id=nippu_id,
                tunniste=f"perhosen_paivakoti_2025-03-16_{nippu_id.hex[:8]}",
                ohjaaja_normalisoitu="olli_ohjaaja",
                tyopaikan_ytunnus="1234567-8",
                koulutustoimija_oid="1.2.246.562.10.346830761110",
                tutkinto="351301",
                niputuspvm=d("2025-03-16"),
                tyopaikka="Perhosen Päiväkoti",
                tyopaikka_normalisoitu="perhosen_paivakoti",
                lahetyspvm=d("2025-03-16"),
                voimassa_loppupvm=d(voimassa),
                tila=tila,
                linkki=f"https://arvo.example/{nippu_id.hex[:8]}",
                sahkoposti="olli@perhonen.fi",
                puhelinnumero="+358401234567",
                sahkoposti_tila="ok",
                puhelin_tila="ok",
            )
        )
        await session.execute(
            update(jaksot)
            .where(jaksot.c.hoks_id == hoks_id, jaksot.c.tunniste == tunniste)
            .values(nippu_id=nippu_id, tila=tila, syy="odottaa_niputusta", kesto=37)
        )
    return nippu_id


async def rows(running: Running, table: Any) -> dict[Any, dict[str, Any]]:
    """Every row of a table by id, as plain dicts."""
    async with running.service.db.transaction() as session:
        result = await session.execute(select(table))
        return {row.id: dict(row._mapping) for row in result}


def without(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in names}


async def test_the_cleanup_removes_exactly_the_finished_instructors_data_once(
    cleaner: Running, own_channel: aio_pika.abc.AbstractChannel
) -> None:
    students = [Student() for _ in range(8)]
    sent, open_, late, waiting, deleted, early, unfinished, ongoing = students
    await apply(
        cleaner,
        own_channel,
        *(s.opiskeluoikeus() for s in students),
        sent.hoks(jakso("a")),
        open_.hoks(jakso("a")),
        # E13: niputuspvm 2024-10-16, its window could stay open until 2024-12-14 at most.
        late.hoks(jakso("a", alku="2024-09-02", loppu="2024-10-07")),
        waiting.hoks(jakso("a")),
        deleted.hoks(jakso("a")),
        deleted.deleted(2),
        early.hoks(jakso("a", alku="2021-05-03", loppu="2021-05-31")),  # E2
        unfinished.hoks(jakso("a", loppu=None)),  # E1, and the HOKS deleted
        unfinished.deleted(2),
        ongoing.hoks(jakso("a", loppu=None)),  # E1
    )
    assert (await states(cleaner, late.hoks_id))["a"][1] == "vastausaika_umpeutunut"
    assert (await states(cleaner, deleted.hoks_id))["a"][1] == "hoks_poistettu"
    sent_nippu = await bundle(cleaner, sent.hoks_id, "a", voimassa="2025-04-14")
    open_nippu = await bundle(cleaner, open_.hoks_id, "a", voimassa="2025-05-14")
    async with cleaner.service.db.transaction() as session:  # deleted on TODAY
        await session.execute(
            update(hoksit)
            .where(hoksit.c.hoks_id == unfinished.hoks_id)
            .values(updated_at=dt.datetime(2025, 3, 20, 12, tzinfo=dt.UTC))
        )
    jaksot_before = await rows(cleaner, jaksot)
    niput_before = await rows(cleaner, niput)
    transitions_before = await rows(cleaner, jakso_transitions)
    api_before = {s.hoks_id: await states(cleaner, s.hoks_id) for s in (sent, late, early)}

    # 2025-05-15: 30 days after 2025-04-14 have passed, not after 2025-05-14; late's
    # 2024-12-14 + 30 long ago; waiting's latest window end 2025-05-14 + 30 not yet;
    # deleted and unfinished went on 2025-03-20 (its history, the HOKS's deletion).
    run = await run_cleanup(cleaner, "2025-05-15")
    assert (run["status"], run["counts"]) == ("done", {"niput": 1, "jaksot": 5})

    jaksot_after = await rows(cleaner, jaksot)
    niput_after = await rows(cleaner, niput)
    cleaned = {i for i, row in jaksot_after.items() if row["personal_data_removed_at"] is not None}
    by_hoks = {row["hoks_id"]: i for i, row in jaksot_after.items()}
    assert cleaned == {by_hoks[s.hoks_id] for s in (sent, late, deleted, early, unfinished)}
    for i, after in jaksot_after.items():
        before = jaksot_before[i]
        if i in cleaned:
            assert all(after[name] is None for name in PERSONAL)
            assert "ohjaaja" not in after["data"]
            assert after["ohjaaja_normalisoitu"] == "olli_ohjaaja"
            assert without(after, *PERSONAL, "personal_data_removed_at") == without(
                before, *PERSONAL, "personal_data_removed_at"
            ), "keys, states, dates, kesto and bundle kept"
        else:
            assert after == before, "other jaksot untouched"
            assert (after["ohjaaja_nimi"], after["ohjaaja_sahkoposti"]) == (
                OLLI["nimi"],
                OLLI["sahkoposti"],
            )
    assert niput_after[sent_nippu]["sahkoposti"] is None
    assert niput_after[sent_nippu]["puhelinnumero"] is None
    assert niput_after[sent_nippu]["personal_data_removed_at"] is not None
    assert without(
        niput_after[sent_nippu], "sahkoposti", "puhelinnumero", "personal_data_removed_at"
    ) == without(
        niput_before[sent_nippu], "sahkoposti", "puhelinnumero", "personal_data_removed_at"
    )
    assert niput_after[open_nippu] == niput_before[open_nippu]
    assert await rows(cleaner, jakso_transitions) == transitions_before
    assert {s.hoks_id: await states(cleaner, s.hoks_id) for s in (sent, late, early)} == (
        api_before
    ), "the jaksot API answers as before"

    # The same date again is the same run; the next day finds nothing left to do.
    again = await run_cleanup(cleaner, "2025-05-15")
    assert (again["run_id"], again["counts"]) == (run["run_id"], run["counts"])
    next_day = await run_cleanup(cleaner, "2025-05-16")
    assert next_day["counts"] == {"niput": 0, "jaksot": 0}
    assert await rows(cleaner, jaksot) == jaksot_after
    assert await rows(cleaner, niput) == niput_after

    # A month later the open bundle and the waiting jakso's last window are done too
    # (here in batches of one, each starting after the last).
    later = await Bundler.of(cleaner.service).remove_personal_data(
        date=d("2025-06-14"), retention_days=30, batch_size=1
    )
    assert later == {"niput": 1, "jaksot": 2}
    still = [r["hoks_id"] for r in (await rows(cleaner, jaksot)).values() if r["ohjaaja_nimi"]]
    assert still == [ongoing.hoks_id], "a jakso still going on keeps its instructor"


async def personal(running: Running, hoks_id: int) -> tuple[Any, ...]:
    async with running.service.db.transaction() as session:
        row = (
            await session.execute(
                select(
                    *(jaksot.c[name] for name in PERSONAL),
                    jaksot.c.ohjaaja_normalisoitu,
                    jaksot.c.personal_data_removed_at.is_not(None),
                ).where(jaksot.c.hoks_id == hoks_id)
            )
        ).one()
    return tuple(row)


REMOVED = (None, None, None, "olli_ohjaaja", True)
KEPT = (OLLI["nimi"], OLLI["sahkoposti"], OLLI["puhelinnumero"], "olli_ohjaaja", False)


async def test_later_events_neither_bring_back_the_data_nor_change_the_judgement(
    cleaner: Running, own_channel: aio_pika.abc.AbstractChannel
) -> None:
    """After the clean-up, a new HOKS version carrying the instructor again and a new
    study-right version leave a finished jakso as it was: no data, same state, the same
    normalised name (E12 still sees an instructor), no history row naming `ohjaaja`.
    Only a moved `loppu` of a jakso not bundled brings the data back (W4)."""
    sent, late = Student(), Student()
    late_jakso = jakso("a", alku="2024-09-02", loppu="2024-10-07")
    await apply(
        cleaner,
        own_channel,
        sent.opiskeluoikeus(),
        late.opiskeluoikeus(),
        sent.hoks(jakso("a")),
        late.hoks(late_jakso),
    )
    await bundle(cleaner, sent.hoks_id, "a", voimassa="2024-12-01")
    run = await run_cleanup(cleaner, "2025-03-01")
    assert run["counts"]["jaksot"] >= 2
    assert await personal(cleaner, sent.hoks_id) == REMOVED
    assert await personal(cleaner, late.hoks_id) == REMOVED
    states_before = {s.hoks_id: await states(cleaner, s.hoks_id) for s in (sent, late)}
    steps_before = {
        s.hoks_id: await history(cleaner, await jakso_id(cleaner, s.hoks_id, "a"))
        for s in (sent, late)
    }

    new_address = {**OLLI, "sahkoposti": "olli.ohjaaja@perhonen.fi"}
    await apply(
        cleaner,
        own_channel,
        sent.hoks(jakso("a", ohjaaja=new_address), version=2),
        late.hoks(late_jakso, version=2),
        sent.opiskeluoikeus(2, oppilaitos_oid="1.2.246.562.10.11111111111"),
        late.opiskeluoikeus(2, oppilaitos_oid="1.2.246.562.10.11111111111"),
    )
    for student in (sent, late):
        assert await personal(cleaner, student.hoks_id) == REMOVED
        assert await states(cleaner, student.hoks_id) == states_before[student.hoks_id]
        steps = await history(cleaner, await jakso_id(cleaner, student.hoks_id, "a"))
        assert steps[: len(steps_before[student.hoks_id])] == steps_before[student.hoks_id]
        assert not [s for s in steps if any("ohjaaja" in c for c in s["changed"])]

    # W4: late's loppu moves to 2025-03-10; on 2025-03-20 it can be surveyed again.
    await apply(cleaner, own_channel, late.hoks(jakso("a", loppu="2025-03-10"), version=3))
    assert await states(cleaner, late.hoks_id) == {
        "a": ("odottaa", "odottaa_niputusta", "2025-03-16")
    }
    assert await personal(cleaner, late.hoks_id) == KEPT
    # The bundled one does not come back, whatever its new dates (E18).
    await apply(cleaner, own_channel, sent.hoks(jakso("a", loppu="2025-03-10"), version=3))
    assert await personal(cleaner, sent.hoks_id) == REMOVED
