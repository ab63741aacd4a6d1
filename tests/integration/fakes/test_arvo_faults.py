"""The fake Arvo's failure modes: seeded faults, lost answers, agreed hours, duplicate counts."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.fakes.conftest import RunningArvo
from tests.integration.fakes.test_fakes import (
    V1,
    code_request,
    make_code,
    nippu_request,
    tpk_request,
)


async def counts(control: httpx.AsyncClient) -> dict[str, int]:
    state = (await control.get("/_fake/state")).json()
    result: dict[str, int] = state["counts"]
    return result


async def set_faults(control: httpx.AsyncClient, **config: Any) -> None:
    response = await control.post("/_fake/faults", json=config)
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- 500s


async def status_sequence(arvo_client: httpx.AsyncClient, n: int) -> list[int]:
    return [(await arvo_client.get(f"{V1}/status/none")).status_code for _ in range(n)]


async def test_fail_rate_is_reproducible_from_the_seed(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    rng = random.Random(7)
    expected = [500 if rng.random() < 0.3 else 404 for _ in range(40)]

    await set_faults(control, seed=7, fail=0.3)
    first = await status_sequence(arvo_client, 40)
    await set_faults(control, seed=7, fail=0.3)  # the same seed starts the same sequence
    second = await status_sequence(arvo_client, 40)
    await set_faults(control, seed=8, fail=0.3)
    other = await status_sequence(arvo_client, 40)

    assert first == second == expected
    assert 0 < first.count(500) < 40
    assert other != first


async def test_failed_call_does_nothing(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await set_faults(control, fail=1.0)
    response = await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request())
    assert response.status_code == 500
    assert response.json()["errors"]
    assert arvo_fake.state.codes == {}
    [logged] = (await control.get("/_fake/state")).json()["requests"]
    assert (logged["status"], logged["fault"]) == (500, "fail")


async def test_faults_off_with_empty_config(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await set_faults(control, fail=1.0)
    await set_faults(control)
    assert await status_sequence(arvo_client, 5) == [404] * 5


# --------------------------------------------------------------------------- unknown outcomes


async def test_timeout_does_the_effect_then_holds_the_answer(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await set_faults(control, timeout=1.0, timeout_seconds=1.0)
    body = code_request()
    with pytest.raises(httpx.ReadTimeout):
        await arvo_client.post(f"{V1}/vastaajatunnus", json=body, timeout=0.2)
    [code] = arvo_fake.state.codes.values()
    assert code.request_id == body["request_id"]
    [logged] = (await control.get("/_fake/state")).json()["requests"]
    assert logged["fault"] == "timeout"


async def test_lost_answer_drops_the_connection_after_the_effect(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await set_faults(control, lose=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request())
    assert len(arvo_fake.state.codes) == 1
    [logged] = (await control.get("/_fake/state")).json()["requests"]
    assert (logged["status"], logged["fault"]) == (None, "lose")


@pytest.mark.parametrize("status", ["502", "504"])
async def test_lost_answer_as_gateway_error_after_the_effect(
    arvo_fake: RunningArvo,
    arvo_client: httpx.AsyncClient,
    control: httpx.AsyncClient,
    status: str,
) -> None:
    await set_faults(control, lose=1.0, lose_as=status)
    response = await arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request())
    assert response.status_code == int(status)
    assert len(arvo_fake.state.tpk) == 1


async def test_lost_answer_of_a_rejected_call_has_no_effect(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await set_faults(control, lose=1.0, lose_as="502")
    bad = code_request(tyonantaja="not-a-ytunnus")
    assert (await arvo_client.post(f"{V1}/vastaajatunnus", json=bad)).status_code == 502
    assert arvo_fake.state.codes == {}


async def test_mixed_faults_follow_the_seed(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    rng = random.Random(3)
    expected = []
    for _ in range(30):
        x = rng.random()
        expected.append(500 if x < 0.3 else 502 if 0.3 <= x < 0.4 else 404)
    await set_faults(control, seed=3, fail=0.3, lose=0.1, lose_as="502")
    assert await status_sequence(arvo_client, 30) == expected


# --------------------------------------------------------------------------- agreed hours


async def set_hours(control: httpx.AsyncClient, **body: Any) -> None:
    response = await control.post("/_fake/hours", json=body)
    assert response.status_code == 200, response.text


async def test_link_requests_refused_outside_agreed_hours(
    arvo_fake: RunningArvo, arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    tunnus = await make_code(arvo_client)
    await set_hours(control, start="08:00", end="16:00", now="20:00")

    # Answer codes, PATCHes and status reads are not link requests.
    assert (await arvo_client.post(f"{V1}/vastaajatunnus", json=code_request())).is_success
    nippu = await arvo_client.post(f"{V1}/nippu", json=nippu_request([tunnus]))
    tpk = await arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request())
    for refused in (nippu, tpk):
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == str(12 * 3600)
        assert "outside agreed hours 08:00-16:00" in refused.json()["errors"][0]
    assert arvo_fake.state.bundles == arvo_fake.state.tpk == {}

    await set_hours(control, start="08:00", end="16:00", now="08:00")
    assert (await arvo_client.post(f"{V1}/nippu", json=nippu_request([tunnus]))).is_success


@pytest.mark.parametrize(
    ("now", "refused_for"), [("23:00", None), ("05:59", None), ("06:00", 16 * 3600)]
)
async def test_agreed_hours_across_midnight(
    arvo_client: httpx.AsyncClient,
    control: httpx.AsyncClient,
    now: str,
    refused_for: int | None,
) -> None:
    await set_hours(control, start="22:00", end="06:00", now=now)
    response = await arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request())
    if refused_for is None:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(refused_for)


async def test_agreed_hours_switched_off(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await set_hours(control, start="08:00", end="09:00", now="12:00")
    await set_hours(control, start=None)
    response = await arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request())
    assert response.status_code == 200


# --------------------------------------------------------------------------- counts


async def test_state_counts_live_deleted_and_duplicates(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    assert set((await counts(control)).values()) == {0}

    body = code_request()
    twice = [
        (await arvo_client.post(f"{V1}/vastaajatunnus", json=body)).json()["tunnus"]
        for _ in range(2)
    ]
    await make_code(arvo_client, metatiedot={"ei_kuulu_lahetettavien_perusjoukkoon": True})
    other = await make_code(arvo_client)
    got = await counts(control)
    assert (got["codes_live"], got["codes_created_twice"], got["duplicate_live_codes"]) == (4, 1, 1)
    assert (got["unbundled_codes"], got["unbundled_codes_not_sent"]) == (4, 1)

    assert (await arvo_client.delete(f"{V1}/vastaajatunnus/{twice[1]}")).is_success
    first = nippu_request([twice[0]], tunniste="perhosen_paivakoti_2022-03-16_aaaaaa")
    second = nippu_request([other], tunniste="perhosen_paivakoti_2022-03-16_bbbbbb")
    for bundle in (first, second):
        assert (await arvo_client.post(f"{V1}/nippu", json=bundle)).is_success
    for _ in range(2):
        assert (
            await arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request())
        ).is_success

    got = await counts(control)
    assert got == {
        "codes_live": 3,
        "codes_deleted": 1,
        "codes_bundled": 2,
        "unbundled_codes": 1,
        "unbundled_codes_not_sent": 1,
        "bundles_live": 2,
        "bundles_deleted": 0,
        "tpk_links": 2,
        "codes_created_twice": 1,  # history: the fake saw it, even though one is deleted
        "duplicate_live_codes": 0,
        "nippu_requests_linked_twice": 0,
        "bundles_with_several_links": 1,
        "tpk_with_several_links": 1,
    }

    assert (await arvo_client.delete(f"{V1}/nippu/{second['tunniste']}")).is_success
    got = await counts(control)
    assert (got["bundles_live"], got["bundles_deleted"]) == (1, 1)
    assert (got["bundles_with_several_links"], got["unbundled_codes"]) == (0, 2)


async def test_same_nippu_request_linked_twice_is_counted(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    request_id = str(uuid.uuid4())
    for _ in range(2):
        tunnus = await make_code(arvo_client)
        body = nippu_request([tunnus], request_id=request_id)
        assert (await arvo_client.post(f"{V1}/nippu", json=body)).is_success
    assert (await counts(control))["nippu_requests_linked_twice"] == 1


# --------------------------------------------------------------------------- control API


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_fake/faults", {"fail": 1.5}),
        ("/_fake/faults", {"fail": 0.6, "timeout": 0.6}),
        ("/_fake/faults", {"seed": "x"}),
        ("/_fake/faults", {"timeout_seconds": -1}),
        ("/_fake/faults", {"lose_as": "500"}),
        ("/_fake/hours", {"start": "8:00", "end": "16:00"}),
        ("/_fake/hours", {"start": "08:00"}),
        ("/_fake/hours", {"start": "08:00", "end": "08:00"}),
        ("/_fake/hours", {"start": "08:00", "end": "16:00", "now": "25:00"}),
    ],
)
async def test_fault_controls_validate(
    control: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await control.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["errors"]


async def test_reset_clears_faults_and_hours(
    arvo_client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    await set_faults(control, fail=1.0)
    await set_hours(control, start="08:00", end="09:00", now="12:00")
    assert (await control.post("/_fake/reset")).status_code == 200
    state = (await control.get("/_fake/state")).json()
    assert state["faults"]["fail"] == 0 and state["hours"] is None
    response = await arvo_client.post(f"{V1}/tyopaikkakysely-tunnus", json=tpk_request())
    assert response.status_code == 200
