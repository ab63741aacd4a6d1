"""The whole flow end to end (issue 15): the four services as processes and the fakes as
real servers, HOKS documents and study rights over HTTP and the `ehoks.changes` queue, the
dated jobs run by date through the runs APIs from 1.3. to 3.7.2026, and assertions on what
the fake Arvo stored, what the SMTP server and the SMS gateway received, and what the read
APIs answer, for the cases of `flow_scenario`.

One set of processes and one walk through the dates for the whole module (the walk is the
expensive part); each test then reads the outcome of its own case, told apart by its
koulutustoimija, instructors and addresses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
import pytest_asyncio

from demo.driver import Driver, RetryingTransport, job_due
from demo.generate import Dataset, generate
from services.ingest.domain.hoks import parse_hoks
from tests.e2e import flow_scenario as sc
from tests.e2e.flow_scenario import Scenario, Student
from tests.support.system import System, running_system

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": "Bearer dev-admin-token"}


@dataclass
class Outcome:
    """What the walk left behind, read once at its end (and a few things on the way)."""

    scenario: Scenario
    arvo: dict[str, Any]
    mails: list[dict[str, Any]]
    sms: list[dict[str, Any]]
    jaksot: dict[int, list[dict[str, Any]]]
    notes: dict[str, str]
    resend_answers: list[int] = field(default_factory=list)

    def codes(self, case: int) -> list[dict[str, Any]]:
        oid = sc.provider_oid(case)
        return [
            c
            for c in self.arvo["codes"]
            if c["data"].get("koulutustoimija_oid") == oid and not c["deleted"]
        ]

    def bundles(self, case: int) -> list[dict[str, Any]]:
        oid = sc.provider_oid(case)
        return [b for b in self.arvo["bundles"] if b["data"].get("koulutustoimija_oid") == oid]

    def bundle_of(self, case: int, ytunnus: str) -> dict[str, Any]:
        (bundle,) = [b for b in self.bundles(case) if b["data"].get("tyonantaja") == ytunnus]
        return bundle

    def tpk(self, case: int) -> list[dict[str, Any]]:
        oid = sc.provider_oid(case)
        return [t for t in self.arvo["tpk"] if t["data"].get("koulutustoimija_oid") == oid]

    def mails_to(self, address: str | None, *, reminders: bool = False) -> list[dict[str, Any]]:
        assert address is not None
        return [
            m
            for m in self.mails
            if address in m["to"] and m["subject"].startswith("Muistutus") is reminders
        ]

    def sms_to(self, e164: str, *, reminders: bool = False) -> list[dict[str, Any]]:
        return [
            m
            for m in self.sms
            if m["destination"] == e164 and m["text"].startswith("Muistutus") is reminders
        ]

    def jakso(self, student: Student, tunniste: str) -> dict[str, Any]:
        (row,) = [j for j in self.jaksot[student.hoks_id] if j["yksiloiva_tunniste"] == tunniste]
        return row


async def publish(amqp_url: str, messages: list[dict[str, Any]]) -> None:
    """Upstream's way in: messages on the `ehoks.changes` queue (api.md)."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for message in messages:
            await channel.default_exchange.publish(
                aio_pika.Message(orjson.dumps(message), content_type="application/json"),
                routing_key="ehoks.changes",
            )


async def send_student(
    client: httpx.AsyncClient, system: System, student: Student, document: dict[str, Any]
) -> None:
    base = system.endpoints.ingest
    oid = student.opiskeluoikeus_oid
    if student.via == "queue":
        await publish(
            system.infra.amqp_url,
            [
                {"type": "opiskeluoikeus.upsert", "oid": oid, "document": student.opiskeluoikeus()},
                {"type": "hoks.upsert", "hoks_id": student.hoks_id, "document": document},
            ],
        )
        return
    answer = await client.put(
        f"{base}/api/v1/opiskeluoikeudet/{oid}", json=student.opiskeluoikeus(), headers=ADMIN
    )
    assert answer.status_code in (200, 201), answer.text
    answer = await client.put(f"{base}/api/v1/hoks/{student.hoks_id}", json=document, headers=ADMIN)
    assert answer.status_code in (200, 201), answer.text


async def bundle_id(client: httpx.AsyncClient, system: System, case: int, ytunnus: str) -> str:
    """The bundler's nippu_id of a case's bundle, through `GET /api/v1/niput`."""
    answer = await client.get(
        f"{system.endpoints.bundler}/api/v1/niput",
        params={"koulutustoimija": sc.provider_oid(case)},
        headers=ADMIN,
    )
    answer.raise_for_status()
    (nippu,) = [n for n in answer.json() if n["ytunnus"] == ytunnus]
    return str(nippu["nippu_id"])


def due(job: str, day: dt.date) -> bool:
    """The scheduler's days, but the clean-up only on the last day: it is a function of its
    date (everything closed more than the retention before it), so one run shows it."""
    if job == "personal-data-cleanup":
        return day == sc.END
    return job_due(job, day)


async def walk(client: httpx.AsyncClient, system: System, scenario: Scenario) -> Outcome:
    empty = Dataset(0, sc.START, (sc.END - sc.START).days, (), (), ())
    driver = Driver(empty, system.endpoints, client=client, settle_seconds=0.6)
    resend_answers: list[int] = []
    day = sc.START
    while day <= sc.END:
        await driver.set_today(day)
        busy = False
        if day == sc.START:
            for student in scenario.students:
                await send_student(client, system, student, student.hoks())
            busy = True
        for correction in (c for c in scenario.corrections if c.day == day):
            student = correction.student
            await send_student(client, system, student, student.hoks(correction.jaksot))
            busy = True
        if busy:
            await driver.settle()
        busy = await driver.run_due_jobs(day, due) or busy
        for respondent in (a for a in scenario.answers if a.day == day):
            state = await driver.arvo_state()
            for bundle in state["bundles"]:
                data = bundle["data"]
                if (data.get("koulutustoimija_oid"), data.get("tyonantaja")) == (
                    sc.provider_oid(respondent.case),
                    respondent.ytunnus,
                ):
                    await client.post(
                        f"{system.endpoints.fake_arvo}/_fake/answer/{bundle['tunniste']}"
                    )
        for resend in (r for r in scenario.resends if r.day == day):
            try:
                nippu = await bundle_id(client, system, resend.case, resend.ytunnus)
            except (httpx.HTTPStatusError, ValueError):
                resend_answers.append(404)
                continue
            resent = await client.post(
                f"{system.endpoints.bundler}/api/v1/niput/{nippu}/resend",
                json={"sahkoposti": resend.sahkoposti},
                headers=ADMIN,
            )
            resend_answers.append(resent.status_code)
            busy = True
        if busy:
            await driver.settle()
        day += dt.timedelta(days=1)
    jaksot: dict[int, list[dict[str, Any]]] = {}
    for student in scenario.students:
        answer = await client.get(
            f"{system.endpoints.bundler}/api/v1/hoks/{student.hoks_id}/jaksot", headers=ADMIN
        )
        jaksot[student.hoks_id] = answer.json() if answer.status_code == 200 else []
    mails, sms = await driver.messages()
    return Outcome(
        scenario, await driver.arvo_state(), mails, sms, jaksot, driver.notes, resend_answers
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def system() -> AsyncIterator[System]:
    async with running_system() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def outcome(system: System) -> Outcome:
    async with httpx.AsyncClient(timeout=30, transport=RetryingTransport()) as client:
        return await asyncio.wait_for(walk(client, system, sc.build()), timeout=420)


# --- what can be checked already: documents in, states by the rules -----------------------


async def test_documents_over_http_and_the_queue_all_reach_the_bundler(outcome: Outcome) -> None:
    for student in outcome.scenario.students:
        rows = outcome.jaksot[student.hoks_id]
        assert {r["yksiloiva_tunniste"] for r in rows} == {j.tunniste for j in student.jaksot}, (
            f"case {student.case} student {student.number} via {student.via}"
        )
    assert {s.via for s in outcome.scenario.students} == {"http", "queue"}


async def test_an_interrupted_jakso_gets_no_survey(outcome: Outcome) -> None:
    student = outcome.scenario.student(sc.INTERRUPTED, 1)
    row = outcome.jakso(student, "e2e-5-1")
    assert (row["tila"], row["syy"]) == ("ei_laheteta", "keskeytynyt")
    assert outcome.codes(sc.INTERRUPTED) == []
    assert outcome.mails_to(student.jaksot[0].ohjaaja.sahkoposti) == []


async def test_an_end_date_moved_into_the_past_without_time_left_is_not_surveyed(
    outcome: Outcome,
) -> None:
    student = outcome.scenario.student(sc.W4, 4)
    row = outcome.jakso(student, "e2e-7-4")
    assert (row["loppu"], row["tila"], row["syy"]) == (
        "2026-01-10",
        "ei_laheteta",
        "vastausaika_umpeutunut",
    )
    assert not [
        c for c in outcome.codes(sc.W4) if c["data"]["tyopaikkajakson_loppupvm"] == "2026-01-10"
    ]


# --- the flow through niputus, Arvo and the sender ------------------------------------------


async def test_two_students_of_one_instructor_in_one_half_month_one_bundle_one_email(
    outcome: Outcome,
) -> None:
    (bundle,) = outcome.bundles(sc.SAME_HALF_MONTH)
    assert len(bundle["tunnukset"]) == 2
    assert bundle["niputuspvm"] == "2026-03-16"
    address = outcome.scenario.student(sc.SAME_HALF_MONTH, 1).jaksot[0].ohjaaja.sahkoposti
    (mail,) = outcome.mails_to(address)
    assert bundle["nippulinkki"] + "?t=e" in mail["text"]


async def test_the_same_instructor_in_two_half_months_two_bundles(outcome: Outcome) -> None:
    bundles = outcome.bundles(sc.TWO_HALF_MONTHS)
    assert sorted(b["niputuspvm"] for b in bundles) == ["2026-03-16", "2026-04-01"]
    address = outcome.scenario.student(sc.TWO_HALF_MONTHS, 1).jaksot[0].ohjaaja.sahkoposti
    assert len(outcome.mails_to(address)) == 2


async def test_two_workplaces_of_one_tutkinnon_osa_two_instructors_two_surveys(
    outcome: Outcome,
) -> None:
    bundles = outcome.bundles(sc.TWO_WORKPLACES)
    assert sorted(b["data"]["tyonantaja"] for b in bundles) == ["1234567-1", "2345678-0"]
    for jakso in outcome.scenario.student(sc.TWO_WORKPLACES, 1).jaksot:
        assert len(outcome.mails_to(jakso.ohjaaja.sahkoposti)) == 1


async def test_an_interruption_recorded_either_way_gives_one_survey(outcome: Outcome) -> None:
    two_jaksot = outcome.bundle_of(sc.J4_BOTH_WAYS, "1572860-0")
    assert len(two_jaksot["tunnukset"]) == 2, "each jakso keeps its own code (J4)"
    assert two_jaksot["niputuspvm"] == "2026-04-16"
    one_jakso = outcome.bundle_of(sc.J4_BOTH_WAYS, "2345678-0")
    assert len(one_jakso["tunnukset"]) == 1
    for student in (outcome.scenario.student(sc.J4_BOTH_WAYS, n) for n in (1, 2)):
        assert len(outcome.mails_to(student.jaksot[0].ohjaaja.sahkoposti)) == 1


async def test_a_terminated_contract_surveys_the_ended_jakso_only(outcome: Outcome) -> None:
    student = outcome.scenario.student(sc.TERMINATED, 1)
    assert outcome.jakso(student, "e2e-6-2")["syy"] == "sopimus_purettu"
    (code,) = outcome.codes(sc.TERMINATED)
    assert code["data"]["tyopaikkajakson_loppupvm"] == "2026-03-06"
    assert len(outcome.mails_to(student.jaksot[0].ohjaaja.sahkoposti)) == 1


@pytest.mark.parametrize(
    ("number", "loppu", "niputuspvm", "sent_on"),
    [
        (1, "2026-04-06", "2026-04-16", "2026-04-16"),  # moved later before it passed
        (2, "2026-04-08", "2026-04-16", "2026-04-16"),  # moved earlier, still ahead
        (3, "2026-04-03", "2026-04-16", "2026-05-01"),  # moved into the past, time left
    ],
    ids=["W4-later", "W4-earlier-ahead", "W4-earlier-past-with-time"],
)
async def test_an_end_date_moved_is_surveyed_by_its_new_date(
    outcome: Outcome, number: int, loppu: str, niputuspvm: str, sent_on: str
) -> None:
    student = outcome.scenario.student(sc.W4, number)
    (code,) = [
        c
        for c in outcome.codes(sc.W4)
        if c["data"]["tyopaikkajakson_alkupvm"] == "2025-12-01"
        and c["data"]["tyopaikkajakson_loppupvm"] == loppu
    ]
    bundle = next(b for b in outcome.bundles(sc.W4) if code["tunnus"] in b["tunnukset"])
    assert (bundle["niputuspvm"], bundle["voimassa_alkupvm"]) == (niputuspvm, sent_on)
    assert len(outcome.mails_to(student.jaksot[0].ohjaaja.sahkoposti)) == 1


async def test_an_instructor_with_only_a_phone_number_gets_an_sms_only(outcome: Outcome) -> None:
    (bundle,) = outcome.bundles(sc.PHONE_ONLY)
    (sms,) = outcome.sms_to("+358407654321")
    assert bundle["nippulinkki"] + "?t=s" in sms["text"]
    assert not any("case8" in address for m in outcome.mails for address in m["to"])


async def test_one_reminder_and_none_when_answered(outcome: Outcome) -> None:
    answered = outcome.scenario.student(sc.REMINDERS, 1).jaksot[0].ohjaaja.sahkoposti
    silent = outcome.scenario.student(sc.REMINDERS, 2).jaksot[0].ohjaaja.sahkoposti
    assert len(outcome.mails_to(answered)) == 1
    assert outcome.mails_to(answered, reminders=True) == []
    assert len(outcome.mails_to(silent)) == 1
    assert len(outcome.mails_to(silent, reminders=True)) == 1, "one reminder, never a second"


async def test_a_resend_goes_to_the_corrected_address_with_the_same_link(
    outcome: Outcome,
) -> None:
    assert outcome.resend_answers == [202]
    old = outcome.scenario.student(sc.RESEND, 1).jaksot[0].ohjaaja.sahkoposti
    (first,) = outcome.mails_to(old)
    (again,) = outcome.mails_to("pirjo.uusi@example.fi")
    (bundle,) = outcome.bundles(sc.RESEND)
    assert bundle["nippulinkki"] in first["text"] and bundle["nippulinkki"] in again["text"]


async def test_tpk_on_1_7_by_normalised_workplace_without_the_entrepreneur(
    outcome: Outcome,
) -> None:
    links = outcome.tpk(sc.TPK)
    assert sorted(t["data"]["tyopaikka_normalisoitu"] for t in links) == [
        "paivakoti_perhonen",
        "perhosen_paivakoti",
    ]
    assert all(t["data"]["tyonantaja"] == "1572860-0" for t in links), "no entrepreneur (T2)"
    assert {t["data"]["tiedonkeruu_alkupvm"] for t in links} == {"2026-01-01"}


async def test_reports_after_the_personal_data_cleanup(system: System, outcome: Outcome) -> None:
    async with httpx.AsyncClient(timeout=30, transport=RetryingTransport()) as client:
        answer = await client.get(
            f"{system.endpoints.bundler}/api/v1/reports/jaksot",
            params={
                "koulutustoimija": sc.provider_oid(sc.SAME_HALF_MONTH),
                "alku": "2026-03-01",
                "loppu": "2026-06-30",
            },
            headers={**ADMIN, "Accept": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert len(rows) == 2
    (bundle,) = outcome.bundles(sc.SAME_HALF_MONTH)
    assert all(bundle["nippulinkki"] in str(row) for row in rows)
    assert "Anna Aalto" not in answer.text and "case1@example.fi" not in answer.text


# --- the demo's driver, against the same processes ----------------------------------------


async def test_the_demo_walks_its_data_set_and_shows_every_jakso(system: System) -> None:
    dataset = generate(seed=11, start=dt.date(2024, 1, 1), students=12, providers=2)
    dataset = Dataset(
        dataset.seed, dataset.start, 16, dataset.providers, dataset.students, dataset.upserts
    )
    async with httpx.AsyncClient(timeout=30, transport=RetryingTransport()) as client:
        driver = Driver(dataset, system.endpoints, client=client, settle_seconds=0.5)
        snapshots = await asyncio.wait_for(driver.run(), timeout=180)
    assert [s.day for s in snapshots] == [dt.date(2024, 1, 1), dt.date(2024, 1, 16), dataset.end]
    first_versions = [u for u in dataset.upserts if u.kind == "hoks" and u.day == dataset.start]
    assert len(first_versions) == len(dataset.students)
    final = snapshots[-1]
    jaksot = {u.key: len(parse_hoks(int(u.key), u.document).jaksot) for u in first_versions}
    deleted = {u.key for u in dataset.upserts if u.kind == "hoks_delete"}
    kept = sum(n for key, n in jaksot.items() if key not in deleted)
    assert kept <= final.received <= sum(jaksot.values()), "every jakso is shown"
    assert (
        final.waiting
        + sum(n for reason, n in final.reasons.items() if reason.startswith("ei_laheteta"))
        + final.bundled
        >= final.received - final.eligible
    )
    assert not driver.upsert_failures, "every generated document is accepted"
