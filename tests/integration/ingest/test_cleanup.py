"""P1 in the ingest: the `personal-data-cleanup` run removes the content of versions
superseded (or deleted) longer than the retention; latest versions, numbers and hashes
stay, so "unchanged" and replays work as before.

Its own ingest on a database of its own: the clean-up works on the whole schema, and the
test asserts exact counts. Versions are received now; the run's date says how long ago
that is (a run of today + 30 days removes nothing received today, today + 31 does).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy import select

from services.ingest.app import create_service
from services.ingest.jobs.replay import Selection, replay
from services.ingest.store.tables import document_versions
from services.ingest.usecases import Ingest
from shared.clock import HELSINKI
from tests.integration.ingest.conftest import ingest_settings
from tests.integration.ingest.test_http import koski_study_rights
from tests.support.examples import EHOKS_EXAMPLES
from tests.support.infra import Infra, create_infra, destroy_infra
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, UPSTREAM_TOKEN, Running, run_in_process

EXAMPLE = json.loads((EHOKS_EXAMPLES / "hoks_yksi_tutkinnonosa.json").read_text())
INSTRUCTOR_KEY = "vastuullinen-tyopaikka-ohjaaja"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_ingest() -> AsyncIterator[Running]:
    infra: Infra = await create_infra()
    try:
        settings = ingest_settings(infra)
        async with run_in_process(create_service(settings)) as running:
            running.client.headers["authorization"] = f"Bearer {UPSTREAM_TOKEN}"
            yield running
    finally:
        await destroy_infra(infra)


def variant(email: str) -> dict[str, Any]:
    """The example HOKS with another student e-mail: a new version."""
    document: dict[str, Any] = copy.deepcopy(EXAMPLE)
    document["sahkoposti"] = email
    return document


async def run_cleanup(running: Running, date: dt.date) -> dict[str, Any]:
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"job": "personal-data-cleanup", "date": date.isoformat()}
    answer = await running.client.post("/api/v1/runs", json=body, headers=admin)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]

    async def status() -> dict[str, Any]:
        result: dict[str, Any] = (
            await running.client.get(f"/api/v1/runs/{run_id}", headers=admin)
        ).json()
        return result

    return await eventually(status, lambda r: r["status"] in ("done", "failed"), what="run")


async def versions(running: Running) -> dict[tuple[str, int], dict[str, Any]]:
    async with running.service.db.transaction() as session:
        result = await session.execute(select(document_versions))
        return {(row.key, row.version): dict(row._mapping) for row in result}


def without_content(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("document", "personal_data_removed_at")}


async def test_superseded_and_deleted_versions_lose_their_content_latest_ones_keep_it(
    own_ingest: Running,
) -> None:
    client = own_ingest.client
    for n, email in enumerate(("a@example.org", "b@example.org", "c@example.org")):
        answer = await client.put("/api/v1/hoks/1001", json=variant(email))
        assert answer.json()["version"] == n + 1
    await client.put("/api/v1/hoks/1002", json=EXAMPLE)
    await client.put("/api/v1/hoks/1003", json=EXAMPLE)
    assert (await client.delete("/api/v1/hoks/1003")).status_code == 204
    study_right = koski_study_rights()[0]
    oid = study_right["oid"]
    await client.put(f"/api/v1/opiskeluoikeudet/{oid}", json=study_right)
    await client.put(
        f"/api/v1/opiskeluoikeudet/{oid}", json={**study_right, "lisätiedot": {"x": 1}}
    )
    before = await versions(own_ingest)
    assert len(before) == 8
    assert INSTRUCTOR_KEY in json.dumps(before[("1001", 1)]["document"])

    today = dt.datetime.now(HELSINKI).date()
    not_yet = await run_cleanup(own_ingest, today + dt.timedelta(days=30))
    assert (not_yet["status"], not_yet["counts"]) == ("done", {"versions": 0})
    assert await versions(own_ingest) == before

    # In batches of one, each starting after the last.
    ingest = Ingest(db=own_ingest.service.db, wake_relay=lambda: None, max_body_bytes=1 << 20)
    removed = await ingest.remove_personal_data(
        date=today + dt.timedelta(days=31), retention_days=30, batch_size=1
    )
    assert removed == {"versions": 4}
    after = await versions(own_ingest)
    superseded = {("1001", 1), ("1001", 2), ("1003", 1), (oid, 1)}
    for key, row in after.items():
        if key in superseded:
            assert row["document"] is None
            assert row["personal_data_removed_at"] is not None
            assert without_content(row) == without_content(before[key]), (
                "number, hash, deleted flag, source and times stay"
            )
        else:
            assert row == before[key], "latest versions and deletion markers untouched"
    assert INSTRUCTOR_KEY in json.dumps(after[("1001", 3)]["document"])

    # Idempotent: the run of that day finds nothing more (and is the same run asked
    # again), and nor does the next day's.
    run = await run_cleanup(own_ingest, today + dt.timedelta(days=31))
    assert (run["status"], run["counts"]) == ("done", {"versions": 0})
    again = await run_cleanup(own_ingest, today + dt.timedelta(days=31))
    assert again["run_id"] == run["run_id"]
    assert (await run_cleanup(own_ingest, today + dt.timedelta(days=32)))["counts"] == {
        "versions": 0
    }
    assert await versions(own_ingest) == after

    # "Unchanged" still compares with the latest version; an old content is a new one.
    same = await client.put("/api/v1/hoks/1001", json=variant("c@example.org"))
    assert same.json() == {"hoks_id": 1001, "version": 3, "changed": False}
    old = await client.put("/api/v1/hoks/1001", json=variant("a@example.org"))
    assert old.json() == {"hoks_id": 1001, "version": 4, "changed": True}

    # A replay still finds every latest version's content.
    counts = await replay(own_ingest.service.db, Selection(everything=True))
    assert counts.unreadable == 0
    assert counts.by_type == {"hoks.changed": 2, "hoks.deleted": 1, "opiskeluoikeus.changed": 1}
