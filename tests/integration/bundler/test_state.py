"""Keeping state current (issue 12): the rules' worked examples end to end, through the
`bundler.events` queue into the jaksot API and their history (E, J4, W4, E14, E18)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aio_pika
import aio_pika.abc
import httpx
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import update

from services.bundler.store.tables import jaksot as jaksot_table
from shared.messaging.envelope import Envelope
from shared.messaging.topology import declare_exchanges
from tests.integration.bundler.conftest import (
    OTHER_KOULUTUSTOIMIJA,
    SCOPED_TOKEN,
    Student,
    apply,
    history,
    jakso,
    jakso_id,
    jaksot,
    publish,
    states,
    wait_seen,
)
from tests.support.polling import eventually
from tests.support.services import UPSTREAM_TOKEN, Running

E15 = ("odottaa", "odottaa_niputusta", "2025-03-16")


async def test_a_hoks_before_its_study_right_waits_then_is_eligible(
    bundler: Running, channel: AbstractChannel
) -> None:
    """E3 → E15: the study right arriving after its HOKS re-judges the HOKS's jaksot."""
    student = Student()
    await apply(bundler, channel, student.hoks(jakso("a")))
    assert await states(bundler, student.hoks_id) == {
        "a": ("odottaa", "opiskeluoikeus_puuttuu", "2025-03-16")
    }
    await apply(bundler, channel, student.opiskeluoikeus())
    assert await states(bundler, student.hoks_id) == {"a": E15}

    steps = await history(bundler, await jakso_id(bundler, student.hoks_id, "a"))
    assert [
        (s["from_syy"], s["to_syy"], s["rule"], s["cause"], s["changed"], s["applied"])
        for s in steps
    ] == [
        (None, "opiskeluoikeus_puuttuu", "E3", "hoks.changed v1", [], True),
        (
            "opiskeluoikeus_puuttuu",
            "odottaa_niputusta",
            "E15",
            "opiskeluoikeus.changed v1",
            ["opiskeluoikeus"],
            True,
        ),
    ]


async def test_a_study_right_before_its_hoks_gives_eligibility_at_once(
    bundler: Running, channel: AbstractChannel
) -> None:
    student = Student()
    await apply(bundler, channel, student.opiskeluoikeus(), student.hoks(jakso("a")))
    assert await states(bundler, student.hoks_id) == {"a": E15}
    response = await jaksot(bundler, student.hoks_id)
    (row,) = response.json()
    assert set(row) == {
        "jakso_id",
        "hoks_id",
        "yksiloiva_tunniste",
        "hankkimistapa",
        "alku",
        "loppu",
        "osa_aikaisuus",
        "kesto",
        "tila",
        "syy",
        "niputuspvm",
        "nippu_id",
    }, "exactly api.md's fields"
    assert row["hankkimistapa"] == "koulutussopimus"
    assert (row["alku"], row["loppu"], row["osa_aikaisuus"]) == ("2025-01-13", "2025-03-07", 100)


REASONS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]] = {
    # id: (hoks changes, jakso changes, study-right changes, expected syy)
    "E1": ({}, {"loppu": "2025-04-30"}, {}, "jakso_kesken"),
    "E2": ({}, {"alku": "2021-05-01", "loppu": "2021-06-30"}, {}, "ennen_kayttoonottoa"),
    "E4": ({"is_tuva": True}, {}, {}, "ei_tutkintokoulutus"),
    "E5": ({}, {}, {"suoritustyyppi": "valma"}, "ei_ammatillinen_tutkinto"),
    "E6": (
        {},
        {},
        {"sisaltyy_opiskeluoikeuteen": "1.2.246.562.15.1"},
        "sisaltyy_toiseen_opiskeluoikeuteen",
    ),
    "E7": (
        {},
        {},
        {"tilat": (("2023-08-01", "lasna", "1"), ("2025-03-01", "eronnut", "1"))},
        "opiskeluoikeus_paattynyt",
    ),
    "E8": ({}, {}, {"tilat": (("2023-08-01", "lasna", "6"),)}, "muu_rahoitus"),
    "E9": ({}, {"keskeytymisajanjaksot": [{"alku": "2025-03-01"}]}, {}, "keskeytynyt"),
    "E10": (
        {},
        {"hankkimistapa": "oppisopimus"},
        {"oppisopimuksen_purkamispaiva": "2025-03-01"},
        "sopimus_purettu",
    ),
    "E11": ({}, {"osa_aikaisuus": None}, {}, "osa_aikaisuus_puuttuu"),
    "E12": ({}, {"ohjaaja": None}, {}, "tyopaikkatieto_puuttuu"),
    "E13": ({}, {"alku": "2024-10-01", "loppu": "2024-12-01"}, {}, "vastausaika_umpeutunut"),
    "E16-completed-on-termination-day": (
        {},
        {"hankkimistapa": "oppisopimus"},
        {"oppisopimuksen_purkamispaiva": "2025-03-07"},
        "odottaa_niputusta",
    ),
    "E17-katsotaaneronneeksi-on-loppu": (
        {},
        {},
        {"tilat": (("2023-08-01", "lasna", "1"), ("2025-03-07", "katsotaaneronneeksi", "1"))},
        "odottaa_niputusta",
    ),
    "E17-katsotaaneronneeksi-the-day-before": (
        {},
        {},
        {"tilat": (("2023-08-01", "lasna", "1"), ("2025-03-06", "katsotaaneronneeksi", "1"))},
        "opiskeluoikeus_paattynyt",
    ),
}


@pytest.mark.parametrize(("hoks", "changes", "oo", "syy"), REASONS.values(), ids=REASONS.keys())
async def test_each_reason_of_the_eligibility_table(
    bundler: Running,
    channel: AbstractChannel,
    hoks: dict[str, Any],
    changes: dict[str, Any],
    oo: dict[str, Any],
    syy: str,
) -> None:
    """E1–E17 with rules.md's dates (E17: loppu 2025-03-07), judged on 2025-03-20."""
    student = Student()
    await apply(
        bundler, channel, student.opiskeluoikeus(**oo), student.hoks(jakso("a", **changes), **hoks)
    )
    ((_tila, got, _pvm),) = (await states(bundler, student.hoks_id)).values()
    assert got == syy


async def test_a_contract_terminated_later_stops_only_the_unfinished_jakso(
    bundler: Running, channel: AbstractChannel
) -> None:
    """E16: the termination arrives in a later study-right version; a jakso completed on
    the termination day is still surveyed, one still running then is not (E10)."""
    student = Student()
    done = jakso("done", hankkimistapa="oppisopimus", alku="2025-01-13", loppu="2025-03-07")
    running = jakso("running", hankkimistapa="oppisopimus", alku="2025-02-03", loppu="2025-03-14")
    await apply(bundler, channel, student.opiskeluoikeus(), student.hoks(done, running))
    assert await states(bundler, student.hoks_id) == {"done": E15, "running": E15}

    await apply(
        bundler, channel, student.opiskeluoikeus(2, oppisopimuksen_purkamispaiva="2025-03-07")
    )
    assert await states(bundler, student.hoks_id) == {
        "done": E15,
        "running": ("ei_laheteta", "sopimus_purettu", "2025-03-16"),
    }
    (*_, last) = await history(bundler, await jakso_id(bundler, student.hoks_id, "running"))
    assert (last["rule"], last["changed"], last["cause"]) == (
        "E10",
        ["opiskeluoikeus.oppisopimuksen_purkamispaiva"],
        "opiskeluoikeus.changed v2",
    )
    done_steps = await history(bundler, await jakso_id(bundler, student.hoks_id, "done"))
    assert len(done_steps) == 1, "a re-evaluation that changes nothing is not recorded"


async def test_a_study_right_ending_later_stops_its_jaksot(
    bundler: Running, channel: AbstractChannel
) -> None:
    """E7 via a later study-right version: eronnut before loppu."""
    student = Student()
    await apply(bundler, channel, student.opiskeluoikeus(), student.hoks(jakso("a")))
    eronnut = (("2023-08-01", "lasna", "1"), ("2025-02-01", "eronnut", "1"))
    await apply(bundler, channel, student.opiskeluoikeus(2, tilat=eronnut))
    assert await states(bundler, student.hoks_id) == {
        "a": ("ei_laheteta", "opiskeluoikeus_paattynyt", "2025-03-16")
    }


#: rules.md J4: 1.1.–31.1. and 1.3.–31.5., same tutkinnon osa, workplace and instructor.
EARLIER = {"alku": "2025-01-01", "loppu": "2025-01-31"}
LATER = {"alku": "2025-03-01", "loppu": "2025-05-31"}


async def test_j4_separate_jaksot_and_one_with_an_interruption_give_one_survey(
    bundler: Running, channel: AbstractChannel, set_today: Callable[[str], None]
) -> None:
    """J4 both ways: the earlier jakso waits as jatkuu_myohemmin while the later one runs,
    then both are due on the later one's niputuspvm; one jakso with a
    keskeytymisajanjakso gives the same single date."""
    separate, interrupted = Student(), Student()
    interrupted.oid = separate.oid  # one study right: its new version re-judges both
    one = jakso(
        "one",
        alku="2025-01-01",
        loppu="2025-05-31",
        keskeytymisajanjaksot=[{"alku": "2025-02-01", "loppu": "2025-02-28"}],
    )
    await apply(
        bundler,
        channel,
        separate.opiskeluoikeus(),
        separate.hoks(jakso("earlier", **EARLIER), jakso("later", **LATER)),
        interrupted.hoks(one),
    )
    assert await states(bundler, separate.hoks_id) == {
        "earlier": ("odottaa", "jatkuu_myohemmin", "2025-06-01"),
        "later": ("odottaa", "jakso_kesken", None),
    }
    assert await states(bundler, interrupted.hoks_id) == {"one": ("odottaa", "jakso_kesken", None)}

    set_today("2025-06-05")
    await apply(bundler, channel, separate.opiskeluoikeus(2))
    assert await states(bundler, separate.hoks_id) == {
        "earlier": ("odottaa", "odottaa_niputusta", "2025-06-01"),
        "later": ("odottaa", "odottaa_niputusta", "2025-06-01"),
    }
    assert await states(bundler, interrupted.hoks_id) == {
        "one": ("odottaa", "odottaa_niputusta", "2025-06-01")
    }
    (*_, joined) = await history(bundler, await jakso_id(bundler, separate.hoks_id, "earlier"))
    assert (joined["from_syy"], joined["to_syy"], joined["rule"]) == (
        "jatkuu_myohemmin",
        "odottaa_niputusta",
        "J4",
    )


async def test_j4_the_earlier_jakso_is_judged_alone_when_the_later_is_removed(
    bundler: Running, channel: AbstractChannel
) -> None:
    """J4: with the later jakso removed, the earlier one is a late jakso on its own date
    (D3), W2 still leaving time on 2025-03-20."""
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(),
        student.hoks(jakso("earlier", **EARLIER), jakso("later", **LATER)),
        student.hoks(jakso("earlier", **EARLIER), version=2),
    )
    assert await states(bundler, student.hoks_id) == {
        "earlier": ("odottaa", "odottaa_niputusta", "2025-02-01"),
        # E14 follows the table's order (docs/rules.md): unfinished, the removed jakso is
        # still E1; it is never due, and once over its end date it is jakso_poistettu.
        "later": ("odottaa", "jakso_kesken", None),
    }


W4 = {
    # id: (old loppu, new loppu, expected (tila, syy, niputuspvm), loppu_muutos)
    "later-before-the-old-date": (
        "2025-04-10",
        "2025-04-30",
        ("odottaa", "jakso_kesken", None),
        "myohemmaksi",
    ),
    "earlier-still-in-the-future": (
        "2025-04-30",
        "2025-04-10",
        ("odottaa", "jakso_kesken", None),
        "aiemmaksi_tulevaisuuteen",
    ),
    "earlier-into-the-past-with-time-left": (
        "2025-04-30",
        "2025-03-10",
        E15,
        "aiemmaksi_menneisyyteen",
    ),
    "earlier-into-the-past-window-closed": (
        "2025-04-30",
        "2024-12-01",
        ("ei_laheteta", "vastausaika_umpeutunut", "2024-12-16"),
        "aiemmaksi_menneisyyteen",
    ),
}


@pytest.mark.parametrize(("old", "new", "expected", "muutos"), W4.values(), ids=W4.keys())
async def test_w4_end_date_changes(
    bundler: Running,
    channel: AbstractChannel,
    old: str,
    new: str,
    expected: tuple[str, str, str | None],
    muutos: str,
) -> None:
    """W4: the new date is the herätepäivä; moved into the past it is surveyed if W2
    still leaves time, else vastausaika_umpeutunut."""
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(),
        student.hoks(jakso("a", alku="2024-10-01", loppu=old)),
        student.hoks(jakso("a", alku="2024-10-01", loppu=new), version=2),
    )
    assert await states(bundler, student.hoks_id) == {"a": expected}
    (row,) = (await jaksot(bundler, student.hoks_id)).json()
    assert row["loppu"] == new
    (*_, last) = await history(bundler, row["jakso_id"])
    assert (last["loppu_muutos"], last["changed"], last["cause"]) == (
        muutos,
        ["loppu"],
        "hoks.changed v2",
    )


async def test_a_jakso_removed_from_the_hoks_is_not_surveyed(
    bundler: Running, channel: AbstractChannel
) -> None:
    """E14: a jakso missing from a newer hoks.changed is ei_laheteta / jakso_poistettu."""
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(),
        student.hoks(jakso("a"), jakso("b")),
        student.hoks(jakso("a"), version=2),
    )
    assert await states(bundler, student.hoks_id) == {
        "a": E15,
        "b": ("ei_laheteta", "jakso_poistettu", "2025-03-16"),
    }
    (*_, removed) = await history(bundler, await jakso_id(bundler, student.hoks_id, "b"))
    assert (removed["rule"], removed["changed"], removed["cause"]) == (
        "E14",
        ["poistettu"],
        "hoks.changed v2",
    )


async def test_a_deleted_hoks_is_not_surveyed_and_older_versions_stay_away(
    bundler: Running, channel: AbstractChannel
) -> None:
    """E14: hoks.deleted → hoks_poistettu; its older hoks.changed arriving late (a
    redelivery under another message id) changes nothing."""
    student = Student()
    await apply(bundler, channel, student.opiskeluoikeus(), student.hoks(jakso("a")))
    await apply(bundler, channel, student.deleted(2), student.hoks(jakso("a"), version=1))
    assert await states(bundler, student.hoks_id) == {
        "a": ("ei_laheteta", "hoks_poistettu", "2025-03-16")
    }
    steps = await history(bundler, await jakso_id(bundler, student.hoks_id, "a"))
    assert [s["cause"] for s in steps] == ["hoks.changed v1", "hoks.deleted v2"]
    assert steps[-1]["changed"] == ["hoks.poistettu"]


async def test_a_deletion_before_any_version_keeps_older_versions_out(
    bundler: Running, channel: AbstractChannel
) -> None:
    student = Student()
    await apply(bundler, channel, student.deleted(2), student.hoks(jakso("a"), version=1))
    response = await jaksot(bundler, student.hoks_id)
    assert (response.status_code, response.json()) == (200, [])


async def test_redelivery_applies_once_and_an_older_version_changes_nothing(
    bundler: Running, channel: AbstractChannel
) -> None:
    student = Student()
    await apply(bundler, channel, student.opiskeluoikeus())
    v1 = student.hoks(jakso("a", loppu="2025-03-07"))
    message_id = await publish(channel, v1)
    await publish(channel, v1, message_id=message_id)  # the same message again
    await wait_seen(bundler, message_id)
    await apply(bundler, channel, student.hoks(jakso("a", loppu="2025-03-12"), version=3))
    await apply(bundler, channel, student.hoks(jakso("a", loppu="2025-04-30"), version=2))
    (row,) = (await jaksot(bundler, student.hoks_id)).json()
    assert (row["loppu"], row["tila"], row["syy"]) == ("2025-03-12", *E15[:2])
    steps = await history(bundler, row["jakso_id"])
    assert [s["cause"] for s in steps] == ["hoks.changed v1", "hoks.changed v3"]

    # A study right's older version after a newer one changes nothing either.
    eronnut = (("2023-08-01", "lasna", "1"), ("2025-02-01", "eronnut", "1"))
    await apply(
        bundler, channel, student.opiskeluoikeus(3, tilat=eronnut), student.opiskeluoikeus(2)
    )
    assert await states(bundler, student.hoks_id) == {
        "a": ("ei_laheteta", "opiskeluoikeus_paattynyt", "2025-03-16")
    }


async def test_hoksit_and_their_study_right_arriving_together_end_eligible(
    bundler: Running, channel: AbstractChannel
) -> None:
    """Events of one study right and its HOKS consumed concurrently (prefetch): whichever
    commits second sees the other, so no jakso is left waiting for a known study right."""
    students = [Student() for _ in range(60)]
    for student in students[1:]:
        student.oid = students[0].oid
    hoksit = [publish(channel, s.hoks(jakso("a"))) for s in students]
    ids = await asyncio.gather(
        *hoksit[:30], publish(channel, students[0].opiskeluoikeus()), *hoksit[30:]
    )
    await wait_seen(bundler, *ids)
    waiting = [s.hoks_id for s in students if await states(bundler, s.hoks_id) != {"a": E15}]
    assert waiting == []


async def test_a_bundled_jakso_keeps_its_state_and_the_change_is_recorded(
    bundler: Running, channel: AbstractChannel
) -> None:
    """E18: a change to a jakso in `niputettu` or later is recorded, not applied."""
    student = Student()
    await apply(bundler, channel, student.opiskeluoikeus(), student.hoks(jakso("a")))
    row_id = await jakso_id(bundler, student.hoks_id, "a")
    async with bundler.service.db.transaction() as session:  # as the TEP niputus run does
        await session.execute(
            update(jaksot_table).where(jaksot_table.c.id == row_id).values(tila="niputettu")
        )
    await apply(bundler, channel, student.hoks(jakso("a", loppu="2025-03-18"), version=2))
    (row,) = (await jaksot(bundler, student.hoks_id)).json()
    assert (row["tila"], row["niputuspvm"], row["loppu"]) == (
        "niputettu",
        "2025-03-16",
        "2025-03-18",
    )
    (*_, last) = await history(bundler, row_id)
    assert (last["from_tila"], last["to_tila"], last["applied"], last["changed"]) == (
        "niputettu",
        "odottaa",
        False,
        ["loppu"],
    )


async def test_the_history_names_fields_never_values(
    bundler: Running, channel: AbstractChannel
) -> None:
    student = Student()
    new_ohjaaja = {"nimi": "Olli Ohjaaja", "sahkoposti": "olli.o@perhonen.fi"}
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(),
        student.hoks(jakso("a")),
        student.hoks(jakso("a", ohjaaja=new_ohjaaja), version=2),
    )
    response = await bundler.client.get(
        f"/api/v1/jaksot/{await jakso_id(bundler, student.hoks_id, 'a')}/history"
    )
    assert "perhonen.fi" not in response.text
    assert response.json()[-1]["changed"] == ["ohjaaja.sahkoposti", "ohjaaja.puhelinnumero"]


async def test_another_providers_jaksot_are_not_found(
    bundler: Running, channel: AbstractChannel
) -> None:
    ours, theirs = Student(), Student()
    await apply(
        bundler,
        channel,
        ours.opiskeluoikeus(),
        ours.hoks(jakso("a")),
        theirs.opiskeluoikeus(koulutustoimija=OTHER_KOULUTUSTOIMIJA),
        theirs.hoks(jakso("a")),
    )
    assert (await jaksot(bundler, ours.hoks_id, SCOPED_TOKEN)).status_code == 200
    hidden = await jaksot(bundler, theirs.hoks_id, SCOPED_TOKEN)
    unknown = await jaksot(bundler, 1, SCOPED_TOKEN)
    assert (hidden.status_code, hidden.json()["error"]) == (404, "not_found")
    assert unknown.status_code == 404
    assert hidden.json()["message"] == f"HOKS {theirs.hoks_id} is not known", (
        "another provider's HOKS answers as an unknown one"
    )

    their_jakso = await jakso_id(bundler, theirs.hoks_id, "a")
    auth = {"authorization": f"Bearer {SCOPED_TOKEN}"}
    got = await bundler.client.get(f"/api/v1/jaksot/{their_jakso}/history", headers=auth)
    assert got.status_code == 404
    ours_id = await jakso_id(bundler, ours.hoks_id, "a")
    got = await bundler.client.get(f"/api/v1/jaksot/{ours_id}/history", headers=auth)
    assert got.status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer nope"}, 401),
        ({"authorization": f"Bearer {UPSTREAM_TOKEN}"}, 403),
    ],
    ids=["no-token", "unknown-token", "without-palaute-read"],
)
@pytest.mark.parametrize("path", ["/api/v1/hoks/1/jaksot", "/api/v1/jaksot/1/history"])
async def test_reads_need_palaute_read(
    bundler: Running, path: str, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=bundler.base_url) as anonymous:
        response = await anonymous.get(path, headers=headers)
    assert response.status_code == status


async def test_an_invalid_payload_is_set_aside_without_its_personal_data(
    bundler: Running, channel: AbstractChannel
) -> None:
    """A payload that fails its model can never succeed: straight to the DLQ, its error
    naming the field but not the values (the instructor's contact data)."""
    student = Student()
    payload = student.hoks(jakso("a")).model_dump(mode="json")
    payload["jaksot"][0]["ohjaaja"] = ["Olli Ohjaaja", "olli@perhonen.fi"]
    envelope = Envelope(type="hoks.changed", correlation_id="test-invalid", payload=payload)
    events, _ = await declare_exchanges(channel)
    await events.publish(
        aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.message_id)),
        routing_key="hoks.changed",
    )
    queue = await channel.get_queue("bundler.events.dlq")

    async def take() -> aio_pika.abc.AbstractIncomingMessage | None:
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            if message.message_id == str(envelope.message_id):
                return message
        return None

    message = await eventually(take, lambda m: m is not None, what="message in the DLQ")
    assert message is not None
    error = str((message.headers or {})["x-error"])
    assert "ohjaaja" in error
    assert "perhonen.fi" not in error and "Olli" not in error
