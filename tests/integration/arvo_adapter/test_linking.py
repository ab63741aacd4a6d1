"""The adapter end to end against the fake Arvo over real HTTP, fed through RabbitMQ:
each event type, each outcome of arvo-api.md, and what it publishes back."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import aio_pika
import pytest
from sqlalchemy import func, select

from services.arvo_adapter.store.tables import changes
from shared.events import (
    ArvoStatusUpdate,
    JaksoCancelled,
    JaksoKestoChanged,
    TpkNippuReady,
)
from shared.messaging.topology import ARVO_ADAPTER_EVENTS
from tests.integration.arvo_adapter.conftest import (
    FakeArvo,
    nippu_ready,
    publish,
    stored_niput,
    use_cases,
    wait_done,
)
from tests.support.events import EventCapture
from tests.support.polling import eventually
from tests.support.services import READER_TOKEN, Running


def linked_events(events: EventCapture, nippu_id: uuid.UUID) -> list[dict[str, Any]]:
    return events.matching(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu_id)
    )


async def test_a_bundle_gets_a_code_per_jakso_then_one_link(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    nippu = nippu_ready(jaksot=3)
    await publish(channel, nippu)

    (event,) = await events.wait_for(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu.nippu_id)
    )
    payload = event["payload"]
    assert payload["outcome"] == "linked"
    assert payload["linkki"].endswith(f"/v/{nippu.tunniste}")
    tunnukset = {j["jakso_id"]: j["tunnus"] for j in payload["jaksot"]}
    assert set(tunnukset) == {j.jakso_id for j in nippu.jaksot}
    bundle = fake_arvo.state.bundles[nippu.tunniste]
    assert sorted(bundle.tunnukset) == sorted(tunnukset.values())
    assert payload["voimassa_loppupvm"] == bundle.voimassa_loppupvm
    for jakso in nippu.jaksot:
        code = fake_arvo.state.codes[tunnukset[jakso.jakso_id]]
        # Every background field, kesto included, and the bundle's answer window.
        assert code.data["kesto"] == jakso.kesto
        assert code.data["tyopaikkajakson_loppupvm"] == jakso.tyopaikkajakson_loppupvm.isoformat()
        assert code.data["vastaamisajan_alkupvm"] == nippu.voimassa_alkupvm.isoformat()
        assert code.data["vastaamisajan_loppupvm"] == nippu.voimassa_loppupvm.isoformat()
        assert code.data["metatiedot"] == {"ei_kuulu_lahetettavien_perusjoukkoon": False}
    rows = await wait_done(adapter, [nippu.nippu_id])
    assert rows[nippu.nippu_id].linkki == payload["linkki"]


async def test_the_same_bundle_twice_is_linked_once(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    nippu = nippu_ready(jaksot=2)
    await publish(channel, nippu, nippu)
    await wait_done(adapter, [nippu.nippu_id])
    await events.wait_for(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu.nippu_id)
    )
    counts = fake_arvo.state.counts()
    assert counts["bundles_live"] == 1
    assert counts["codes_live"] == 2
    assert len(linked_events(events, nippu.nippu_id)) == 1


async def test_no_survey_is_arvo_ei_kyselya_and_not_retried(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    koulutustoimija = "1.2.246.562.10.10000000404"
    await fake_arvo.post("no-survey", {"koulutustoimija_oid": koulutustoimija})
    nippu = nippu_ready(jaksot=2, koulutustoimija=koulutustoimija)
    await publish(channel, nippu)

    (event,) = await events.wait_for(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu.nippu_id)
    )
    assert event["payload"]["outcome"] == "arvo_ei_kyselya"
    assert event["payload"]["linkki"] is None
    assert [j["tunnus"] for j in event["payload"]["jaksot"]] == [None, None]
    posts = [r for r in await fake_arvo.requests() if r["path"].endswith("/vastaajatunnus")]
    assert len(posts) == 2  # one per jakso, never again
    assert fake_arvo.state.counts()["bundles_live"] == 0


async def test_a_passed_window_makes_codes_not_sent_and_no_link(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    alku = dt.date.today() - dt.timedelta(days=40)
    nippu = nippu_ready(jaksot=2, voimassa_alkupvm=alku, voimassa_loppupvm=alku + dt.timedelta(29))
    await publish(channel, nippu)

    (event,) = await events.wait_for(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu.nippu_id)
    )
    assert event["payload"]["outcome"] == "vastausaika_umpeutunut"
    assert event["payload"]["linkki"] is None
    for jakso in event["payload"]["jaksot"]:
        code = fake_arvo.state.codes[jakso["tunnus"]]
        assert code.data["metatiedot"] == {"ei_kuulu_lahetettavien_perusjoukkoon": True}
    counts = fake_arvo.state.counts()
    assert counts["bundles_live"] == 0
    assert counts["unbundled_codes"] == counts["unbundled_codes_not_sent"] == 2


async def test_tpk_bundle_gets_its_link(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    tpk = TpkNippuReady(
        tpk_nippu_id=uuid.uuid4(),
        koulutustoimija_oid="1.2.246.562.10.10000000001",
        tyonantaja="1234567-8",
        tyopaikka="Perhosen Päiväkoti",
        tyopaikka_normalisoitu="perhosen_paivakoti",
        tiedonkeruu_alkupvm=dt.date(2025, 1, 1),
        tiedonkeruu_loppupvm=dt.date(2025, 6, 30),
        vastaamisajan_alkupvm=dt.date(2025, 7, 1),
        vastaamisajan_loppupvm=dt.date(2025, 8, 31),
    )
    await publish(channel, tpk)
    (event,) = await events.wait_for(
        lambda e: (
            e["type"] == "tpk_nippu.linked"
            and e["payload"]["tpk_nippu_id"] == str(tpk.tpk_nippu_id)
        )
    )
    link = fake_arvo.state.tpk[event["payload"]["tunnus"]]
    assert event["payload"]["kysely_linkki"] == link.kysely_linkki
    assert event["payload"]["voimassa_loppupvm"] == "2025-08-31"
    assert link.data["tyopaikka_normalisoitu"] == "perhosen_paivakoti"


async def test_status_kesto_and_cancellation_reach_arvo_in_order(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    nippu = nippu_ready(jaksot=2)
    first, second = nippu.jaksot
    loppu = nippu.voimassa_alkupvm + dt.timedelta(days=20)
    await publish(
        channel,
        nippu,
        # Published together: the changes wait for the bundle's codes and link.
        JaksoKestoChanged(jakso_id=first.jakso_id, nippu_id=nippu.nippu_id, kesto=7),
        ArvoStatusUpdate(
            nippu_id=nippu.nippu_id,
            tunniste=nippu.tunniste,
            tila="lahetetty",
            voimassa_loppupvm=loppu,
        ),
        ArvoStatusUpdate(nippu_id=nippu.nippu_id, tunniste=nippu.tunniste, tila="vastattu"),
        JaksoCancelled(jakso_id=second.jakso_id, nippu_id=nippu.nippu_id),
    )
    (event,) = await events.wait_for(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu.nippu_id)
    )
    tunnukset = {j["jakso_id"]: j["tunnus"] for j in event["payload"]["jaksot"]}

    def settled() -> bool:
        bundle = fake_arvo.state.bundles.get(nippu.tunniste)
        return bool(
            bundle
            and len(bundle.patches) == 2
            and fake_arvo.state.codes[tunnukset[second.jakso_id]].deleted
            and fake_arvo.state.codes[tunnukset[first.jakso_id]].patches
        )

    async def probe() -> bool:
        return settled()

    await eventually(probe, bool, what="changes applied in Arvo")
    bundle = fake_arvo.state.bundles[nippu.tunniste]
    # In the order decided; when the consumer's batches committed the other way round,
    # the validity follows with the later status already in Arvo.
    assert [p["tila"] for p in bundle.patches] in (
        ["lahetetty", "vastattu"],
        ["vastattu", "vastattu"],
    )
    assert bundle.tila == "vastattu"
    assert bundle.voimassa_loppupvm == loppu.isoformat()
    assert fake_arvo.state.codes[tunnukset[first.jakso_id]].patches == [{"kesto": 7}]


async def test_a_status_arriving_after_a_later_decided_one_does_not_overwrite_it(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    """`lahetetty` failed its first delivery and came back through the retry queue after
    `vastattu`: Arvo must keep `vastattu`, and still learn the validity `lahetetty` set."""
    nippu = nippu_ready(jaksot=1)
    await publish(channel, nippu)
    await events.wait_for(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu.nippu_id)
    )
    decided = dt.datetime.now(dt.UTC)
    await publish(
        channel,
        ArvoStatusUpdate(nippu_id=nippu.nippu_id, tunniste=nippu.tunniste, tila="vastattu"),
        occurred_at=decided,
    )

    async def patched() -> int:
        return len(fake_arvo.state.bundles[nippu.tunniste].patches)

    await eventually(patched, lambda n: n == 1, what="vastattu in Arvo")
    loppu = nippu.voimassa_alkupvm + dt.timedelta(days=20)
    await publish(
        channel,
        ArvoStatusUpdate(
            nippu_id=nippu.nippu_id,
            tunniste=nippu.tunniste,
            tila="lahetetty",
            voimassa_loppupvm=loppu,
        ),
        occurred_at=decided - dt.timedelta(minutes=1),
    )

    async def done() -> int:
        async with adapter.service.db.transaction() as session:
            found = await session.execute(
                select(func.count()).where(
                    changes.c.nippu_id == nippu.nippu_id, changes.c.state == "done"
                )
            )
            return int(found.scalar_one())

    await eventually(done, lambda n: n == 2, what="both status updates done")
    bundle = fake_arvo.state.bundles[nippu.tunniste]
    assert [p["tila"] for p in bundle.patches] == ["vastattu", "vastattu"]
    assert bundle.tila == "vastattu"
    assert bundle.voimassa_loppupvm == loppu.isoformat()


async def test_arvo_refusing_the_data_dead_letters_the_message_with_its_answer(
    adapter: Running, fake_arvo: FakeArvo, channel: aio_pika.abc.AbstractChannel
) -> None:
    # Our model accepts any y-tunnus; Arvo's 400 names the field.
    nippu = nippu_ready(jaksot=1, tyonantaja="12345678")
    dlq = await channel.declare_queue(ARVO_ADAPTER_EVENTS.dlq, durable=True, passive=True)
    await publish(channel, nippu)
    rows = await wait_done(adapter, [nippu.nippu_id])
    assert rows[nippu.nippu_id].state == "rejected"
    assert rows[nippu.nippu_id].arvo_errors["status"] == 400

    async def dead_lettered() -> aio_pika.abc.AbstractIncomingMessage | None:
        message = await dlq.get(fail=False, no_ack=False)
        if message is None:
            return None
        body = json.loads(message.body)
        if body["payload"]["nippu_id"] != str(nippu.nippu_id):
            await message.nack(requeue=True)
            return None
        await message.ack()
        return message

    message = await eventually(dead_lettered, lambda m: m is not None, what="message in the DLQ")
    assert message is not None
    headers = message.headers or {}
    assert headers["x-arvo-status"] == 400
    assert "tyonantaja" in str(headers["x-arvo-errors"])
    posts = [r for r in await fake_arvo.requests() if r["path"].endswith("/vastaajatunnus")]
    assert len(posts) == 1  # not retried


async def test_link_status_reads_through_and_reports_an_answer_once(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    nippu = nippu_ready(jaksot=1)
    await publish(channel, nippu)
    await wait_done(adapter, [nippu.nippu_id])
    url = f"/api/v1/links/{nippu.tunniste}/status"

    before = await adapter.client.get(url)
    assert before.status_code == 200, before.text
    assert before.json()["vastattu"] is False
    await fake_arvo.post(f"answer/{nippu.tunniste}")
    for _ in range(2):
        answered = await adapter.client.get(url)
        assert answered.json()["vastattu"] is True
    (event,) = await events.wait_for(
        lambda e: e["type"] == "survey.status" and e["payload"]["tunniste"] == nippu.tunniste
    )
    assert event["payload"]["vastattu"] is True
    assert (
        len(
            events.matching(
                lambda e: (
                    e["type"] == "survey.status" and e["payload"]["tunniste"] == nippu.tunniste
                )
            )
        )
        == 1
    )

    missing = await adapter.client.get("/api/v1/links/no_such_bundle/status")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    unauthenticated = await adapter.client.get(url, headers={"authorization": ""})
    assert unauthenticated.status_code == 401


@pytest.mark.parametrize("fault", ["maintenance", "latency"])
async def test_link_status_is_503_when_arvo_does_not_answer(
    adapter: Running, fake_arvo: FakeArvo, fault: str
) -> None:
    if fault == "maintenance":
        await fake_arvo.post("maintenance", {"on": True})
    else:
        await fake_arvo.post("latency", {"seconds": 3})
    started = dt.datetime.now()
    response = await adapter.client.get("/api/v1/links/some_bundle/status")
    elapsed = (dt.datetime.now() - started).total_seconds()
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "unavailable"
    assert "Arvo did not answer" in body["message"]
    assert elapsed < 2.5  # ARVO_STATUS_TIMEOUT_SECONDS is 1 s here
    await fake_arvo.post("maintenance", {"on": False})
    await fake_arvo.post("latency", {"seconds": 0})
    use_cases(adapter).arvo.breaker.record_success()


async def test_a_link_whose_answer_was_lost_is_deleted_and_made_again(
    adapter: Running,
    fake_arvo: FakeArvo,
    channel: aio_pika.abc.AbstractChannel,
    events: EventCapture,
) -> None:
    """Deterministic: the codes are made, the link request is refused (outside agreed
    hours), then made by Arvo with its answer lost (504); the next attempt deletes that
    link (nobody saw it) and makes the bundle's one link."""
    await fake_arvo.post("hours", {"start": "06:00", "end": "22:00", "now": "05:59"})
    nippu = nippu_ready(jaksot=2)
    await publish(channel, nippu)

    async def link_requests() -> list[dict[str, Any]]:
        return [r for r in await fake_arvo.requests() if r["path"].endswith("/nippu")]

    async def row() -> Any:
        return (await stored_niput(adapter, [nippu.nippu_id])).get(nippu.nippu_id)

    refused = await eventually(
        row, lambda r: r is not None and r.last_error is not None, what="link refused"
    )
    assert len(await link_requests()) == 1
    assert refused.state == "pending" and "ArvoUnavailable" in refused.last_error
    # Retry-After (60 s until 06:00) is honoured, not the quick backoff of these tests.
    assert (refused.next_attempt_at - refused.updated_at).total_seconds() >= 55

    await fake_arvo.post("hours", {"start": None})
    await fake_arvo.post("faults", {"lose": 1.0, "lose_as": "504"})
    await use_cases(adapter).retry_now(nippu.nippu_id)
    await eventually(link_requests, lambda found: len(found) == 2, what="link made, answer lost")
    await fake_arvo.post("faults", {})
    (event,) = await events.wait_for(
        lambda e: e["type"] == "nippu.linked" and e["payload"]["nippu_id"] == str(nippu.nippu_id)
    )
    assert [b.tunniste for b in fake_arvo.state.deleted_bundles] == [nippu.tunniste]
    live = fake_arvo.state.bundles[nippu.tunniste]
    assert event["payload"]["linkki"] == live.nippulinkki
    assert sorted(live.tunnukset) == sorted(j["tunnus"] for j in event["payload"]["jaksot"])
    counts = fake_arvo.state.counts()
    assert counts["bundles_live"] == 1 and counts["codes_live"] == 2


async def test_the_senders_status_client_reads_the_adapters_answer(
    adapter: Running, fake_arvo: FakeArvo, channel: aio_pika.abc.AbstractChannel
) -> None:
    """Contract between the two services: the sender's client (S3) against the real route."""
    from pydantic import SecretStr

    from services.sender.delivery.survey_status import SurveyStatusClient

    nippu = nippu_ready(jaksot=1)
    await publish(channel, nippu)
    await wait_done(adapter, [nippu.nippu_id])
    await fake_arvo.post(f"answer/{nippu.tunniste}")
    client = SurveyStatusClient(base_url=adapter.base_url, token=SecretStr(READER_TOKEN))
    try:
        status = await client.status(nippu.tunniste)
    finally:
        await client.aclose()
    assert status.vastattu is True
    bundle = fake_arvo.state.bundles[nippu.tunniste]
    assert status.voimassa_loppupvm == dt.date.fromisoformat(bundle.voimassa_loppupvm)


async def test_bundles_arvo_could_never_accept_are_set_aside_by_the_consumer(
    adapter: Running, fake_arvo: FakeArvo, channel: aio_pika.abc.AbstractChannel
) -> None:
    dlq = await channel.declare_queue(ARVO_ADAPTER_EVENTS.dlq, durable=True, passive=True)
    first = nippu_ready(jaksot=1)
    no_oppilaitos = nippu_ready(jaksot=1, oppilaitos_oid=None)
    same_tunniste = nippu_ready(jaksot=1).model_copy(update={"tunniste": first.tunniste})
    await publish(channel, first)
    await wait_done(adapter, [first.nippu_id])
    await publish(channel, no_oppilaitos, same_tunniste)

    errors: dict[str, str] = {}
    wanted = {str(no_oppilaitos.nippu_id), str(same_tunniste.nippu_id)}

    async def collect() -> int:
        message = await dlq.get(fail=False, no_ack=False)
        if message is not None:
            nippu_id = json.loads(message.body)["payload"]["nippu_id"]
            if nippu_id in wanted:
                errors[nippu_id] = str((message.headers or {}).get("x-error"))
                await message.ack()
            else:
                await message.nack(requeue=True)
        return len(errors)

    await eventually(collect, lambda n: n == 2, what="both messages dead-lettered")
    assert "oppilaitos_oid" in errors[str(no_oppilaitos.nippu_id)]
    assert "tunniste already used" in errors[str(same_tunniste.nippu_id)]
    recorded = await stored_niput(adapter, [no_oppilaitos.nippu_id, same_tunniste.nippu_id])
    assert recorded == {}
    assert fake_arvo.state.counts()["codes_live"] == 1  # only the first bundle's
