"""The fakes honour the contracts in arvo-api.md, errors included, over real HTTP/SMTP."""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.fakes.server import serve
from tests.fakes.smtp import FakeSmtp, create_view_app
from tests.integration.fakes.conftest import (
    ARVO_PASSWORD,
    ARVO_USER,
    SMS_TOKEN,
    RunningArvo,
    RunningSms,
)

V1 = "tyoelamapalaute/v1"
REPO_ROOT = Path(__file__).resolve().parents[3]
KT_OID = "1.2.246.562.10.10000000001"
YTUNNUS = "1234567-8"
TUTKINTO = "351407"


def code_request(**overrides: Any) -> dict[str, Any]:
    """A valid vastaajatunnus request (period 2022-01-10..2022-03-15)."""
    body: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "koulutustoimija_oid": KT_OID,
        "oppilaitos_oid": "1.2.246.562.10.20000000002",
        "toimipiste_oid": None,
        "tyonantaja": YTUNNUS,
        "tyopaikka": "Perhosen Päiväkoti",
        "tyopaikka_normalisoitu": "perhosen_paivakoti",
        "tutkintotunnus": TUTKINTO,
        "tutkinnon_osa": "106727",
        "paikallinen_tutkinnon_osa": None,
        "tutkintonimike": ["10024"],
        "osaamisala": ["1525"],
        "tyopaikkajakson_alkupvm": "2022-01-10",
        "tyopaikkajakson_loppupvm": "2022-03-15",
        "rahoituskausi_pvm": "2022-03-15",
        "osa_aikaisuus": 80,
        "sopimustyyppi": "oppisopimus",
        "oppisopimuksen_perusta": "01",
        "vastaamisajan_alkupvm": "2022-03-16",
        "vastaamisajan_loppupvm": "2022-04-14",
        "metatiedot": {"ei_kuulu_lahetettavien_perusjoukkoon": False},
    }
    body.update(overrides)
    return body


def nippu_request(codes: list[str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tunniste": f"perhosen_paivakoti_2022-03-16_{uuid.uuid4().hex[:6]}",
        "koulutustoimija_oid": KT_OID,
        "tutkintotunnus": TUTKINTO,
        "tyonantaja": YTUNNUS,
        "tyopaikka": "Perhosen Päiväkoti",
        "tunnukset": [{"tunnus": t, "tyopaikkajakson_loppupvm": "2022-03-15"} for t in codes],
        "voimassa_alkupvm": "2022-03-16",
        "request_id": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


def tpk_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "koulutustoimija_oid": KT_OID,
        "tyonantaja": YTUNNUS,
        "tyopaikka": "Perhosen Päiväkoti",
        "tyopaikka_normalisoitu": "perhosen_paivakoti",
        "tiedonkeruu_alkupvm": "2024-07-01",
        "tiedonkeruu_loppupvm": "2024-12-31",
        "vastaamisajan_alkupvm": "2025-01-01",
        "vastaamisajan_loppupvm": "2025-02-28",
        "request_id": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


async def make_code(client: httpx.AsyncClient, **overrides: Any) -> str:
    response = await client.post(f"{V1}/vastaajatunnus", json=code_request(**overrides))
    assert response.status_code == 200, response.text
    tunnus = response.json()["tunnus"]
    assert isinstance(tunnus, str)
    return tunnus


async def make_nippu(client: httpx.AsyncClient, **overrides: Any) -> str:
    tunnus = await make_code(client)
    body = nippu_request([tunnus], **overrides)
    response = await client.post(f"{V1}/nippu", json=body)
    assert response.status_code == 200, response.text
    return str(body["tunniste"])


# --------------------------------------------------------------------------- Arvo: auth


@pytest.mark.parametrize("auth", [None, (ARVO_USER, "wrong"), ("someone", ARVO_PASSWORD)])
async def test_arvo_rejects_missing_or_wrong_credentials(
    arvo_fake: RunningArvo, auth: tuple[str, str] | None
) -> None:
    async with httpx.AsyncClient(base_url=arvo_fake.api, auth=auth) as client:
        response = await client.post(f"{V1}/vastaajatunnus", json=code_request())
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert arvo_fake.state.codes == {}


async def test_arvo_rejects_bearer_token(arvo_fake: RunningArvo) -> None:
    async with httpx.AsyncClient(base_url=arvo_fake.api) as client:
        response = await client.get(f"{V1}/status/x", headers={"Authorization": "Bearer arvo"})
    assert response.status_code == 401


# --------------------------------------------------------------------------- Arvo: codes


async def test_create_code_returns_unique_codes_and_records_request(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    body = code_request()
    first = await arvo_client.post(f"{V1}/vastaajatunnus", json=body)
    second = await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request())
    assert first.status_code == second.status_code == 200
    assert first.json()["tunnus"] != second.json()["tunnus"]

    state = (await control.get("/_fake/state")).json()
    codes = {c["tunnus"]: c for c in state["codes"]}
    assert codes[first.json()["tunnus"]]["request_id"] == body["request_id"]
    assert codes[first.json()["tunnus"]]["data"]["tyopaikka"] == "Perhosen Päiväkoti"
    assert state["requests"][0]["request_id"] == body["request_id"]


async def test_retry_with_same_request_id_creates_a_second_code(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    """Arvo is not idempotent: the adapter must prevent duplicates itself."""
    body = code_request()
    first = await arvo_client.post(f"{V1}/vastaajatunnus", json=body)
    retry = await arvo_client.post(f"{V1}/vastaajatunnus", json=body)
    assert first.json()["tunnus"] != retry.json()["tunnus"]

    state = (await control.get("/_fake/state")).json()
    same = [c for c in state["codes"] if c["request_id"] == body["request_id"]]
    assert len(same) == 2
    logged = [r for r in state["requests"] if r["request_id"] == body["request_id"]]
    assert [r["status"] for r in logged] == [200, 200]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"request_id": "not-a-uuid"}, "request_id"),
        ({"koulutustoimija_oid": None}, "koulutustoimija_oid"),
        ({"tyonantaja": "1234567"}, "tyonantaja"),
        ({"tyopaikkajakson_loppupvm": "15.3.2022"}, "tyopaikkajakson_loppupvm"),
        ({"tyopaikkajakson_loppupvm": "2022-01-01"}, "tyopaikkajakson_alkupvm"),
        ({"sopimustyyppi": "harjoittelu"}, "sopimustyyppi"),
        ({"osa_aikaisuus": 0}, "osa_aikaisuus"),
        ({"osa_aikaisuus": 101}, "osa_aikaisuus"),
        ({"oppisopimuksen_perusta": "03"}, "oppisopimuksen_perusta"),
        ({"tutkintonimike": "10024"}, "tutkintonimike"),
        ({"vastaamisajan_loppupvm": "2022-03-01"}, "vastaamisajan_alkupvm"),
        ({"metatiedot": []}, "metatiedot"),
    ],
)
async def test_invalid_code_request_is_400_with_errors(
    arvo_fake: RunningArvo,
    arvo_client: httpx.AsyncClient,
    overrides: dict[str, Any],
    field: str,
) -> None:
    response = await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request(**overrides))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(e.startswith(field) for e in errors), errors
    assert arvo_fake.state.codes == {}


async def test_code_request_lists_every_missing_field(arvo_client: httpx.AsyncClient) -> None:
    response = await arvo_client.post(f"{V1}/vastaajatunnus", json={})
    assert response.status_code == 400
    assert len(response.json()["errors"]) >= 10


async def test_nullable_fields_may_be_omitted(arvo_client: httpx.AsyncClient) -> None:
    body = code_request(sopimustyyppi="koulutussopimus")
    for name in ("toimipiste_oid", "tutkinnon_osa", "paikallinen_tutkinnon_osa", "osa_aikaisuus"):
        del body[name]
    del body["oppisopimuksen_perusta"]
    response = await arvo_client.post(f"{V1}/vastaajatunnus", json=body)
    assert response.status_code == 200, response.text


async def test_malformed_json_is_400(arvo_client: httpx.AsyncClient) -> None:
    response = await arvo_client.post(
        f"{V1}/vastaajatunnus", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"]


async def test_no_survey_is_404_only_for_that_provider(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    other = "1.2.246.562.10.99999999999"
    marked = await control.post("/_fake/no-survey", json={"koulutustoimija_oid": other})
    assert marked.status_code == 200

    response = await arvo_client.post(
        f"{V1}/vastaajatunnus", json=code_request(koulutustoimija_oid=other)
    )
    assert response.status_code == 404
    assert response.json()["errors"]
    assert (await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request())).status_code == 200

    await control.post("/_fake/no-survey", json={"koulutustoimija_oid": other, "on": False})
    response = await arvo_client.post(
        f"{V1}/vastaajatunnus", json=code_request(koulutustoimija_oid=other)
    )
    assert response.status_code == 200


async def test_patch_and_delete_code(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient
) -> None:
    tunnus = await make_code(arvo_client)
    patched = await arvo_client.patch(f"{V1}/vastaajatunnus/{tunnus}", json={"kesto": 42})
    assert patched.status_code == 200
    assert arvo_fake.state.codes[tunnus].data["kesto"] == 42

    bad = await arvo_client.patch(f"{V1}/vastaajatunnus/{tunnus}", json={"osa_aikaisuus": 500})
    assert bad.status_code == 400

    assert (await arvo_client.delete(f"{V1}/vastaajatunnus/{tunnus}")).status_code == 200
    assert arvo_fake.state.codes[tunnus].deleted
    assert (await arvo_client.delete(f"{V1}/vastaajatunnus/{tunnus}")).status_code == 404
    gone = await arvo_client.patch(f"{V1}/vastaajatunnus/{tunnus}", json={"kesto": 1})
    assert gone.status_code == 404
    assert (await arvo_client.delete(f"{V1}/vastaajatunnus/NOPE")).status_code == 404


# --------------------------------------------------------------------------- Arvo: bundles


@pytest.mark.parametrize(
    ("alku", "expected"),
    [
        ("2022-03-16", "2022-04-14"),  # rules.md W2: 30 days from sending, inclusive
        ("2022-05-01", "2022-05-14"),  # capped at niputuspvm 2022-03-16 + 59
    ],
)
async def test_create_nippu_returns_link_and_validity(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, alku: str, expected: str
) -> None:
    first, second = await make_code(arvo_client), await make_code(arvo_client)
    body = nippu_request([first, second], voimassa_alkupvm=alku)
    response = await arvo_client.post(f"{V1}/nippu", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "nippulinkki": f"{arvo_fake.root}/v/{body['tunniste']}",
        "voimassa_loppupvm": expected,
    }
    assert arvo_fake.state.codes[first].nippu == body["tunniste"]

    status = await arvo_client.get(f"{V1}/status/{body['tunniste']}")
    assert status.json() == {"vastattu": False, "voimassa_loppupvm": expected}


async def test_same_tunniste_twice_is_400(arvo_client: httpx.AsyncClient) -> None:
    tunniste = await make_nippu(arvo_client)
    other = await make_code(arvo_client)
    response = await arvo_client.post(f"{V1}/nippu", json=nippu_request([other], tunniste=tunniste))
    assert response.status_code == 400
    assert any("already used" in e for e in response.json()["errors"])


async def test_code_already_bundled_is_400(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient
) -> None:
    tunnus = await make_code(arvo_client)
    assert (await arvo_client.post(f"{V1}/nippu", json=nippu_request([tunnus]))).status_code == 200
    again = nippu_request([tunnus])
    response = await arvo_client.post(f"{V1}/nippu", json=again)
    assert response.status_code == 400
    assert any("already in nippu" in e for e in response.json()["errors"])
    assert again["tunniste"] not in arvo_fake.state.bundles


@pytest.mark.parametrize(
    "overrides",
    [
        {"tunniste": "Perhosen_Päiväkoti"},
        {"tunniste": "has space"},
        {"tunnukset": []},
        {"tunnukset": [{"tunnus": "UNKNOWN1", "tyopaikkajakson_loppupvm": "2022-03-15"}]},
        {"koulutustoimija_oid": "1.2.246.562.10.55555555555"},
        {"voimassa_alkupvm": "2022-02-30"},
    ],
)
async def test_invalid_nippu_is_400(
    arvo_client: httpx.AsyncClient, overrides: dict[str, Any]
) -> None:
    tunnus = await make_code(arvo_client)
    response = await arvo_client.post(f"{V1}/nippu", json=nippu_request([tunnus], **overrides))
    assert response.status_code == 400
    assert response.json()["errors"]


async def test_same_code_twice_in_one_nippu_is_400(arvo_client: httpx.AsyncClient) -> None:
    tunnus = await make_code(arvo_client)
    response = await arvo_client.post(f"{V1}/nippu", json=nippu_request([tunnus, tunnus]))
    assert response.status_code == 400


async def test_deleted_code_cannot_be_bundled(arvo_client: httpx.AsyncClient) -> None:
    tunnus = await make_code(arvo_client)
    await arvo_client.delete(f"{V1}/vastaajatunnus/{tunnus}")
    response = await arvo_client.post(f"{V1}/nippu", json=nippu_request([tunnus]))
    assert response.status_code == 400


async def test_delete_nippu_frees_its_codes_and_tunniste(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient
) -> None:
    tunnus = await make_code(arvo_client)
    body = nippu_request([tunnus])
    assert (await arvo_client.post(f"{V1}/nippu", json=body)).status_code == 200

    assert (await arvo_client.delete(f"{V1}/nippu/{body['tunniste']}")).status_code == 200
    assert (await arvo_client.get(f"{V1}/status/{body['tunniste']}")).status_code == 404
    assert (await arvo_client.delete(f"{V1}/nippu/{body['tunniste']}")).status_code == 404
    assert [b.tunniste for b in arvo_fake.state.deleted_bundles] == [body["tunniste"]]

    again = await arvo_client.post(f"{V1}/nippu", json={**body, "request_id": str(uuid.uuid4())})
    assert again.status_code == 200


async def test_patch_nippu_sets_status_and_validity(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient
) -> None:
    tunniste = await make_nippu(arvo_client)
    response = await arvo_client.patch(
        f"{V1}/nippu/{tunniste}", json={"tila": "lahetetty", "voimassa_loppupvm": "2022-04-20"}
    )
    assert response.status_code == 200, response.text
    bundle = arvo_fake.state.bundles[tunniste]
    assert (bundle.tila, bundle.voimassa_loppupvm) == ("lahetetty", "2022-04-20")
    status = (await arvo_client.get(f"{V1}/status/{tunniste}")).json()
    assert status["voimassa_loppupvm"] == "2022-04-20"

    only_status = await arvo_client.patch(f"{V1}/nippu/{tunniste}", json={"tila": "bounced"})
    assert only_status.status_code == 200
    assert (bundle.tila, bundle.voimassa_loppupvm) == ("bounced", "2022-04-20")


async def test_first_lahetetty_without_date_applies_w2_from_today(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOCK_TODAY", "2022-05-01")
    tunniste = await make_nippu(arvo_client)
    response = await arvo_client.patch(f"{V1}/nippu/{tunniste}", json={"tila": "lahetetty"})
    assert response.json()["voimassa_loppupvm"] == "2022-05-14"


async def test_the_control_clock_moves_the_fakes_today(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    """The demo moves today through ``POST /_fake/clock`` as it moves the services'."""
    moved = await control.post("/_fake/clock", json={"today": "2022-05-01"})
    assert moved.json() == {"today": "2022-05-01"}
    tunniste = await make_nippu(arvo_client)
    response = await arvo_client.patch(f"{V1}/nippu/{tunniste}", json={"tila": "lahetetty"})
    assert response.json()["voimassa_loppupvm"] == "2022-05-14"
    assert (await control.post("/_fake/clock", json={"today": "soon"})).status_code == 400
    released = await control.post("/_fake/clock", json={"today": None})
    assert released.json()["today"] != "2022-05-01"


@pytest.mark.parametrize(
    "body",
    [{"tila": "sent"}, {}, {"tila": "lahetetty", "voimassa_loppupvm": "soon"}],
)
async def test_patch_nippu_rejects_bad_body(
    arvo_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    tunniste = await make_nippu(arvo_client)
    response = await arvo_client.patch(f"{V1}/nippu/{tunniste}", json=body)
    assert response.status_code == 400
    assert response.json()["errors"]


async def test_patch_unknown_nippu_is_404(arvo_client: httpx.AsyncClient) -> None:
    response = await arvo_client.patch(f"{V1}/nippu/nope", json={"tila": "lahetetty"})
    assert response.status_code == 404


async def test_status_reports_answer(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    tunniste = await make_nippu(arvo_client)
    assert (await arvo_client.get(f"{V1}/status/{tunniste}")).json()["vastattu"] is False
    assert (await control.post(f"/_fake/answer/{tunniste}")).status_code == 200
    assert (await arvo_client.get(f"{V1}/status/{tunniste}")).json()["vastattu"] is True
    assert (await control.post("/_fake/answer/unknown")).status_code == 404
    assert (await arvo_client.get(f"{V1}/status/unknown")).status_code == 404


# --------------------------------------------------------------------------- Arvo: TPK


async def test_tpk_link(arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient) -> None:
    response = await arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kysely_linkki"] == f"{arvo_fake.root}/v/{body['tunnus']}"
    assert body["voimassa_loppupvm"] == "2025-02-28"
    assert body["tunnus"] in arvo_fake.state.tpk

    bad = await arvo_client.post(
        f"{V1}/tyopaikkakysely-tunnus", json=tpk_request(tiedonkeruu_loppupvm="2024-01-01")
    )
    assert bad.status_code == 400


# --------------------------------------------------------------------------- Arvo: misbehaviour


async def test_maintenance_answers_503_to_every_call(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    tunniste = await make_nippu(arvo_client)
    await control.post("/_fake/maintenance", json={"on": True})
    calls = [
        arvo_client.post(f"{V1}/vastaajatunnus", json=code_request()),
        arvo_client.get(f"{V1}/status/{tunniste}"),
        arvo_client.patch(f"{V1}/nippu/{tunniste}", json={"tila": "lahetetty"}),
        arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request()),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 503
    assert len(arvo_fake.state.codes) == 1

    await control.post("/_fake/maintenance", json={"on": False})
    assert (await arvo_client.get(f"{V1}/status/{tunniste}")).status_code == 200


async def test_fail_next_fails_exactly_n_calls(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await control.post("/_fake/fail-next", json={"count": 2})
    statuses = [
        (await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request())).status_code
        for _ in range(3)
    ]
    assert statuses == [500, 500, 200]
    assert len(arvo_fake.state.codes) == 1
    logged = (await control.get("/_fake/state")).json()["requests"]
    assert [r["status"] for r in logged] == [500, 500, 200]


async def test_latency_delays_calls(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await control.post("/_fake/latency", json={"seconds": 0.3})
    started = time.monotonic()
    response = await arvo_client.get(f"{V1}/status/none")
    assert response.status_code == 404
    assert time.monotonic() - started >= 0.3

    with pytest.raises(httpx.ReadTimeout):
        await arvo_client.get(f"{V1}/status/none", timeout=0.1)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_fake/maintenance", {"on": "yes"}),
        ("/_fake/latency", {"seconds": -1}),
        ("/_fake/fail-next", {"count": 1.5}),
        ("/_fake/no-survey", {}),
    ],
)
async def test_control_api_validates(
    control: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    assert (await control.post(path, json=body)).status_code == 400


async def test_reset_clears_state_and_misbehaviour(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await make_nippu(arvo_client)
    await control.post("/_fake/no-survey", json={"koulutustoimija_oid": KT_OID})
    await control.post("/_fake/maintenance", json={"on": True})
    await control.post("/_fake/latency", json={"seconds": 5})
    await control.post("/_fake/fail-next", json={"count": 3})

    assert (await control.post("/_fake/reset")).status_code == 200
    state = (await control.get("/_fake/state")).json()
    assert state["codes"] == state["bundles"] == state["requests"] == state["no_survey"] == []
    assert (state["maintenance"], state["latency"], state["fail_next"]) == (False, 0.0, 0)
    assert (await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request())).status_code == 200


# --------------------------------------------------------------------------- SMS gateway


def sms_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sender": "OPH",
        "destination": ["+358401234567"],
        "text": "Anna palautetta https://arvo.example/v/abc?t=s\n"
        "Osoitelähde: Opetushallitus, eHOKS-rekisteri",
        "client_ref": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {SMS_TOKEN}"}],
)
async def test_sms_requires_bearer_token(sms_fake: RunningSms, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=sms_fake.root, headers=headers) as client:
        response = await client.post("/messages", json=sms_request())
    assert response.status_code == 401
    assert sms_fake.state.messages == []


def sms_client(sms_fake: RunningSms) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=sms_fake.root, headers={"Authorization": f"Bearer {SMS_TOKEN}"}
    )


async def test_sms_accepts_message_per_destination(sms_fake: RunningSms) -> None:
    body = sms_request(destination=["+358401234567", "+358501234567"], text="x" * 1000)
    async with sms_client(sms_fake) as client:
        response = await client.post("/messages", json=body)
        listed = (await client.get("/_fake/messages")).json()
    assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    assert set(messages) == {"+358401234567", "+358501234567"}
    assert all(m["status"] == "processing" for m in messages.values())
    assert len({m["message_id"] for m in messages.values()}) == 2
    assert [m["client_ref"] for m in listed] == [body["client_ref"]] * 2
    assert listed[0]["text"] == body["text"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"destination": ["0401234567"]},
        {"destination": ["+358 40 123 4567"]},
        {"destination": ["+123456"]},
        {"destination": ["+3584012345678901"]},
        {"destination": ["+358401234567", "bad"]},
        {"destination": []},
        {"text": "x" * 1001},
        {"text": ""},
        {"client_ref": None},
    ],
)
async def test_sms_rejects_invalid_request(sms_fake: RunningSms, overrides: dict[str, Any]) -> None:
    async with sms_client(sms_fake) as client:
        response = await client.post("/messages", json=sms_request(**overrides))
    assert response.status_code == 400
    assert response.json()["errors"]
    assert sms_fake.state.messages == []


async def test_sms_fail_next(sms_fake: RunningSms) -> None:
    async with sms_client(sms_fake) as client:
        await client.post("/_fake/fail-next", json={"count": 1})
        assert (await client.post("/messages", json=sms_request())).status_code == 500
        assert (await client.post("/messages", json=sms_request())).status_code == 200


@pytest.mark.parametrize("status", ["delivered", "failed"])
async def test_sms_delivery_report_reaches_callback_server(
    sms_fake: RunningSms, status: str
) -> None:
    received: list[dict[str, Any]] = []
    callback = FastAPI()

    @callback.post("/sms/callback")
    async def _report(request: Request) -> dict[str, bool]:
        received.append(await request.json())
        return {"ok": True}

    async with serve(callback) as callback_root, sms_client(sms_fake) as client:
        sent = await client.post("/messages", json=sms_request())
        message_id = sent.json()["messages"]["+358401234567"]["message_id"]
        response = await client.post(
            "/_fake/deliver",
            json={
                "message_id": message_id,
                "status": status,
                "callback_url": f"{callback_root}/sms/callback",
            },
        )
        listed = (await client.get("/_fake/messages")).json()
    assert response.status_code == 200, response.text
    assert response.json()["callback_status"] == 200
    assert len(received) == 1
    assert received[0]["message_id"] == message_id
    assert received[0]["status"] == status
    assert isinstance(received[0]["status_text"], str)
    assert listed[0]["status"] == status


async def test_sms_deliver_errors(sms_fake: RunningSms) -> None:
    async with sms_client(sms_fake) as client:
        sent = await client.post("/messages", json=sms_request())
        message_id = sent.json()["messages"]["+358401234567"]["message_id"]
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{probe.getsockname()[1]}/cb"
        unknown = await client.post(
            "/_fake/deliver", json={"message_id": "x", "status": "delivered", "callback_url": dead}
        )
        bad_status = await client.post(
            "/_fake/deliver",
            json={"message_id": message_id, "status": "read", "callback_url": dead},
        )
        unreachable = await client.post(
            "/_fake/deliver",
            json={"message_id": message_id, "status": "delivered", "callback_url": dead},
        )
    assert unknown.status_code == 404
    assert bad_status.status_code == 400
    assert unreachable.status_code == 502


# --------------------------------------------------------------------------- SMTP


def send_mail(host: str, port: int, to: str, subject: str, text: str) -> None:
    message = EmailMessage()
    message["From"] = "noreply@opintopolku.fi"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    message.add_alternative(f"<p>{text}</p>", subtype="html")
    with smtplib.SMTP(host, port, timeout=5) as client:
        client.send_message(message)


async def test_smtp_receives_mail(smtp_fake: FakeSmtp) -> None:
    text = "Hyvä työpaikkaohjaaja, https://arvo.example/v/abc?t=e"
    await asyncio.to_thread(
        send_mail, smtp_fake.host, smtp_fake.port, "ohjaaja@example.fi", "Palautekysely", text
    )
    [mail] = await smtp_fake.wait_for(1)
    assert mail.mail_from == "noreply@opintopolku.fi"
    assert mail.rcpt_tos == ["ohjaaja@example.fi"]
    assert mail.subject == "Palautekysely"
    assert mail.text.strip() == text
    assert "?t=e" in mail.html

    smtp_fake.clear()
    assert smtp_fake.messages == []


async def test_smtp_json_view(smtp_fake: FakeSmtp) -> None:
    async with serve(create_view_app(smtp_fake)) as root, httpx.AsyncClient(base_url=root) as c:
        await asyncio.to_thread(
            send_mail, smtp_fake.host, smtp_fake.port, "a@example.fi", "Åäö otsikko", "runko"
        )
        await smtp_fake.wait_for(1)
        [mail] = (await c.get("/_fake/messages")).json()
        assert mail["from"] == "noreply@opintopolku.fi"
        assert mail["to"] == ["a@example.fi"]
        assert mail["subject"] == "Åäö otsikko"
        assert mail["text"].strip() == "runko"
        assert (await c.post("/_fake/reset")).status_code == 200
        assert (await c.get("/_fake/messages")).json() == []


def test_fake_smtp_restarts_on_a_new_port() -> None:
    server = FakeSmtp()
    server.start()
    first = server.port
    assert first != 0
    server.stop()
    with server:
        assert server.port != 0
        send_mail(server.host, server.port, "x@example.fi", "s", "t")
    assert len(server.messages) == 1


# --------------------------------------------------------------------------- launcher


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_launcher_runs_all_fakes_and_stops_on_sigterm() -> None:
    ports = {name: _free_port() for name in ("ARVO", "SMS", "SMTP", "SMTP_VIEW")}
    env = {**os.environ, **{f"FAKE_{k}_PORT": str(v) for k, v in ports.items()}}
    env.update(ARVO_USER="u", ARVO_PASSWORD="p", SMS_GATEWAY_TOKEN="t")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        assert b"fakes listening" in line, line
        assert f":{ports['ARVO']}/api/".encode() in line

        async with httpx.AsyncClient(timeout=5) as client:
            arvo_api = f"http://127.0.0.1:{ports['ARVO']}/api/{V1}"
            assert (await client.get(f"{arvo_api}/status/x")).status_code == 401
            authed = await client.get(f"{arvo_api}/status/x", auth=("u", "p"))
            assert authed.status_code == 404
            sms = await client.post(
                f"http://127.0.0.1:{ports['SMS']}/messages",
                json=sms_request(),
                headers={"Authorization": "Bearer t"},
            )
            assert sms.status_code == 200
            await asyncio.to_thread(
                send_mail, "127.0.0.1", ports["SMTP"], "a@example.fi", "hei", "runko"
            )
            view = await client.get(f"http://127.0.0.1:{ports['SMTP_VIEW']}/_fake/messages")
            assert [m["subject"] for m in view.json()] == ["hei"]

        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
