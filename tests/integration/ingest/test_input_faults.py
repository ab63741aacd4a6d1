"""Faults found by probing the ingest (issue 11): numbers beyond 64 bits, deep nesting,
OIDs of any length, and the text `\\u0000`, over HTTP and the `ehoks.changes` queue."""

from __future__ import annotations

import json
from typing import Any

import orjson

from tests.integration.ingest.conftest import stored_versions
from tests.integration.ingest.test_queue import invalid_messages, send
from tests.support.examples import EHOKS_EXAMPLES, KOSKI_EXAMPLES
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import Running

EXAMPLE = EHOKS_EXAMPLES / "hoks_yksi_tutkinnonosa.json"
STUDY_RIGHT = KOSKI_EXAMPLES / "koski_api_opiskeluoikeus_1.2.246.562.15.13312692646.json"
JSON = {"content-type": "application/json"}


def hoks_with(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    document.pop("id", None)
    return {**document, **extra}


def raw_hoks(extra_json: str) -> bytes:
    """The example HOKS with `"extra": <extra_json>` spliced in as raw JSON text."""
    return (
        json.dumps(hoks_with(extra=None))
        .replace('"extra": null', f'"extra": {extra_json}')
        .encode()
    )


async def test_a_change_only_in_an_integer_beyond_64_bits_is_a_new_version(
    ingest: Running, new_id: Any
) -> None:
    hoks_id = new_id()
    first = await ingest.client.put(
        f"/api/v1/hoks/{hoks_id}", content=raw_hoks(str(2**64 + 1)), headers=JSON
    )
    assert first.status_code == 201, first.text
    second = await ingest.client.put(
        f"/api/v1/hoks/{hoks_id}", content=raw_hoks(str(2**64 + 2)), headers=JSON
    )
    assert second.status_code == 200, second.text
    assert second.json()["changed"] is True, "a change in a big integer is a change"
    assert await stored_versions(ingest, str(hoks_id)) == 2
    again = await ingest.client.put(
        f"/api/v1/hoks/{hoks_id}", content=raw_hoks(str(2**64 + 2)), headers=JSON
    )
    assert again.json()["changed"] is False


async def test_a_change_in_a_decimal_beyond_double_precision_is_a_new_version(
    ingest: Running, new_id: Any
) -> None:
    hoks_id = new_id()
    for number, changed in (("1.0", None), ("1.00000000000000000001", True), ("1.0", True)):
        response = await ingest.client.put(
            f"/api/v1/hoks/{hoks_id}", content=raw_hoks(number), headers=JSON
        )
        assert response.status_code in (200, 201), response.text
        if changed is not None:
            assert response.json()["changed"] is changed, number


async def test_nesting_beyond_the_bound_is_a_422_naming_the_problem(
    ingest: Running, new_id: Any
) -> None:
    for levels in (65, 300, 1000, 100_000):
        hoks_id = new_id()
        response = await ingest.client.put(
            f"/api/v1/hoks/{hoks_id}", content=raw_hoks("[" * levels + "]" * levels), headers=JSON
        )
        assert response.status_code == 422, (levels, response.text)
        assert "nest" in response.json()["message"], response.text
        assert await stored_versions(ingest, str(hoks_id)) == 0


async def test_nesting_within_the_bound_is_accepted(ingest: Running, new_id: Any) -> None:
    response = await ingest.client.put(
        f"/api/v1/hoks/{new_id()}", content=raw_hoks("[" * 60 + "]" * 60), headers=JSON
    )
    assert response.status_code == 201, response.text


async def test_study_right_oids_of_the_wrong_length_are_a_422(ingest: Running) -> None:
    document = json.loads(STUDY_RIGHT.read_text())
    for digits in (3_000, 30_000):
        oid = "1.2.246.562.15." + "1" * digits
        response = await ingest.client.put(
            f"/api/v1/opiskeluoikeudet/{oid}", json={**document, "oid": oid}
        )
        assert response.status_code == 422, (digits, response.text[:300])
        assert ["path", "oid"] in [d["loc"] for d in response.json()["details"]]


async def test_oids_in_a_hoks_are_bounded_by_their_format(ingest: Running, new_id: Any) -> None:
    hoks_id = new_id()
    document = hoks_with(**{"opiskeluoikeus-oid": "1.2.246.562.15." + "1" * 3000})
    document["oppija-oid"] = "1.2.246.562.24.1"
    response = await ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=document)
    assert response.status_code == 422, response.text
    locs = [d["loc"] for d in response.json()["details"]]
    assert ["body", "opiskeluoikeus-oid"] in locs and ["body", "oppija-oid"] in locs
    assert await stored_versions(ingest, str(hoks_id)) == 0


async def test_a_backslash_before_u0000_is_text_not_nul(ingest: Running, new_id: Any) -> None:
    hoks_id = new_id()
    legal = raw_hoks(r'"C:\\u0000 is a path, not a NUL"')
    assert b"\\\\u0000" in legal
    response = await ingest.client.put(f"/api/v1/hoks/{hoks_id}", content=legal, headers=JSON)
    assert response.status_code == 201, response.text
    nul = await ingest.client.put(
        f"/api/v1/hoks/{new_id()}", content=raw_hoks(r'"a \\\u0000 NUL"'), headers=JSON
    )
    assert nul.status_code == 422, nul.text
    assert ["body", "extra"] in [d["loc"] for d in nul.json()["details"]]


async def test_queue_keeps_big_integers_exact(ingest: Running, infra: Infra, new_id: Any) -> None:
    hoks_id = new_id()
    for number in (2**64 + 1, 2**64 + 2):
        document = orjson.dumps(hoks_with(extra=None)).replace(
            b'"extra":null', b'"extra":%d' % number
        )
        await send(
            infra, b'{"type":"hoks.upsert","hoks_id":%d,"document":%s}' % (hoks_id, document)
        )
    await eventually(
        lambda: stored_versions(ingest, str(hoks_id)), lambda n: n == 2, what="two versions"
    )


async def test_queue_sends_too_deep_documents_to_the_invalid_queue(
    ingest: Running, infra: Infra, new_id: Any
) -> None:
    await invalid_messages(infra)
    hoks_id = new_id()
    body = b'{"type":"hoks.upsert","hoks_id":%d,"document":%s}' % (
        hoks_id,
        raw_hoks("[" * 300 + "]" * 300),
    )
    await send(infra, body)
    [message] = await eventually(
        lambda: invalid_messages(infra), lambda got: len(got) > 0, what="invalid message"
    )
    assert "nest" in str((message.headers or {})["x-error"])
    assert await stored_versions(ingest, str(hoks_id)) == 0
