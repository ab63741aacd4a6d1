"""After Arvo and the sender (issue 12): a formed bundle's link, channels (C3, C4), the
sender's reports and Arvo's answers (S1–S3), resends (S4), K4 and cancellations (E14),
through the `bundler.events` queue with the outbox's events captured on the exchange."""

from __future__ import annotations

import uuid
from fractions import Fraction
from typing import Any

import aio_pika.abc
import httpx
from aio_pika.abc import AbstractChannel

from services.bundler.domain.kesto import round_half_up
from shared.events import SurveyStatus, TpkNippuLinked
from tests.integration.bundler.conftest import (
    SCOPED_WRITER_TOKEN,
    WRITER_TOKEN,
    Student,
    apply,
    d,
    history,
    jakso,
    jakso_id,
    publish,
    states,
    wait_seen,
)
from tests.integration.bundler.flow_support import (
    LINK,
    form_nippu,
    form_tpk_nippu,
    linked,
    no_more,
    of_nippu,
    send_status,
    tunniste_of,
)
from tests.support.events import EventCapture
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, READER_TOKEN, Running

OTHER = "1.2.246.562.10.99999999999"


async def bundled(
    bundler: Running,
    channel: AbstractChannel,
    *jaksot: Any,
    kesto: int | None = None,
    **opiskeluoikeus: Any,
) -> tuple[Student, list[int], uuid.UUID, str]:
    """A student whose jaksot are eligible (E15) and formed into one bundle."""
    student = Student()
    await apply(bundler, channel, student.opiskeluoikeus(**opiskeluoikeus), student.hoks(*jaksot))
    ids = [await jakso_id(bundler, student.hoks_id, j.yksiloiva_tunniste) for j in jaksot]
    nippu_id = await form_nippu(bundler, ids, kesto=kesto)
    return student, ids, nippu_id, await tunniste_of(bundler, nippu_id)


async def nippu(bundler: Running, nippu_id: uuid.UUID) -> dict[str, Any]:
    response = await bundler.client.get(f"/api/v1/niput/{nippu_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def resend(
    bundler: Running, nippu_id: uuid.UUID, body: dict[str, Any] | None = None, token: str = ""
) -> httpx.Response:
    return await bundler.client.post(
        f"/api/v1/niput/{nippu_id}/resend",
        json=body,
        headers={"authorization": f"Bearer {token or WRITER_TOKEN}"},
    )


# --- nippu.linked: channels (C3, C4) --------------------------------------------------


async def test_a_linked_bundle_is_sent_by_email_and_sms(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """C4: both channels usable → one send.requested with both; the link and each
    jakso's code stored; the address and number as C1/C2 normalise them."""
    _, ids, nippu_id, tunniste = await bundled(
        bundler,
        channel,
        jakso(
            "a",
            ohjaaja={
                "nimi": "Olli",
                "sahkoposti": " Olli@Perhonen.fi ",
                "puhelinnumero": "040 123 4567",
            },
        ),
        jakso("b", ohjaaja={"nimi": "Olli", "sahkoposti": "olli@perhonen.fi"}),
        oppilaitos_nimi="Keuda",
    )
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))

    (sent,) = await events.wait_for(of_nippu("send.requested", nippu_id))
    payload = sent["payload"]
    assert payload["kind"] == "initial" and payload["resend_number"] == 0
    assert (payload["sahkoposti"], payload["puhelinnumero"]) == (
        "olli@perhonen.fi",
        "+358401234567",
    )
    assert payload["linkki"] == f"{LINK}{tunniste}"
    assert (payload["niputuspvm"], payload["voimassa_loppupvm"]) == ("2025-03-16", "2025-04-14")
    assert payload["oppilaitokset"] == ["Keuda"], "S5 names the oppilaitos"
    shown = await nippu(bundler, nippu_id)
    assert (shown["tila"], shown["linkki"], shown["jaksot"]) == (
        "odottaa_lahetysta",
        f"{LINK}{tunniste}",
        ids,
    )


async def test_disagreeing_addresses_leave_only_the_agreed_channel(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """C3: e-mail addresses disagree (`email-mismatch`) → SMS only."""
    _, ids, nippu_id, tunniste = await bundled(
        bundler,
        channel,
        jakso(
            "a",
            ohjaaja={
                "nimi": "Olli",
                "sahkoposti": "olli@perhonen.fi",
                "puhelinnumero": "0401234567",
            },
        ),
        jakso(
            "b",
            ohjaaja={
                "nimi": "Olli",
                "sahkoposti": "olli.o@perhonen.fi",
                "puhelinnumero": "+358 40 1234567",
            },
        ),
    )
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))
    (sent,) = await events.wait_for(of_nippu("send.requested", nippu_id))
    assert (sent["payload"]["sahkoposti"], sent["payload"]["puhelinnumero"]) == (
        None,
        "+358401234567",
    )


async def test_without_usable_contacts_the_bundle_tells_arvo_and_is_not_sent(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """C3: no valid e-mail and no Finnish mobile → `ei_kelvollisia_yhteystietoja`,
    reported to Arvo (S2); the jaksot `ei_laheteta` / `yhteystieto_puuttuu`."""
    student, ids, nippu_id, tunniste = await bundled(
        bundler,
        channel,
        jakso(
            "a",
            ohjaaja={"nimi": "Olli", "sahkoposti": "not-an-address", "puhelinnumero": "09 1234567"},
        ),
    )
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))

    (update,) = await events.wait_for(of_nippu("arvo.status_update", nippu_id))
    assert update["payload"] == {
        "nippu_id": str(nippu_id),
        "tunniste": tunniste,
        "tila": "ei_kelvollisia_yhteystietoja",
        "voimassa_loppupvm": "2025-04-14",
    }
    assert await states(bundler, student.hoks_id) == {
        "a": ("ei_laheteta", "yhteystieto_puuttuu", "2025-03-16")
    }
    assert (await nippu(bundler, nippu_id))["tila"] == "ei_kelvollisia_yhteystietoja"
    await no_more(events, "send.requested", nippu_id, 0)
    (*_, last) = await history(bundler, ids[0])
    assert (last["rule"], last["cause"], last["to_syy"]) == (
        "C3",
        "nippu.linked",
        "yhteystieto_puuttuu",
    )


async def test_arvo_without_a_survey_and_a_passed_window_end_the_jaksot(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """Arvo 404 → `ei_laheteta` / `arvo_ei_kyselya`; the window passed before Arvo was
    reached → `vastausaika_loppunut` / `vastausaika_umpeutunut`. Nothing is sent."""
    s1, ids1, n1, t1 = await bundled(bundler, channel, jakso("a"))
    s2, ids2, n2, t2 = await bundled(bundler, channel, jakso("a"))
    await apply(
        bundler,
        channel,
        linked(n1, t1, ids1, outcome="arvo_ei_kyselya"),
        linked(n2, t2, ids2, outcome="vastausaika_umpeutunut"),
    )
    assert await states(bundler, s1.hoks_id) == {
        "a": ("ei_laheteta", "arvo_ei_kyselya", "2025-03-16")
    }
    assert await states(bundler, s2.hoks_id) == {
        "a": ("vastausaika_loppunut", "vastausaika_umpeutunut", "2025-03-16")
    }
    assert (await nippu(bundler, n1))["tila"] == "arvo_ei_kyselya"
    assert (await nippu(bundler, n2))["tila"] == "vastausaika_loppunut_ennen_lahetysta"
    await no_more(events, "send.requested", n1, 0)
    await no_more(events, "send.requested", n2, 0)


async def test_a_second_link_of_the_same_bundle_changes_nothing(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """A `nippu.linked` published again (a new message id) sends nothing twice."""
    _, ids, nippu_id, tunniste = await bundled(bundler, channel, jakso("a"))
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))
    await events.wait_for(of_nippu("send.requested", nippu_id))
    # A later event of the same bundle proves the relay is past the second link.
    await apply(bundler, channel, send_status(nippu_id, "sent"))
    await events.wait_for(of_nippu("arvo.status_update", nippu_id))
    await no_more(events, "send.requested", nippu_id, 1)


# --- send.status, survey.status (S1–S3) --------------------------------------------------


async def test_the_first_send_sets_the_validity_and_tells_arvo(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """S2 + W2: sent on 2025-03-20 → valid until min(03-20 + 29, 03-16 + 59) = 04-18;
    the jaksot `lahetetty`; a late `accepted` of the same message changes nothing."""
    student, ids, nippu_id, tunniste = await bundled(bundler, channel, jakso("a"))
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))
    await apply(bundler, channel, send_status(nippu_id, "sent"))

    (update,) = await events.wait_for(of_nippu("arvo.status_update", nippu_id))
    assert (update["payload"]["tila"], update["payload"]["voimassa_loppupvm"]) == (
        "lahetetty",
        "2025-04-18",
    )
    assert (await states(bundler, student.hoks_id))["a"][:2] == ("lahetetty", "odottaa_niputusta")
    await apply(
        bundler,
        channel,
        send_status(nippu_id, "accepted", at="2025-03-20T09:59:00+02:00"),
        send_status(nippu_id, "sent", kanava="sms"),
    )
    shown = await nippu(bundler, nippu_id)
    assert (shown["tila"], shown["voimassa_loppupvm"], shown["lahetyspvm"]) == (
        "lahetetty",
        "2025-04-18",
        "2025-03-20",
    )
    assert [(s["kanava"], s["tila"]) for s in shown["lahetykset"]] == [
        ("email", "accepted"),
        ("email", "sent"),
        ("sms", "sent"),
    ]
    await no_more(events, "arvo.status_update", nippu_id, 1)


async def test_failure_on_every_channel_is_reported_and_a_bounce_named(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """S2: a failure on one of two channels says nothing yet; both failed, one of them a
    bounce → `bounced`; the jaksot stay `niputettu` (a resend may still go out)."""
    student, ids, nippu_id, tunniste = await bundled(bundler, channel, jakso("a"))
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))
    await apply(bundler, channel, send_status(nippu_id, "failed", kanava="sms"))
    assert (await nippu(bundler, nippu_id))["tila"] == "odottaa_lahetysta"
    await apply(bundler, channel, send_status(nippu_id, "bounced"))
    (update,) = await events.wait_for(of_nippu("arvo.status_update", nippu_id))
    assert update["payload"]["tila"] == "bounced"
    assert (await states(bundler, student.hoks_id))["a"][0] == "niputettu"


async def test_an_answer_beats_every_later_report(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """S3: `survey.status` answered → `vastattu` (bundle and jaksot); the reminder run's
    `vastausaika_loppunut_ennen_muistutusta` arriving after it changes nothing."""
    student, ids, nippu_id, tunniste = await bundled(bundler, channel, jakso("a"))
    await apply(
        bundler,
        channel,
        linked(nippu_id, tunniste, ids),
        send_status(nippu_id, "sent"),
        SurveyStatus(tunniste=tunniste, vastattu=True, voimassa_loppupvm=d("2025-04-18")),
        send_status(
            nippu_id, None, kind="reminder", nippu_tila="vastausaika_loppunut_ennen_muistutusta"
        ),
    )
    assert (await nippu(bundler, nippu_id))["tila"] == "vastattu"
    assert (await states(bundler, student.hoks_id))["a"][0] == "vastattu"


async def test_the_window_closing_before_the_reminder_ends_the_jaksot(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """S3: closed unanswered before the reminder → Arvo told, jaksot `vastausaika_loppunut`."""
    student, ids, nippu_id, tunniste = await bundled(bundler, channel, jakso("a"))
    await apply(
        bundler,
        channel,
        linked(nippu_id, tunniste, ids),
        send_status(nippu_id, "sent"),
        send_status(
            nippu_id, None, kind="reminder", nippu_tila="vastausaika_loppunut_ennen_muistutusta"
        ),
    )
    updates = await events.wait_for(of_nippu("arvo.status_update", nippu_id), count=2)
    assert [u["payload"]["tila"] for u in updates] == [
        "lahetetty",
        "vastausaika_loppunut_ennen_muistutusta",
    ]
    assert (await states(bundler, student.hoks_id))["a"][0] == "vastausaika_loppunut"


async def test_a_window_closed_before_any_message_went_out_ends_the_bundle(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """W2 passed with every message failed: the daily `tep-close-unsent` run ends the
    bundle `vastausaika_loppunut_ennen_lahetysta`, its jaksot `vastausaika_loppunut`, and
    tells Arvo; a bundle whose e-mail went out and then bounced was sent: untouched."""
    student, ids, unsent, tunniste = await bundled(bundler, channel, jakso("a"))
    _, other_ids, bounced, other = await bundled(bundler, channel, jakso("a"))
    await apply(
        bundler,
        channel,
        linked(unsent, tunniste, ids),
        send_status(unsent, "failed"),
        send_status(unsent, "failed", kanava="sms"),
        linked(bounced, other, other_ids),
        send_status(bounced, "sent"),
        send_status(bounced, "bounced", at="2025-03-21T10:00:00+02:00"),
        send_status(bounced, "failed", kanava="sms"),
    )
    assert (await nippu(bundler, unsent))["tila"] == "lahetys_epaonnistunut"
    assert (await nippu(bundler, bounced))["tila"] == "bounced"

    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"job": "tep-close-unsent", "date": "2025-04-15"}
    answer = await bundler.client.post("/api/v1/runs", json=body, headers=admin)
    assert answer.status_code == 202, answer.text

    async def run() -> dict[str, Any]:
        response = await bundler.client.get(
            f"/api/v1/runs/{answer.json()['run_id']}", headers=admin
        )
        result: dict[str, Any] = response.json()
        return result

    done = await eventually(run, lambda r: r["status"] in ("done", "failed"), what="run")
    assert done["status"] == "done", done
    assert (await nippu(bundler, unsent))["tila"] == "vastausaika_loppunut_ennen_lahetysta"
    assert (await states(bundler, student.hoks_id))["a"][:2] == (
        "vastausaika_loppunut",
        "vastausaika_umpeutunut",
    )
    updates = await events.wait_for(of_nippu("arvo.status_update", unsent), count=2)
    assert [u["payload"]["tila"] for u in updates] == [
        "lahetys_epaonnistunut",
        "vastausaika_loppunut_ennen_lahetysta",
    ]
    assert (await nippu(bundler, bounced))["tila"] == "bounced"


async def test_an_event_of_an_unknown_bundle_goes_to_the_dead_letter_queue(
    bundler: Running, channel: AbstractChannel
) -> None:
    """It can never apply: set aside at once (never retried, never silently dropped)."""
    unknown = uuid.uuid4()
    message_id = await publish(channel, send_status(unknown, "sent"))
    queue = await channel.get_queue("bundler.events.dlq")

    async def take() -> aio_pika.abc.AbstractIncomingMessage | None:
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            if message.message_id == str(message_id):
                return message
        return None

    message = await eventually(take, lambda m: m is not None, what="message in the DLQ")
    assert message is not None
    assert f"nippu {unknown} is not known" in str((message.headers or {})["x-error"])


# --- Resend (S4) -----------------------------------------------------------------------


async def test_resend_sends_the_same_link_and_validity_again(
    bundler: Running, channel: AbstractChannel, events: EventCapture, set_today: Any
) -> None:
    """S4: 202 and `send.requested` kind resend, same link and validity, numbered; a
    corrected address is validated (422 naming it) and used; 409 once the window closed."""
    _, ids, nippu_id, tunniste = await bundled(bundler, channel, jakso("a"))
    await apply(bundler, channel, linked(nippu_id, tunniste, ids), send_status(nippu_id, "sent"))

    response = await resend(bundler, nippu_id)
    assert response.status_code == 202, response.text
    assert response.json() == {"nippu_id": str(nippu_id), "resend_number": 1}
    response = await resend(bundler, nippu_id, {"sahkoposti": "Uusi@Perhonen.fi"})
    assert response.status_code == 202, response.text

    sent = await events.wait_for(
        lambda e: of_nippu("send.requested", nippu_id)(e) and e["payload"]["kind"] == "resend",
        count=2,
    )
    first, second = (s["payload"] for s in sent)
    assert (first["resend_number"], first["linkki"], first["voimassa_loppupvm"]) == (
        1,
        f"{LINK}{tunniste}",
        "2025-04-18",
    )
    assert (first["sahkoposti"], first["puhelinnumero"]) == ("olli@perhonen.fi", "+358401234567")
    assert (second["resend_number"], second["sahkoposti"], second["puhelinnumero"]) == (
        2,
        "uusi@perhonen.fi",
        None,
    )
    assert (await nippu(bundler, nippu_id))["resend_count"] == 2

    bad = await resend(bundler, nippu_id, {"puhelinnumero": "09 1234567"})
    assert bad.status_code == 422
    assert bad.json()["details"][0]["loc"] == ["body", "puhelinnumero"]
    bad = await resend(bundler, nippu_id, {"sahkoposti": "nobody"})
    assert (bad.status_code, bad.json()["details"][0]["loc"]) == (422, ["body", "sahkoposti"])

    set_today("2025-04-19")
    closed = await resend(bundler, nippu_id)
    assert closed.status_code == 409
    assert closed.json()["error"] == "conflict"
    assert (await nippu(bundler, nippu_id))["resend_count"] == 2


async def test_resend_to_a_corrected_address_sends_a_bundle_without_contacts(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """S4 + C3: a bundle `ei_kelvollisia_yhteystietoja` resent to a corrected address;
    once that message is sent, the bundle and its jaksot are `lahetetty`."""
    student, ids, nippu_id, tunniste = await bundled(
        bundler, channel, jakso("a", ohjaaja={"nimi": "Olli"})
    )
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))
    assert (await resend(bundler, nippu_id)).status_code == 409, "no address to resend to"
    response = await resend(bundler, nippu_id, {"puhelinnumero": "+358 50 1234567"})
    assert response.status_code == 202, response.text
    (sent,) = await events.wait_for(of_nippu("send.requested", nippu_id))
    assert sent["payload"]["puhelinnumero"] == "+358501234567"
    await apply(
        bundler, channel, send_status(nippu_id, "sent", kanava="sms", kind="resend", number=1)
    )
    assert (await nippu(bundler, nippu_id))["tila"] == "lahetetty"
    assert (await states(bundler, student.hoks_id))["a"][:2] == ("lahetetty", "yhteystieto_puuttuu")


async def test_resend_is_scoped_and_needs_the_write_scope(
    bundler: Running, channel: AbstractChannel
) -> None:
    """Another provider's bundle is 404 (not 403); a reader may not resend (403)."""
    student = Student()
    await apply(
        bundler, channel, student.opiskeluoikeus(koulutustoimija=OTHER), student.hoks(jakso("a"))
    )
    nippu_id = await form_nippu(
        bundler, [await jakso_id(bundler, student.hoks_id, "a")], koulutustoimija=OTHER
    )
    assert (await resend(bundler, nippu_id, token=SCOPED_WRITER_TOKEN)).status_code == 404
    assert (await resend(bundler, uuid.uuid4())).status_code == 404
    assert (await resend(bundler, nippu_id, token=READER_TOKEN)).status_code == 403
    assert (await resend(bundler, nippu_id)).status_code == 409, "no link yet"


# --- K4 and cancellations ------------------------------------------------------------------


async def test_a_changed_overlapping_jakso_recomputes_a_bundled_kesto(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """K4: `a` (13.1.–7.3., 54 days) was bundled while `b` (from 1.2.) shared 35 of its
    days: kesto 19 + 35/2 → 37. `b` moved to start after `a` ended → 54, sent to Arvo."""
    a = jakso("a", alku="2025-01-13", loppu="2025-03-07")
    b = jakso("b", alku="2025-02-01", loppu="2025-05-29")
    shared_kesto = round_half_up(19 + Fraction(35, 2))
    assert shared_kesto == 37
    student, ids, nippu_id, _ = await bundled(bundler, channel, a, kesto=shared_kesto)
    # `b` is still running (E1): it stays out of the bundle but shares a's days (K1).
    await apply(bundler, channel, student.hoks(a, b, version=2))
    await apply(
        bundler,
        channel,
        student.hoks(a, jakso("b", alku="2025-03-10", loppu="2025-05-29"), version=3),
    )
    (changed,) = await events.wait_for(of_nippu("jakso.kesto_changed", nippu_id))
    assert changed["payload"] == {"jakso_id": ids[0], "nippu_id": str(nippu_id), "kesto": 54}
    response = await bundler.client.get(f"/api/v1/hoks/{student.hoks_id}/jaksot")
    (row,) = [j for j in response.json() if j["yksiloiva_tunniste"] == "a"]
    assert row["kesto"] == 54


async def test_a_bundled_jakso_removed_before_sending_is_cancelled(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """E14 after bundling, before sending: `jakso.cancelled` (Arvo's code goes), the jakso
    `ei_laheteta` / `jakso_poistettu`; its bundle, linked later, goes without it."""
    a, b = jakso("a"), jakso("b")
    student, ids, nippu_id, tunniste = await bundled(bundler, channel, a, b)
    await apply(bundler, channel, student.hoks(a, version=2))
    (cancelled,) = await events.wait_for(of_nippu("jakso.cancelled", nippu_id))
    assert cancelled["payload"] == {"jakso_id": ids[1], "nippu_id": str(nippu_id)}
    shown = await states(bundler, student.hoks_id)
    assert shown["b"][:2] == ("ei_laheteta", "jakso_poistettu")
    assert shown["a"][0] == "niputettu"

    await apply(bundler, channel, linked(nippu_id, tunniste, ids), send_status(nippu_id, "sent"))
    shown = await states(bundler, student.hoks_id)
    assert (shown["a"][0], shown["b"][0]) == ("lahetetty", "ei_laheteta")


async def test_a_deleted_hoks_cancels_its_unsent_bundled_jaksot(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """E14 `hoks_poistettu` after bundling: each bundled jakso's code is cancelled."""
    student, ids, nippu_id, _ = await bundled(bundler, channel, jakso("a"), jakso("b"))
    await apply(bundler, channel, student.deleted(version=2))
    cancelled = await events.wait_for(of_nippu("jakso.cancelled", nippu_id), count=2)
    assert sorted(c["payload"]["jakso_id"] for c in cancelled) == sorted(ids)
    assert {s[:2] for s in (await states(bundler, student.hoks_id)).values()} == {
        ("ei_laheteta", "hoks_poistettu")
    }


async def test_k4_sees_every_hoks_of_a_student_changed_at_once(
    bundler: Running, channel: AbstractChannel
) -> None:
    """K4 with two HOKS of one student changing in the same moment: `a` (30 days) shares
    them with `b` and `c` (kesto 10); both move away at once → 30. Without the oppija
    lock each recomputation sees only its own move and leaves 15."""
    first = "2025-01-01", "2025-01-30"
    away = "2025-02-01", "2025-02-27"
    students = []
    for _ in range(6):
        owner = Student()
        # Study rights of their own: HOKS on one study right are serialised by its lock.
        others = [Student(oppija_oid=owner.oppija_oid), Student(oppija_oid=owner.oppija_oid)]
        await apply(
            bundler,
            channel,
            owner.opiskeluoikeus(),
            others[0].opiskeluoikeus(),
            others[1].opiskeluoikeus(),
            owner.hoks(jakso("a", *first)),
            others[0].hoks(jakso("b", *first)),
            others[1].hoks(jakso("c", *first)),
        )
        await form_nippu(bundler, [await jakso_id(bundler, owner.hoks_id, "a")], kesto=10)
        students.append((owner, others))
    sent = []
    for _, (b_hoks, c_hoks) in students:
        sent.append(await publish(channel, b_hoks.hoks(jakso("b", *away), version=2)))
        sent.append(await publish(channel, c_hoks.hoks(jakso("c", *away), version=2)))
    await wait_seen(bundler, *sent)
    kestot = []
    for owner, _ in students:
        response = await bundler.client.get(f"/api/v1/hoks/{owner.hoks_id}/jaksot")
        kestot.append(response.json()[0]["kesto"])
    assert kestot == [30] * len(students)


async def test_a_change_of_a_jakso_of_another_rahoituskausi_sends_no_kesto(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """K4 within one rahoituskausi (docs/decisions.md): `a` (2.6.–20.6.2025, kausi
    2024-2025) shares days with `b` (kausi 2025-2026) across the boundary; `b` moving
    changes a's K1 shares (14 → 16) but `b` belongs to another rahoituskausi, so nothing
    is sent; a change of `a`'s own kausi would be (the test above)."""
    a = jakso("a", alku="2025-06-02", loppu="2025-06-20")
    b = jakso("b", alku="2025-06-10", loppu="2025-08-29")
    assert round_half_up(8 + Fraction(11, 2)) == 14
    student, ids, nippu_id, tunniste = await bundled(bundler, channel, a, kesto=14)
    await apply(
        bundler,
        channel,
        student.hoks(a, b, version=2),
        student.hoks(a, jakso("b", alku="2025-06-15", loppu="2025-08-29"), version=3),
        linked(nippu_id, tunniste, ids),
    )
    await events.wait_for(of_nippu("send.requested", nippu_id))
    await no_more(events, "jakso.kesto_changed", nippu_id, 0)


async def test_a_sent_jakso_removed_later_is_not_cancelled(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """E18: a change to a sent jakso is recorded and changes nothing sent."""
    a, b = jakso("a"), jakso("b")
    student, ids, nippu_id, tunniste = await bundled(bundler, channel, a, b)
    await apply(bundler, channel, linked(nippu_id, tunniste, ids), send_status(nippu_id, "sent"))
    await apply(bundler, channel, student.hoks(a, version=2))
    assert (await states(bundler, student.hoks_id))["b"][0] == "lahetetty"
    await no_more(events, "jakso.cancelled", nippu_id, 0)


# --- TPK (T5) -------------------------------------------------------------------------------


async def test_a_tpk_link_is_there_for_the_provider_to_fetch(
    bundler: Running, channel: AbstractChannel
) -> None:
    tpk_nippu_id = await form_tpk_nippu(bundler)
    await apply(
        bundler,
        channel,
        TpkNippuLinked(
            tpk_nippu_id=tpk_nippu_id,
            tunnus="TPK1",
            kysely_linkki="https://arvo.example/v/TPK1",
            voimassa_loppupvm=d("2025-02-28"),
        ),
    )
    response = await bundler.client.get(
        "/api/v1/tpk-niput", params={"kausi": "2024-07-01", "limit": 1000}
    )
    assert response.status_code == 200, response.text
    (found,) = [n for n in response.json() if n["tpk_nippu_id"] == str(tpk_nippu_id)]
    assert (found["tunnus"], found["kysely_linkki"], found["voimassa_loppupvm"]) == (
        "TPK1",
        "https://arvo.example/v/TPK1",
        "2025-02-28",
    )


async def test_redelivered_send_status_is_applied_once(
    bundler: Running, channel: AbstractChannel, events: EventCapture
) -> None:
    """The inbox: the same message twice records one report."""
    _, ids, nippu_id, tunniste = await bundled(bundler, channel, jakso("a"))
    await apply(bundler, channel, linked(nippu_id, tunniste, ids))
    status = send_status(nippu_id, "sent")
    message_id = uuid.uuid4()
    await wait_seen(bundler, await publish(channel, status, message_id=message_id))
    await publish(channel, status, message_id=message_id)
    await apply(bundler, channel, send_status(nippu_id, "delivered"))
    assert [s["tila"] for s in (await nippu(bundler, nippu_id))["lahetykset"]] == [
        "sent",
        "delivered",
    ]


# --- After a real TEP run -------------------------------------------------------------


async def test_after_a_tep_run_k4_reports_only_a_real_change_of_kesto(
    bundler: Running, channel: AbstractChannel, events: EventCapture, set_today: Any
) -> None:
    """The TEP run computes kesto (K1–K3) and the flow recomputes it (K4) over the same
    jaksot: a change that moves no day share sends nothing; moving `b` does.

    `a` 13.1.–7.3.2040 (55 days, leap year) shares 36 days with `b` (from 1.2.): 19 + 18
    → 37; `b` moved to start after `a` ended → 55. A year of its own: the run takes every
    due jakso of the session's database."""
    set_today("2040-03-20")
    koulutustoimija = f"1.2.246.562.10.{uuid.uuid4().int % 10**11}"
    student = Student()
    a = jakso("a", alku="2040-01-13", loppu="2040-03-07")
    b = jakso("b", alku="2040-02-01", loppu="2040-05-29")
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=koulutustoimija),
        student.hoks(a, b),
    )
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"job": "tep-niputus", "date": "2040-03-16"}
    answer = await bundler.client.post("/api/v1/runs", json=body, headers=admin)
    assert answer.status_code == 202, answer.text
    (ready,) = await events.wait_for(
        lambda e: (
            e["type"] == "nippu.ready" and e["payload"]["koulutustoimija_oid"] == koulutustoimija
        )
    )
    nippu_id = uuid.UUID(ready["payload"]["nippu_id"])
    ((jakso_payload),) = ready["payload"]["jaksot"]
    assert jakso_payload["kesto"] == 37

    instructor_changed = jakso("b", alku="2040-02-01", loppu="2040-05-29", ohjaaja={"nimi": "Olli"})
    await apply(bundler, channel, student.hoks(a, instructor_changed, version=2))
    tunniste = ready["payload"]["tunniste"]
    await apply(bundler, channel, linked(nippu_id, tunniste, [jakso_payload["jakso_id"]]))
    await events.wait_for(of_nippu("send.requested", nippu_id))
    await no_more(events, "jakso.kesto_changed", nippu_id, 0)

    moved = jakso("b", alku="2040-03-10", loppu="2040-05-29")
    await apply(bundler, channel, student.hoks(a, moved, version=3))
    (changed,) = await events.wait_for(of_nippu("jakso.kesto_changed", nippu_id))
    assert changed["payload"]["kesto"] == 55
