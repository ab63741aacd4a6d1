"""Contract tests of the Arvo client against the fake Arvo served over real HTTP.

Every endpoint and every error of arvo-api.md, the retries, unknown outcomes, the circuit
breaker, and that the password shows up nowhere.
"""

from __future__ import annotations

import base64
import logging
import socket
import uuid
from datetime import date
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.arvo_adapter.arvo import (
    ArvoBadRequest,
    ArvoCircuitOpen,
    ArvoClient,
    ArvoError,
    ArvoNoSurvey,
    ArvoNotFound,
    ArvoRejected,
    ArvoUnavailable,
    ArvoUnknownOutcome,
    BreakerState,
)
from services.arvo_adapter.arvo.models import (
    NippuPatch,
    NippuRequest,
    NippuTunnus,
    TyopaikkakyselyRequest,
    VastaajatunnusPatch,
    VastaajatunnusRequest,
)
from services.arvo_adapter.settings import ArvoAdapterSettings
from tests.integration.arvo_adapter.conftest import (
    ARVO_PASSWORD,
    ARVO_USER,
    ClientFactory,
    FakeArvo,
)
from tests.support.polling import eventually

KT_OID = "1.2.246.562.10.10000000001"


def code_request(**overrides: Any) -> VastaajatunnusRequest:
    values: dict[str, Any] = {
        "request_id": uuid.uuid4(),
        "koulutustoimija_oid": KT_OID,
        "oppilaitos_oid": "1.2.246.562.10.20000000002",
        "tyonantaja": "1234567-8",
        "tyopaikka": "Perhosen Päiväkoti",
        "tyopaikka_normalisoitu": "perhosen_paivakoti",
        "tutkintotunnus": "351407",
        "tutkinnon_osa": "106727",
        "tutkintonimike": ["10024"],
        "osaamisala": ["1525"],
        "tyopaikkajakson_alkupvm": date(2022, 1, 10),
        "tyopaikkajakson_loppupvm": date(2022, 3, 15),
        "rahoituskausi_pvm": date(2022, 3, 15),
        "osa_aikaisuus": 80,
        "sopimustyyppi": "oppisopimus",
        "oppisopimuksen_perusta": "01",
        "vastaamisajan_alkupvm": date(2022, 3, 16),
        "vastaamisajan_loppupvm": date(2022, 4, 14),
    }
    values.update(overrides)
    return VastaajatunnusRequest(**values)


def nippu_request(tunnukset: list[str], **overrides: Any) -> NippuRequest:
    values: dict[str, Any] = {
        "tunniste": f"perhosen_paivakoti_2022-03-16_{uuid.uuid4().hex[:6]}",
        "koulutustoimija_oid": KT_OID,
        "tutkintotunnus": "351407",
        "tyonantaja": "1234567-8",
        "tyopaikka": "Perhosen Päiväkoti",
        "tunnukset": [
            NippuTunnus(tunnus=t, tyopaikkajakson_loppupvm=date(2022, 3, 15)) for t in tunnukset
        ],
        "voimassa_alkupvm": date(2022, 3, 16),
        "request_id": uuid.uuid4(),
    }
    values.update(overrides)
    return NippuRequest(**values)


def tpk_request() -> TyopaikkakyselyRequest:
    return TyopaikkakyselyRequest(
        koulutustoimija_oid=KT_OID,
        tyonantaja="1234567-8",
        tyopaikka="Perhosen Päiväkoti",
        tyopaikka_normalisoitu="perhosen_paivakoti",
        tiedonkeruu_alkupvm=date(2024, 7, 1),
        tiedonkeruu_loppupvm=date(2024, 12, 31),
        vastaamisajan_alkupvm=date(2025, 1, 1),
        vastaamisajan_loppupvm=date(2025, 2, 28),
        request_id=uuid.uuid4(),
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --------------------------------------------------------------------------- success paths


async def test_create_code_sends_every_background_field(
    client: ArvoClient, fake_arvo: FakeArvo
) -> None:
    request = code_request(kesto=41)
    created = await client.create_vastaajatunnus(request)
    code = fake_arvo.state.codes[created.tunnus]
    assert code.request_id == str(request.request_id)
    assert code.data == request.body()
    assert code.data["kesto"] == 41
    assert code.data["metatiedot"] == {"ei_kuulu_lahetettavien_perusjoukkoon": False}
    assert code.data["toimipiste_oid"] is None  # nulls are sent as the contract says

    without_kesto = await client.create_vastaajatunnus(code_request())
    assert "kesto" not in fake_arvo.state.codes[without_kesto.tunnus].data


async def test_patch_and_delete_code(client: ArvoClient, fake_arvo: FakeArvo) -> None:
    tunnus = (await client.create_vastaajatunnus(code_request())).tunnus
    await client.patch_vastaajatunnus(tunnus, VastaajatunnusPatch(kesto=12))
    assert fake_arvo.state.codes[tunnus].patches == [{"kesto": 12}]

    assert await client.delete_vastaajatunnus(tunnus) is True
    assert fake_arvo.state.codes[tunnus].deleted
    assert await client.delete_vastaajatunnus(tunnus) is False  # already gone: goal reached
    with pytest.raises(ArvoNotFound) as raised:
        await client.patch_vastaajatunnus(tunnus, VastaajatunnusPatch(kesto=1))
    assert raised.value.status == 404 and raised.value.errors


async def test_nippu_link_status_patch_and_delete(client: ArvoClient, fake_arvo: FakeArvo) -> None:
    tunnus = (await client.create_vastaajatunnus(code_request())).tunnus
    request = nippu_request([tunnus])
    created = await client.create_nippu(request)
    assert created.nippulinkki == f"{fake_arvo.root}/v/{request.tunniste}"
    assert created.voimassa_loppupvm == date(2022, 4, 14)

    status = await client.status(request.tunniste)
    assert (status.vastattu, status.voimassa_loppupvm) == (False, date(2022, 4, 14))
    await fake_arvo.post(f"answer/{request.tunniste}")
    assert (await client.status(request.tunniste)).vastattu is True

    await client.patch_nippu(
        request.tunniste, NippuPatch(tila="lahetetty", voimassa_loppupvm=date(2022, 4, 20))
    )
    bundle = fake_arvo.state.bundles[request.tunniste]
    assert bundle.patches == [{"tila": "lahetetty", "voimassa_loppupvm": "2022-04-20"}]

    assert await client.delete_nippu(request.tunniste) is True
    assert await client.delete_nippu(request.tunniste) is False
    with pytest.raises(ArvoNotFound):
        await client.status(request.tunniste)
    with pytest.raises(ArvoNotFound):
        await client.patch_nippu(request.tunniste, NippuPatch(tila="bounced"))


async def test_tyopaikkakysely_link(client: ArvoClient, fake_arvo: FakeArvo) -> None:
    created = await client.create_tyopaikkakysely_tunnus(tpk_request())
    assert created.kysely_linkki == f"{fake_arvo.root}/v/{created.tunnus}"
    assert created.voimassa_loppupvm == date(2025, 2, 28)
    assert created.tunnus in fake_arvo.state.tpk


# --------------------------------------------------------------------------- Arvo says no


async def test_no_survey_is_its_own_error_and_not_retried(
    client: ArvoClient, fake_arvo: FakeArvo
) -> None:
    await fake_arvo.post("no-survey", {"koulutustoimija_oid": KT_OID})
    with pytest.raises(ArvoNoSurvey) as raised:
        await client.create_vastaajatunnus(code_request())
    assert raised.value.errors == ["no survey for koulutustoimija/date"]
    assert len(await fake_arvo.requests()) == 1


async def test_bad_request_carries_arvos_errors(client: ArvoClient, fake_arvo: FakeArvo) -> None:
    with pytest.raises(ArvoBadRequest) as raised:
        await client.create_vastaajatunnus(code_request(tyonantaja="not-a-ytunnus"))
    assert raised.value.status == 400
    assert any(e.startswith("tyonantaja: invalid format") for e in raised.value.errors)
    assert "tyonantaja" in str(raised.value)
    assert len(await fake_arvo.requests()) == 1


async def test_same_tunniste_twice_is_a_bad_request(client: ArvoClient) -> None:
    first = (await client.create_vastaajatunnus(code_request())).tunnus
    second = (await client.create_vastaajatunnus(code_request())).tunnus
    request = nippu_request([first])
    await client.create_nippu(request)
    with pytest.raises(ArvoBadRequest) as raised:
        await client.create_nippu(
            nippu_request([second], tunniste=request.tunniste, request_id=uuid.uuid4())
        )
    assert f"tunniste: {request.tunniste} already used" in raised.value.errors


async def test_other_4xx_is_rejected_not_retried(
    make_client: ClientFactory, fake_arvo: FakeArvo
) -> None:
    client = make_client(arvo_password="wrong")
    with pytest.raises(ArvoRejected) as raised:
        await client.status("x")
    assert type(raised.value) is ArvoRejected and raised.value.status == 401
    assert len(await fake_arvo.requests()) == 1
    assert client.breaker.state is BreakerState.CLOSED  # Arvo answered: it is up


# --------------------------------------------------------------------------- retries


async def test_5xx_is_retried_with_the_same_request_id_then_succeeds(
    client: ArvoClient, fake_arvo: FakeArvo
) -> None:
    retries = metric("arvo_retries_total", endpoint="create_vastaajatunnus")
    await fake_arvo.post("fail-next", {"count": 2})
    request = code_request()
    created = await client.create_vastaajatunnus(request)
    logged = await fake_arvo.requests()
    assert [r["status"] for r in logged] == [500, 500, 200]
    assert {r["request_id"] for r in logged} == {str(request.request_id)}
    assert list(fake_arvo.state.codes) == [created.tunnus]
    assert metric("arvo_retries_total", endpoint="create_vastaajatunnus") == retries + 2


async def test_retries_are_bounded_by_attempts(client: ArvoClient, fake_arvo: FakeArvo) -> None:
    calls = metric("arvo_calls_total", endpoint="patch_nippu", outcome="unavailable")
    await fake_arvo.post("faults", {"fail": 1.0})
    with pytest.raises(ArvoUnavailable) as raised:
        await client.patch_nippu("x", NippuPatch(tila="lahetetty"))
    assert raised.value.status == 500
    assert len(await fake_arvo.requests()) == 3
    assert metric("arvo_calls_total", endpoint="patch_nippu", outcome="unavailable") == calls + 1


async def test_retry_after_beyond_the_budget_gives_up_at_once(
    client: ArvoClient, fake_arvo: FakeArvo
) -> None:
    await fake_arvo.post("maintenance", {"on": True})
    with pytest.raises(ArvoUnavailable) as raised:
        await client.status("x")
    assert (raised.value.status, raised.value.retry_after) == (503, 60.0)
    assert len(await fake_arvo.requests()) == 1


async def test_refused_outside_agreed_hours_says_when_to_come_back(
    client: ArvoClient, fake_arvo: FakeArvo
) -> None:
    await fake_arvo.post("hours", {"start": "08:00", "end": "16:00", "now": "15:00"})
    await client.create_tyopaikkakysely_tunnus(tpk_request())
    await fake_arvo.post("hours", {"start": "08:00", "end": "16:00", "now": "16:00"})
    with pytest.raises(ArvoUnavailable) as raised:
        await client.create_tyopaikkakysely_tunnus(tpk_request())
    assert raised.value.retry_after == 16 * 3600
    assert "outside agreed hours" in raised.value.errors[0]
    assert len(fake_arvo.state.tpk) == 1


async def test_connection_refused_is_unavailable(make_client: ClientFactory) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/api/"
    client = make_client(arvo_url=dead)
    with pytest.raises(ArvoUnavailable) as raised:
        await client.create_vastaajatunnus(code_request())
    assert "ConnectError" in str(raised.value)
    assert client.breaker.consecutive_failures == 3


# --------------------------------------------------------------------------- unknown outcomes


async def test_timeout_of_a_create_is_an_unknown_outcome_not_retried(
    client: ArvoClient, fake_arvo: FakeArvo
) -> None:
    await fake_arvo.post("faults", {"timeout": 1.0, "timeout_seconds": 1.0})
    request = code_request()
    with pytest.raises(ArvoUnknownOutcome) as raised:
        await client.create_vastaajatunnus(request)
    assert raised.value.request_id == str(request.request_id)
    assert "ReadTimeout" in str(raised.value)
    assert len(await fake_arvo.requests()) == 1  # not sent again: a second code could result
    assert len(fake_arvo.state.codes) == 1  # ... because Arvo did make the first one


@pytest.mark.parametrize(("lose_as", "shown"), [("drop", "RemoteProtocolError"), ("504", "504")])
async def test_lost_answer_of_a_create_is_an_unknown_outcome(
    client: ArvoClient, fake_arvo: FakeArvo, lose_as: str, shown: str
) -> None:
    tunnus = (await client.create_vastaajatunnus(code_request())).tunnus
    await fake_arvo.post("faults", {"lose": 1.0, "lose_as": lose_as})
    request = nippu_request([tunnus])
    with pytest.raises(ArvoUnknownOutcome) as raised:
        await client.create_nippu(request)
    assert shown in str(raised.value)
    assert request.tunniste in fake_arvo.state.bundles
    assert len(await fake_arvo.requests()) == 2


async def test_idempotent_calls_retry_unknown_outcomes(
    client: ArvoClient, fake_arvo: FakeArvo
) -> None:
    tunnus = (await client.create_vastaajatunnus(code_request())).tunnus
    await fake_arvo.post("faults", {"lose": 1.0, "lose_as": "502"})
    with pytest.raises(ArvoUnknownOutcome) as raised:
        await client.patch_vastaajatunnus(tunnus, VastaajatunnusPatch(kesto=3))
    assert raised.value.status == 502
    assert len(await fake_arvo.requests()) == 1 + 3
    assert fake_arvo.state.codes[tunnus].patches == [{"kesto": 3}] * 3


async def test_status_read_has_a_short_total_budget(
    make_client: ClientFactory, fake_arvo: FakeArvo
) -> None:
    client = make_client(arvo_status_timeout_seconds=0.2, arvo_timeout_seconds=5)
    await fake_arvo.post("latency", {"seconds": 0.5})
    with pytest.raises(ArvoUnknownOutcome):
        await client.status("x")
    assert len(await fake_arvo.requests()) == 1


# --------------------------------------------------------------------------- circuit breaker


async def test_circuit_opens_under_a_failing_arvo_and_closes_after_recovery(
    make_client: ClientFactory, fake_arvo: FakeArvo
) -> None:
    client = make_client(arvo_breaker_failure_threshold=4, arvo_max_attempts=3)
    await fake_arvo.post("faults", {"fail": 1.0})
    with pytest.raises(ArvoUnavailable):
        await client.status("x")  # three failed attempts
    with pytest.raises(ArvoCircuitOpen):
        await client.status("x")  # the fourth opens the circuit; no retry into it
    assert client.breaker.state is BreakerState.OPEN
    assert metric("arvo_circuit_state") == 2
    assert len(await fake_arvo.requests()) == 4

    with pytest.raises(ArvoCircuitOpen) as raised:
        await client.create_vastaajatunnus(code_request())
    assert raised.value.retry_after is not None and raised.value.retry_after <= 0.3
    assert len(await fake_arvo.requests()) == 4  # not called at all

    # Still failing after the cooldown: the half-open trial fails and it opens again.
    await eventually(
        lambda: _async(client.breaker.state), lambda s: s is BreakerState.HALF_OPEN, timeout=5
    )
    with pytest.raises(ArvoCircuitOpen):
        await client.status("x")
    assert len(await fake_arvo.requests()) == 5

    await fake_arvo.post("faults", {})
    await eventually(
        lambda: _async(client.breaker.state), lambda s: s is BreakerState.HALF_OPEN, timeout=5
    )
    with pytest.raises(ArvoNotFound):  # an answer: Arvo is back
        await client.status("x")
    assert client.breaker.state is BreakerState.CLOSED
    assert metric("arvo_circuit_state") == 0
    await client.create_vastaajatunnus(code_request())


async def _async(value: Any) -> Any:
    return value


# --------------------------------------------------------------------------- secrets


async def test_password_never_in_errors_logs_or_settings(
    make_client: ClientFactory, fake_arvo: FakeArvo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{ARVO_USER}:{ARVO_PASSWORD}".encode()).decode()
    errors: list[ArvoError] = []

    client = make_client()
    await fake_arvo.post("faults", {"fail": 1.0})
    for call in (client.status("x"), client.create_vastaajatunnus(code_request())):
        with pytest.raises(ArvoError) as raised:
            await call
        errors.append(raised.value)
    await fake_arvo.post("faults", {"timeout": 1.0, "timeout_seconds": 1.0})
    with pytest.raises(ArvoUnknownOutcome) as unknown:
        await client.create_vastaajatunnus(code_request())
    errors.append(unknown.value)
    with pytest.raises(ArvoRejected) as rejected:
        await make_client(arvo_password=ARVO_PASSWORD + "-wrong").status("x")
    errors.append(rejected.value)

    settings = ArvoAdapterSettings(arvo_password=ARVO_PASSWORD)
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [caplog.text, repr(settings), str(settings.model_dump())]
    assert any("arvo call failed" in r.getMessage() for r in caplog.records)
    for text in texts:
        assert ARVO_PASSWORD not in text
        assert basic not in text
    for record in caplog.records:
        assert ARVO_PASSWORD not in str(record.__dict__)
