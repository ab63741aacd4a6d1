"""The one reminder (S3, issue 14's five cases): the daily `reminders` run asks the
arvo_adapter (an HTTP stand-in of its status endpoint) about each bundle first sent 5 or
more days before; answered → vastattu, window closed → vastausaika_loppunut_ennen_muistutusta,
else one reminder on the same channels; never a second; unreachable → the next run.

Runs are unique by (job, date) for the whole session, so each test has days of its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika

from services.sender.usecases import Sender
from shared.events import SendRequested
from tests.fakes.smtp import FakeSmtp
from tests.integration.sender.conftest import (
    RunningSms,
    SurveyStandIn,
    publish,
    send_request,
    settled,
    statuses,
    unique_address,
)
from tests.support.events import EventCapture
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, Running

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


async def sent_bundle(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    set_today: Callable[[dt.date], None],
    day: dt.date,
    *,
    phone: str | None = None,
    window_days: int = 29,
) -> tuple[SendRequested, str]:
    """A bundle first sent on `day` by e-mail (and SMS when `phone`)."""
    set_today(day)
    address = unique_address()
    request = send_request(
        email=address, phone=phone, voimassa_loppupvm=day + dt.timedelta(days=window_days)
    )
    await publish(channel, request)
    await settled(sender, request.nippu_id, 1 + (phone is not None))
    return request, address


async def run(sender: Running, job: str, day: dt.date) -> dict[str, Any]:
    response = await sender.client.post(
        "/api/v1/runs", json={"job": job, "date": day.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    done = await eventually(
        lambda: sender.client.get(f"/api/v1/runs/{run_id}", headers=ADMIN),
        lambda r: r.json()["status"] in ("done", "failed"),
        what=f"{job} run of {day}",
    )
    result: dict[str, Any] = done.json()
    assert result["status"] == "done", result
    return result


def answer(stand_in: SurveyStandIn, request: SendRequested, *, vastattu: bool) -> None:
    stand_in.answers[request.tunniste] = {
        "vastattu": vastattu,
        "voimassa_loppupvm": request.voimassa_loppupvm.isoformat(),
        "extra": "ignored",
    }


def nippu_tilat(events: EventCapture, nippu_id: uuid.UUID) -> list[str]:
    return [
        e["payload"]["nippu_tila"]
        for e in events.received
        if e["type"] == "send.status"
        and e["payload"]["nippu_id"] == str(nippu_id)
        and e["payload"]["nippu_tila"]
    ]


def reminder_keys(found: dict[str, str]) -> list[str]:
    return sorted(key for key in found if "/reminder/" in key)


async def test_answered_before_day_five_gets_no_reminder(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    set_today: Callable[[dt.date], None],
    survey_stand_in: SurveyStandIn,
    smtp_server: FakeSmtp,
    events: EventCapture,
) -> None:
    day = dt.date(2025, 6, 1)
    request, address = await sent_bundle(sender, channel, set_today, day)
    answer(survey_stand_in, request, vastattu=True)

    await run(sender, "reminders", day + dt.timedelta(days=4))
    assert request.tunniste not in survey_stand_in.asked, "not asked before day 5"
    await run(sender, "reminders", day + dt.timedelta(days=5))

    assert reminder_keys(await statuses(sender, request.nippu_id)) == []
    await eventually(
        lambda: _async(nippu_tilat(events, request.nippu_id)),
        lambda tilat: tilat == ["vastattu"],
        what="vastattu reported",
    )
    assert len([m for m in smtp_server.messages if address in m.rcpt_tos]) == 1


async def test_unanswered_with_time_left_gets_one_reminder_on_the_same_channels(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    set_today: Callable[[dt.date], None],
    survey_stand_in: SurveyStandIn,
    smtp_server: FakeSmtp,
    sms_server: RunningSms,
) -> None:
    day = dt.date(2025, 6, 11)
    request, address = await sent_bundle(sender, channel, set_today, day, phone="050 555 1234")
    answer(survey_stand_in, request, vastattu=False)

    result = await run(sender, "reminders", day + dt.timedelta(days=5))
    assert result["counts"]["reminded"] >= 1
    found = await settled(sender, request.nippu_id, 4)
    assert reminder_keys(found) == [
        f"{request.nippu_id}/reminder/email/0",
        f"{request.nippu_id}/reminder/sms/0",
    ]
    assert set(found.values()) == {"sent"}
    await run(sender, "reminders", day + dt.timedelta(days=6))
    await run(sender, "reminders", day + dt.timedelta(days=7))

    mails = [m for m in smtp_server.messages if address in m.rcpt_tos]
    assert len(mails) == 2, "the first message and one reminder"
    first, reminder = mails
    assert reminder.subject != first.subject
    assert f"{request.linkki}?t=e" in reminder.text
    texts = [m.text for m in sms_server.state.messages if str(request.nippu_id) in m.client_ref]
    assert len(texts) == 2 and f"{request.linkki}?t=s" in texts[1]
    assert len(await statuses(sender, request.nippu_id)) == 4


async def test_unanswered_with_the_window_closed_gets_none_and_the_right_status(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    set_today: Callable[[dt.date], None],
    survey_stand_in: SurveyStandIn,
    events: EventCapture,
) -> None:
    day = dt.date(2025, 6, 21)
    request, _ = await sent_bundle(sender, channel, set_today, day, window_days=4)
    answer(survey_stand_in, request, vastattu=False)

    result = await run(sender, "reminders", day + dt.timedelta(days=5))

    assert result["counts"]["window_closed"] >= 1
    assert reminder_keys(await statuses(sender, request.nippu_id)) == []
    await eventually(
        lambda: _async(nippu_tilat(events, request.nippu_id)),
        lambda tilat: tilat == ["vastausaika_loppunut_ennen_muistutusta"],
        what="window closed reported",
    )


async def test_the_job_run_twice_on_a_date_sends_one_reminder(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    set_today: Callable[[dt.date], None],
    survey_stand_in: SurveyStandIn,
    smtp_server: FakeSmtp,
) -> None:
    day = dt.date(2025, 7, 1)
    request, address = await sent_bundle(sender, channel, set_today, day)
    answer(survey_stand_in, request, vastattu=False)
    on = day + dt.timedelta(days=5)

    first = await run(sender, "reminders", on)
    again = await run(sender, "reminders", on)
    assert again["run_id"] == first["run_id"]
    await settled(sender, request.nippu_id, 2)
    # The use case itself, run again for the date outside the runs table (as a resumed
    # run would): the bundle's decision and the unique key keep it at one.
    usecases: Sender = sender.service._provided[Sender]
    counts = await usecases.reminders(on)
    assert counts["reminded"] == 0
    assert len(await statuses(sender, request.nippu_id)) == 2
    assert len([m for m in smtp_server.messages if address in m.rcpt_tos]) == 2


async def test_arvo_unreachable_on_day_five_reminds_on_day_six(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    set_today: Callable[[dt.date], None],
    survey_stand_in: SurveyStandIn,
    smtp_server: FakeSmtp,
) -> None:
    day = dt.date(2025, 7, 11)
    request, address = await sent_bundle(sender, channel, set_today, day)
    answer(survey_stand_in, request, vastattu=False)
    survey_stand_in.unreachable.add(request.tunniste)

    result = await run(sender, "reminders", day + dt.timedelta(days=5))
    assert result["counts"]["unreachable"] >= 1
    assert reminder_keys(await statuses(sender, request.nippu_id)) == []

    survey_stand_in.unreachable.discard(request.tunniste)
    await run(sender, "reminders", day + dt.timedelta(days=6))
    found = await settled(sender, request.nippu_id, 2)
    assert reminder_keys(found) == [f"{request.nippu_id}/reminder/email/0"]
    assert len([m for m in smtp_server.messages if address in m.rcpt_tos]) == 2


async def _async(value: Any) -> Any:
    return value
