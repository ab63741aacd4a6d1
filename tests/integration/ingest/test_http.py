"""The ingest's HTTP contract (api.md, "ingest") over real HTTP, PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.ingest.domain.canonical import content_hash
from services.ingest.store.tables import documents
from tests.integration.ingest.conftest import stored_versions
from tests.support.events import EventCapture
from tests.support.examples import EXAMPLES
from tests.support.services import READER_TOKEN, Running

DATA = EXAMPLES
EHOKS = sorted((DATA / "ehoks-examples").glob("*.json"))
KOSKI = DATA / "koski-examples"
JSON = {"content-type": "application/json"}


def koski_study_rights() -> list[dict[str, Any]]:
    """Every study right in the Koski examples, nested ones included."""
    found: list[dict[str, Any]] = []
    for path in sorted(KOSKI.glob("koski_api_*.json")):
        doc = json.loads(path.read_text())
        people = doc if isinstance(doc, list) else [doc]
        for item in people:
            if "opiskeluoikeudet" in item:
                found.extend(item["opiskeluoikeudet"])
            elif "oid" in item:
                found.append(item)
    return found


def is_hoks_event(hoks_id: int, type_: str = "hoks.changed") -> Any:
    return lambda e: e["type"] == type_ and e["payload"]["hoks_id"] == hoks_id


def test_examples_are_present() -> None:
    assert len(EHOKS) == 8, f"expected the 8 eHOKS examples under {DATA}"
    assert len(koski_study_rights()) >= 5


@pytest.mark.parametrize("path", EHOKS, ids=[p.stem for p in EHOKS])
async def test_every_ehoks_example_is_accepted_and_emits_its_jaksot(
    ingest: Running, events: EventCapture, new_id: Any, path: Path
) -> None:
    hoks_id = new_id()
    document = json.loads(path.read_text())
    response = await ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=document)
    assert response.status_code == 201, response.text
    assert response.json() == {"hoks_id": hoks_id, "version": 1, "changed": True}
    [event] = await events.wait_for(is_hoks_event(hoks_id))
    payload = event["payload"]
    assert payload["version"] == 1
    assert payload["opiskeluoikeus_oid"] == document["opiskeluoikeus-oid"]
    raw = json.dumps(document)
    expected = raw.count("osaamisenhankkimistapa_koulutussopimus") + raw.count(
        "osaamisenhankkimistapa_oppisopimus"
    )
    assert len(payload["jaksot"]) == expected
    assert "document" not in payload, "the event carries normalised jaksot, not the raw HOKS"


@pytest.mark.parametrize("document", koski_study_rights(), ids=lambda d: d["oid"])
async def test_every_koski_study_right_is_accepted(
    ingest: Running, events: EventCapture, document: dict[str, Any]
) -> None:
    response = await ingest.client.put(f"/api/v1/opiskeluoikeudet/{document['oid']}", json=document)
    assert response.status_code in (200, 201), response.text
    await events.wait_for(
        lambda e: e["type"] == "opiskeluoikeus.changed" and e["payload"]["oid"] == document["oid"]
    )


async def test_same_document_twice_is_acknowledged_and_emits_nothing(
    ingest: Running, events: EventCapture, new_id: Any
) -> None:
    hoks_id = new_id()
    document = json.loads(EHOKS[0].read_text())
    first = await ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=document)
    reordered = dict(reversed(list(document.items())))
    second = await ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=reordered)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == {"hoks_id": hoks_id, "version": 1, "changed": False}
    await events.wait_for(is_hoks_event(hoks_id))
    changed = copy.deepcopy(document)
    changed["sahkoposti"] = "uusi@example.org"
    third = await ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=changed)
    assert third.json() == {"hoks_id": hoks_id, "version": 2, "changed": True}
    emitted = await events.wait_for(is_hoks_event(hoks_id), count=2)
    assert [e["payload"]["version"] for e in emitted] == [1, 2]
    assert await stored_versions(ingest, str(hoks_id)) == 2


async def test_delete_emits_once_and_unknown_is_404(
    ingest: Running, events: EventCapture, new_id: Any
) -> None:
    hoks_id = new_id()
    document = json.loads(EHOKS[1].read_text())
    await ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=document)
    assert (await ingest.client.delete(f"/api/v1/hoks/{hoks_id}")).status_code == 204
    assert (await ingest.client.delete(f"/api/v1/hoks/{hoks_id}")).status_code == 204
    [deleted] = await events.wait_for(is_hoks_event(hoks_id, "hoks.deleted"))
    assert deleted["payload"]["version"] == 2
    assert (await ingest.client.delete(f"/api/v1/hoks/{new_id()}")).status_code == 404
    again = await ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=document)
    assert again.json() == {"hoks_id": hoks_id, "version": 3, "changed": True}
    await events.wait_for(is_hoks_event(hoks_id), count=2)
    assert len(events.matching(is_hoks_event(hoks_id, "hoks.deleted"))) == 1


async def test_concurrent_copies_of_one_document_make_one_version(
    ingest: Running, events: EventCapture, new_id: Any
) -> None:
    hoks_id = new_id()
    document = json.loads(EHOKS[2].read_text())
    responses = await asyncio.gather(
        *(ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=document) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert sum(r.json()["changed"] for r in responses) == 1
    await events.wait_for(is_hoks_event(hoks_id))
    assert await stored_versions(ingest, str(hoks_id)) == 1


async def test_concurrent_different_versions_end_consistent(
    ingest: Running, events: EventCapture, new_id: Any
) -> None:
    hoks_id = new_id()
    base = json.loads(EHOKS[3].read_text())
    variants = []
    for n in range(6):
        variant = copy.deepcopy(base)
        variant["sahkoposti"] = f"v{n}@example.org"
        variants.append(variant)
    responses = await asyncio.gather(
        *(ingest.client.put(f"/api/v1/hoks/{hoks_id}", json=v) for v in variants)
    )
    versions = sorted(r.json()["version"] for r in responses)
    assert versions == [1, 2, 3, 4, 5, 6], "each distinct content gets its own gapless version"
    latest = variants[max(range(6), key=lambda n: responses[n].json()["version"])]
    async with ingest.service.db.transaction() as session:
        stored_hash = await session.scalar(
            select(documents.c.content_hash).where(documents.c.key == str(hoks_id))
        )
    assert stored_hash == content_hash(latest), "the latest version is the last one written"
    emitted = await events.wait_for(is_hoks_event(hoks_id), count=6)
    assert sorted(e["payload"]["version"] for e in emitted) == versions
    assert len({e["message_id"] for e in emitted}) == 6


BAD_INPUTS: list[tuple[str, Any, dict[str, str], int, list[Any]]] = [
    ("malformed-json", b'{"oppija-oid": ', JSON, 422, ["body"]),
    ("not-an-object", b"[1, 2]", JSON, 422, ["body"]),
    (
        "nul-character",
        b'{"oppija-oid": "1.2.246.562.24.1\\u0000", "opiskeluoikeus-oid": "1.2.246.562.15.1"}',
        JSON,
        422,
        ["body", "oppija-oid"],
    ),
    (
        "missing-oppija-oid",
        {"opiskeluoikeus-oid": "1.2.246.562.15.1"},
        JSON,
        422,
        ["body", "oppija-oid"],
    ),
    (
        "wrong-type",
        {"oppija-oid": 5, "opiskeluoikeus-oid": "1.2.246.562.15.1"},
        JSON,
        422,
        ["body", "oppija-oid"],
    ),
    ("id-differs-from-path", "ID_MISMATCH", JSON, 422, ["body", "id"]),
    (
        "impossible-date",
        "FEB_30",
        JSON,
        422,
        ["body", "hankittavat-ammat-tutkinnon-osat", 0, "osaamisen-hankkimistavat", 0, "loppu"],
    ),
    (
        "loppu-before-alku",
        "LOPPU_BEFORE_ALKU",
        JSON,
        422,
        ["body", "hankittavat-ammat-tutkinnon-osat", 0, "osaamisen-hankkimistavat", 0, "loppu"],
    ),
    (
        "wrong-content-type",
        "VALID",
        {"content-type": "text/plain"},
        415,
        ["header", "content-type"],
    ),
    ("oversize", "HUGE", JSON, 413, []),
]


def _bad_body(kind: Any, hoks_id: int) -> bytes:
    if isinstance(kind, bytes):
        return kind
    if isinstance(kind, dict):
        return json.dumps(kind).encode()
    document = json.loads((DATA / "ehoks-examples" / "hoks_yksi_tutkinnonosa.json").read_text())
    oht = document["hankittavat-ammat-tutkinnon-osat"][0]["osaamisen-hankkimistavat"][0]
    if kind == "ID_MISMATCH":
        document["id"] = hoks_id + 1
    elif kind == "FEB_30":
        oht["loppu"] = "2023-02-30"
    elif kind == "LOPPU_BEFORE_ALKU":
        oht["alku"], oht["loppu"] = "2023-05-02", "2023-05-01"
    elif kind == "HUGE":
        document["padding"] = "x" * (1024 * 1024)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("case", "body", "headers", "status", "loc"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(
    ingest: Running,
    events: EventCapture,
    new_id: Any,
    case: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    loc: list[Any],
) -> None:
    hoks_id = new_id()
    response = await ingest.client.put(
        f"/api/v1/hoks/{hoks_id}", content=_bad_body(body, hoks_id), headers=headers
    )
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error", "message", "details"}
    if loc:
        assert loc in [d["loc"] for d in error["details"]], error
    assert await stored_versions(ingest, str(hoks_id)) == 0
    assert events.matching(is_hoks_event(hoks_id)) == []


async def test_path_id_must_be_a_positive_integer(ingest: Running) -> None:
    response = await ingest.client.put("/api/v1/hoks/abc", json={})
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["path", "hoks_id"]


async def test_study_right_oid_in_body_must_match_path(ingest: Running) -> None:
    document = koski_study_rights()[0]
    response = await ingest.client.put(
        "/api/v1/opiskeluoikeudet/1.2.246.562.15.99999999999", json=document
    )
    assert response.status_code == 422
    assert ["body", "oid"] in [d["loc"] for d in response.json()["details"]]


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("", 401),
        ("Bearer", 401),
        ("Bearer wrong", 401),
        ("Basic abc", 401),
        ("dev-upstream-token", 401),
        (f"Bearer {READER_TOKEN}", 403),
    ],
    ids=["missing", "empty", "no-token", "unknown", "basic", "no-scheme", "lacks-hoks-write"],
)
async def test_writes_need_a_token_with_hoks_write(
    ingest: Running, new_id: Any, authorization: str | None, status: int
) -> None:
    hoks_id = new_id()
    headers = {**JSON, **({"authorization": authorization} if authorization is not None else {})}
    async with httpx.AsyncClient(base_url=ingest.base_url) as caller:
        response = await caller.put(
            f"/api/v1/hoks/{hoks_id}", content=EHOKS[0].read_bytes(), headers=headers
        )
    assert response.status_code == status, response.text
    assert response.json()["error"] == {401: "unauthorized", 403: "forbidden"}[status]
    assert await stored_versions(ingest, str(hoks_id)) == 0


async def test_operators_see_health_and_metrics(ingest: Running) -> None:
    assert (await ingest.client.get("/health/live")).json() == {"status": "ok"}
    ready = await ingest.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "outbox": "ok"}
    metrics = await ingest.client.get("/metrics")
    assert "outbox_oldest_age_seconds" in metrics.text
    assert 'http_requests_total{method="PUT",route="/api/v1/hoks/{hoks_id}"' in metrics.text


async def test_correlation_id_travels_from_request_to_event(
    ingest: Running, events: EventCapture, new_id: Any
) -> None:
    hoks_id = new_id()
    response = await ingest.client.put(
        f"/api/v1/hoks/{hoks_id}",
        content=EHOKS[0].read_bytes(),
        headers={**JSON, "X-Correlation-ID": f"trace-{hoks_id}"},
    )
    assert response.headers["X-Correlation-ID"] == f"trace-{hoks_id}"
    [event] = await events.wait_for(is_hoks_event(hoks_id))
    assert event["correlation_id"] == f"trace-{hoks_id}"


async def test_an_unusable_correlation_id_is_replaced(ingest: Running) -> None:
    response = await ingest.client.get(
        "/health/live", headers={"X-Correlation-ID": "x" * 500 + " {}"}
    )
    replaced = response.headers["X-Correlation-ID"]
    assert len(replaced) == 36 and replaced.count("-") == 4, "a fresh UUID"


async def test_openapi_describes_the_document_bodies_and_errors(ingest: Running) -> None:
    spec = (await ingest.client.get("/openapi.json")).json()
    for path in ("/api/v1/hoks/{hoks_id}", "/api/v1/opiskeluoikeudet/{oid}"):
        put = spec["paths"][path]["put"]
        assert put["requestBody"]["content"]["application/json"]["schema"] == {"type": "object"}
        assert {"200", "201", "401", "403", "413", "415", "422"} <= set(put["responses"])
