"""Read APIs and reports (issue 12): bundles, TPK links and reports, scoped by the
caller's koulutustoimijat (another provider's: 404), paged, audit-logged where they show
identifiable students' data."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel

from shared.events import SurveyStatus
from tests.integration.bundler.conftest import (
    KOULUTUSTOIMIJA,
    SCOPED_TOKEN,
    Student,
    apply,
    jakso,
    jakso_id,
    new_id,
)
from tests.integration.bundler.flow_support import (
    form_nippu,
    form_tpk_nippu,
    linked,
    send_status,
    tunniste_of,
)
from tests.support.services import Running


def provider() -> str:
    """A koulutustoimija of this test alone: its numbers are exact."""
    return f"1.2.246.562.10.{new_id()}"


async def get(bundler: Running, path: str, token: str | None = None, **params: Any) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await bundler.client.get(path, params=params, headers=headers)


async def student_with(
    bundler: Running, channel: AbstractChannel, koulutustoimija: str, *jaksot: Any
) -> tuple[Student, list[int]]:
    student = Student()
    await apply(
        bundler,
        channel,
        student.opiskeluoikeus(koulutustoimija=koulutustoimija),
        student.hoks(*jaksot),
    )
    ids = [await jakso_id(bundler, student.hoks_id, j.yksiloiva_tunniste) for j in jaksot]
    return student, ids


async def sent_bundle(
    bundler: Running,
    channel: AbstractChannel,
    koulutustoimija: str,
    jaksot: int,
    *,
    answered: bool = False,
    contacts: bool = True,
) -> uuid.UUID:
    """A bundle of `jaksot` jaksot, linked and sent (and answered), or without contacts."""
    ohjaaja = {} if contacts else {"ohjaaja": {"nimi": "Olli Ohjaaja"}}
    _, ids = await student_with(
        bundler,
        channel,
        koulutustoimija,
        *(jakso(f"j{i}", **ohjaaja) for i in range(jaksot)),
    )
    nippu_id = await form_nippu(bundler, ids, koulutustoimija=koulutustoimija)
    tunniste = await tunniste_of(bundler, nippu_id)
    events: list[Any] = [linked(nippu_id, tunniste, ids)]
    if contacts:
        events.append(send_status(nippu_id, "sent"))
    if answered:
        events.append(SurveyStatus(tunniste=tunniste, vastattu=True))
    await apply(bundler, channel, *events)
    return nippu_id


async def test_bundles_are_listed_for_their_provider_only(
    bundler: Running, channel: AbstractChannel
) -> None:
    """The scoped reader sees its koulutustoimija's bundles; another's is 404, whether
    asked by id or by koulutustoimija."""
    other = provider()
    _, own_ids = await student_with(bundler, channel, KOULUTUSTOIMIJA, jakso("a"))
    _, other_ids = await student_with(bundler, channel, other, jakso("a"))
    own = await form_nippu(bundler, own_ids, niputuspvm="2031-01-16")
    theirs = await form_nippu(bundler, other_ids, koulutustoimija=other, niputuspvm="2031-01-16")

    response = await get(bundler, "/api/v1/niput", SCOPED_TOKEN, niputuspvm="2031-01-16")
    assert response.status_code == 200, response.text
    assert [n["nippu_id"] for n in response.json()] == [str(own)]
    (shown,) = response.json()
    assert set(shown) >= {
        "nippu_id",
        "niputuspvm",
        "koulutustoimija",
        "ytunnus",
        "tyopaikka",
        "tutkinto",
        "jaksot",
        "tila",
        "linkki",
        "voimassa_loppupvm",
        "lahetykset",
    }, "api.md's fields"
    assert (shown["jaksot"], shown["tila"], shown["ytunnus"]) == (
        own_ids,
        "odottaa_lahetysta",
        "1234567-8",
    )
    assert (await get(bundler, f"/api/v1/niput/{theirs}", SCOPED_TOKEN)).status_code == 404
    assert (await get(bundler, f"/api/v1/niput/{own}", SCOPED_TOKEN)).status_code == 200
    response = await get(bundler, "/api/v1/niput", SCOPED_TOKEN, koulutustoimija=other)
    assert response.status_code == 404
    assert (await get(bundler, "/api/v1/niput", "no-such-token")).status_code == 401


async def test_bundles_page_by_cursor(bundler: Running, channel: AbstractChannel) -> None:
    koulutustoimija = provider()
    formed = []
    for pvm in ("2025-03-01", "2025-03-16", "2025-03-16"):
        _, ids = await student_with(bundler, channel, koulutustoimija, jakso("a"))
        formed.append(
            await form_nippu(bundler, ids, koulutustoimija=koulutustoimija, niputuspvm=pvm)
        )
    seen: list[str] = []
    params: dict[str, Any] = {"koulutustoimija": koulutustoimija, "limit": 2}
    while True:
        response = await get(bundler, "/api/v1/niput", **params)
        assert response.status_code == 200, response.text
        seen.extend(n["nippu_id"] for n in response.json())
        if "x-next-cursor" not in response.headers:
            break
        params["cursor"] = response.headers["x-next-cursor"]
    assert seen[0] == str(formed[0]), "by niputuspvm"
    assert sorted(seen) == sorted(map(str, formed)) and len(seen) == 3
    bad = await get(bundler, "/api/v1/niput", cursor="not a cursor")
    assert (bad.status_code, bad.json()["details"][0]["loc"]) == (422, ["query", "cursor"])


async def test_tpk_links_are_scoped(bundler: Running) -> None:
    other = provider()
    own = await form_tpk_nippu(bundler, kausi="2024-07-01")
    theirs = await form_tpk_nippu(bundler, koulutustoimija=other, kausi="2024-07-01")
    response = await get(bundler, "/api/v1/tpk-niput", SCOPED_TOKEN, kausi="2024-07-01", limit=1000)
    assert response.status_code == 200, response.text
    shown = {n["tpk_nippu_id"] for n in response.json()}
    assert str(own) in shown and str(theirs) not in shown
    response = await get(bundler, "/api/v1/tpk-niput", SCOPED_TOKEN, koulutustoimija=other)
    assert response.status_code == 404
    bad = await get(bundler, "/api/v1/tpk-niput", kausi="2024-03-01")
    assert (bad.status_code, bad.json()["details"][0]["loc"]) == (422, ["query", "kausi"])


async def test_response_rates_count_sent_and_answered_bundles(
    bundler: Running, channel: AbstractChannel
) -> None:
    """Three bundles: answered (2 jaksot), sent (1), without contacts (1, never sent) →
    2 sent, 1 answered, 0.5; jaksot 3 sent, 2 answered."""
    koulutustoimija = provider()
    await sent_bundle(bundler, channel, koulutustoimija, 2, answered=True)
    await sent_bundle(bundler, channel, koulutustoimija, 1)
    await sent_bundle(bundler, channel, koulutustoimija, 1, contacts=False)
    response = await get(bundler, "/api/v1/reports/response-rates", koulutustoimija=koulutustoimija)
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            "koulutustoimija": koulutustoimija,
            "kysely": "tep",
            "sent": 2,
            "answered": 1,
            "rate": 0.5,
            "jaksot_sent": 3,
            "jaksot_answered": 2,
            "jaksot_rate": 0.6667,
        }
    ]
    outside = await get(
        bundler,
        "/api/v1/reports/response-rates",
        koulutustoimija=koulutustoimija,
        alku="2025-04-01",
    )
    assert outside.json() == []


async def test_the_jaksot_report_takes_bundles_apart_as_json_and_csv(
    bundler: Running, channel: AbstractChannel, caplog: pytest.LogCaptureFixture
) -> None:
    """N5: one row per jakso with its bundle's link and status; audit-logged; no
    instructor data."""
    koulutustoimija = provider()
    nippu_id = await sent_bundle(bundler, channel, koulutustoimija, 2, answered=True)
    params = {"koulutustoimija": koulutustoimija, "alku": "2025-03-01", "loppu": "2025-03-31"}
    with caplog.at_level(logging.INFO, logger="audit"):
        response = await get(bundler, "/api/v1/reports/jaksot", **params)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [(r["nippu_id"], r["tila"], r["nippu_tila"], r["vastattu"]) for r in rows] == [
        (str(nippu_id), "vastattu", "vastattu", True)
    ] * 2
    assert rows[0]["linkki"].startswith("https://arvo.example/v/")
    assert "olli" not in response.text.lower()
    assert any(getattr(r, "action", None) == "reports.jaksot.read" for r in caplog.records), (
        "the read is audit-logged"
    )

    as_csv = await bundler.client.get(
        "/api/v1/reports/jaksot", params=params, headers={"accept": "text/csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["jakso_id"], r["nippu_tila"]) for r in table] == [
        (str(r["jakso_id"]), "vastattu") for r in rows
    ]
    first = await get(bundler, "/api/v1/reports/jaksot", **params, limit=1)
    rest = await get(
        bundler,
        "/api/v1/reports/jaksot",
        **params,
        limit=1,
        cursor=first.headers["x-next-cursor"],
    )
    assert [r["jakso_id"] for r in first.json() + rest.json()] == [r["jakso_id"] for r in rows]
    later = {**params, "alku": "2025-04-01", "loppu": "2025-04-30"}
    empty = await get(bundler, "/api/v1/reports/jaksot", **later)
    assert empty.json() == []
    bad = await get(bundler, "/api/v1/reports/jaksot", alku="2025-04-01", loppu="2025-03-01")
    assert (bad.status_code, bad.json()["details"][0]["loc"]) == (422, ["query", "loppu"])


async def test_contact_data_lists_what_to_fix_before_the_niputuspvm(
    bundler: Running, channel: AbstractChannel
) -> None:
    """C3: missing and invalid contacts, disagreeing addresses of one coming bundle, and
    J2's jaksot without a tunniste; never the addresses themselves."""
    koulutustoimija = provider()
    maija = {"nimi": "Maija Mehiläinen", "puhelinnumero": "0501234567"}
    await student_with(
        bundler,
        channel,
        koulutustoimija,
        jakso("ok"),
        jakso("none", ohjaaja={"nimi": "Pekka", "puhelinnumero": "09 1234567"}),
        jakso("m1", ohjaaja={**maija, "sahkoposti": "maija@perhonen.fi"}),
        jakso("m2", ohjaaja={**maija, "sahkoposti": "maija.m@perhonen.fi"}),
        jakso(None),
    )
    response = await get(bundler, "/api/v1/reports/contact-data", koulutustoimija=koulutustoimija)
    assert response.status_code == 200, response.text
    listed = {r["yksiloiva_tunniste"]: r for r in response.json()}
    assert {k: v["issues"] for k, v in listed.items()} == {
        "none": ["no-email", "phone-invalid"],
        "m1": ["email-mismatch"],
        "m2": ["email-mismatch"],
        None: ["tunniste-puuttuu"],
    }
    assert listed["m1"]["korjattava_viimeistaan"] == "2025-03-16"
    assert "maija@" not in response.text
    scoped = await get(
        bundler, "/api/v1/reports/contact-data", SCOPED_TOKEN, koulutustoimija=koulutustoimija
    )
    assert scoped.status_code == 404


async def test_the_openapi_documents_every_bundler_route_with_our_error_shape(
    bundler: Running,
) -> None:
    spec = (await bundler.client.get("/openapi.json")).json()
    ids = {
        (method, path): operation["operationId"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    assert {
        ("get", "/api/v1/niput"),
        ("get", "/api/v1/niput/{nippu_id}"),
        ("post", "/api/v1/niput/{nippu_id}/resend"),
        ("get", "/api/v1/tpk-niput"),
        ("get", "/api/v1/reports/jaksot"),
        ("get", "/api/v1/reports/response-rates"),
        ("get", "/api/v1/reports/contact-data"),
    } <= set(ids)
    assert len(set(ids.values())) == len(ids), "readable, unique operation ids"
    assert "HTTPValidationError" not in spec["components"]["schemas"], "not what we send"
    resend = spec["paths"]["/api/v1/niput/{nippu_id}/resend"]["post"]["responses"]
    assert {"202", "404", "409", "422"} <= set(resend)
