"""The demo's counting and pictures: pure functions of what the read APIs answer."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import httpx
import pytest

from demo.driver import (
    RetryingTransport,
    Snapshot,
    answers_on,
    count_jaksot,
    count_messages,
    count_outcomes,
    job_due,
)
from demo.generate import generate
from demo.report import (
    cases_table,
    html_report,
    html_rows,
    outcome_text,
    rows_table,
    svg_bars,
    terminal_bars,
)

DAY = dt.date(2025, 3, 16)


def jakso(tila: str, syy: str | None = None, nippu_id: str | None = None) -> dict[str, object]:
    return {"tila": tila, "syy": syy, "nippu_id": nippu_id}


def test_jaksot_are_counted_by_stage_and_the_rest_by_reason() -> None:
    snapshot = Snapshot(DAY)
    count_jaksot(
        snapshot,
        [
            jakso("odottaa", "jakso_kesken"),
            jakso("odottaa", "odottaa_niputusta"),
            jakso("odottaa", "jatkuu_myohemmin"),
            jakso("ei_laheteta", "keskeytynyt"),
            jakso("ei_laheteta", "yhteystieto_puuttuu", "n1"),
            jakso("niputettu", None, "n2"),
            jakso("lahetetty", None, "n3"),
            jakso("vastattu", None, "n3"),
            jakso("vastausaika_loppunut", None, "n4"),
        ],
    )
    assert snapshot.stages() == {
        "received": 9,
        "waiting": 3,
        "eligible": 7,
        "bundled": 5,
        "linked": 0,
        "sent": 3,
        "reminded": 0,
        "answered": 1,
    }
    assert snapshot.reasons == Counter(
        {
            "odottaa / jakso_kesken": 1,
            "odottaa / odottaa_niputusta": 1,
            "odottaa / jatkuu_myohemmin": 1,
            "ei_laheteta / keskeytynyt": 1,
            "ei_laheteta / yhteystieto_puuttuu": 1,
            "vastausaika_loppunut": 1,
        }
    )


def test_reminded_jaksot_are_those_of_the_bundles_a_reminder_links_to() -> None:
    snapshot = Snapshot(DAY)
    link_a, link_b = "https://arvo.example/v/a_2025-03-16_x1", "https://arvo.example/v/b_x2"
    mails = [
        {"subject": "Työpaikkaohjaajakysely / Enkät", "text": f"{link_a}?t=e"},
        {"subject": "Muistutus / Påminnelse / Reminder: Työ", "text": f"vastaa {link_a}?t=e."},
    ]
    sms = [{"text": f"Muistutus: Työpaikkaohjaajakysely\n{link_a}?t=s"}, {"text": link_b}]
    count_messages(snapshot, mails, sms, {link_a: 3, link_b: 1})
    assert (snapshot.emails, snapshot.sms, snapshot.reminded) == (2, 2, 3)


def test_answers_are_seeded_by_link_and_keep_to_the_share() -> None:
    delays = [answers_on(1, f"link-{n}", 0.6) for n in range(2000)]
    assert delays == [answers_on(1, f"link-{n}", 0.6) for n in range(2000)]
    answered = [d for d in delays if d is not None]
    assert 0.55 < len(answered) / len(delays) < 0.65
    assert min(answered) >= 1 and max(answered) <= 20 and 5 not in answered
    assert 0.6 < sum(d <= 4 for d in answered) / len(answered) < 0.8, "most before the reminder"
    assert all(answers_on(1, f"link-{n}", 0.0) is None for n in range(100))


@pytest.mark.parametrize(
    ("job", "day", "due"),
    [
        ("tep-niputus", dt.date(2025, 3, 16), True),
        ("tep-niputus", dt.date(2025, 3, 1), True),
        ("tep-niputus", dt.date(2025, 3, 2), False),
        ("tpk-niputus", dt.date(2025, 7, 1), True),
        ("tpk-niputus", dt.date(2025, 1, 1), True),
        ("tpk-niputus", dt.date(2025, 6, 1), False),
        ("reminders", dt.date(2025, 3, 2), True),
        ("personal-data-cleanup", dt.date(2025, 3, 16), True),
        ("personal-data-cleanup", dt.date(2025, 3, 17), False),
        ("tep-close-unsent", dt.date(2025, 4, 1), True),
        ("tep-close-unsent", dt.date(2025, 4, 2), False),
    ],
)
def test_jobs_are_due_as_the_demo_runs_them(job: str, day: dt.date, due: bool) -> None:
    assert job_due(job, day) is due


def snapshots() -> list[Snapshot]:
    first = Snapshot(dt.date(2025, 3, 1), received=40, waiting=30, eligible=10)
    last = Snapshot(
        DAY, received=50, waiting=5, eligible=40, bundled=35, linked=35, sent=30, answered=12
    )
    last.reasons["ei_laheteta / keskeytynyt"] = 3
    return [first, last]


def test_the_html_report_is_one_self_contained_page() -> None:
    page = html_report(
        generate(seed=1, students=30),
        snapshots(),
        ["job x: not available yet"],
        dt.datetime(2025, 1, 1),
    )
    assert page.count("<svg") == 2
    assert not re.search(r"<script|<link|src=", page), "nothing loaded from elsewhere"
    assert "ei_laheteta / keskeytynyt" in page and "not available yet" in page
    assert ">35</text>" in svg_bars(snapshots()[-1])


def test_the_terminal_bars_scale_to_the_largest_stage() -> None:
    lines = terminal_bars(snapshots()[-1], width=50)
    assert lines[0].count("█") == 50 and lines[0].endswith(" 50")
    assert lines[-1].count("█") == 12 and lines[-1].endswith(" 12")


def test_a_report_of_unknown_shape_becomes_a_table_and_html_rows() -> None:
    rows = [
        {"koulutustoimija": "A", "sent": 10, "answered": 4, "rate": 0.4},
        {"koulutustoimija": "B", "sent": 0, "kysely": {"tyyppi": "tep"}},
    ]
    table = rows_table("response rates", rows)
    assert [c.header for c in table.columns] == [
        "koulutustoimija", "sent", "answered", "rate", "kysely"
    ]  # fmt: skip
    page = html_rows(rows)
    assert "<td>0.40</td>" in page and "{&quot;tyyppi&quot;: &quot;tep&quot;}" in page
    assert "not available" in html_rows([])


async def test_lost_connections_and_5xx_are_tried_again_but_never_a_resend() -> None:
    calls: list[str] = []

    class Flaky(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request.url.path)
            if len(calls) % 2:
                raise httpx.ReadError("connection closed", request=request)
            if len(calls) == 4:
                return httpx.Response(503)
            return httpx.Response(200)

    transport = RetryingTransport(inner=Flaky())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/api/v1/hoks/1/jaksot")).status_code == 200
        assert calls == ["/api/v1/hoks/1/jaksot"] * 2
        with pytest.raises(httpx.ReadError):
            await client.post("/api/v1/niput/n1/resend")
        assert calls[-1] == "/api/v1/niput/n1/resend" and len(calls) == 3
        assert (await client.put("/api/v1/hoks/1")).status_code == 200, "after a 503, again"
        assert calls[3:] == ["/api/v1/hoks/1"] * 3


def test_each_case_shows_what_its_jaksot_ended_as() -> None:
    snapshot = Snapshot(DAY)
    count_outcomes(
        snapshot,
        [
            {"hoks_id": 1, "tila": "vastattu", "syy": None},
            {"hoks_id": 1, "tila": "lahetetty", "syy": None},
            {"hoks_id": 2, "tila": "ei_laheteta", "syy": "keskeytynyt"},
            {"hoks_id": 3, "tila": "odottaa", "syy": "jakso_kesken"},
            {"hoks_id": 99, "tila": "lahetetty", "syy": None},
        ],
        {1: "tavallinen", 2: "keskeytynyt", 3: "tavallinen"},
    )
    assert snapshot.outcomes == {
        "tavallinen": Counter({"vastattu": 1, "lahetetty": 1, "odottaa / jakso_kesken": 1}),
        "keskeytynyt": Counter({"ei_laheteta / keskeytynyt": 1}),
    }
    dataset = generate(seed=1, students=30)
    table = cases_table(dataset, snapshot)
    assert table.columns[-1].header == "what the jaksot ended as"
    assert outcome_text(snapshot, "keskeytynyt") == "ei_laheteta / keskeytynyt 1"
