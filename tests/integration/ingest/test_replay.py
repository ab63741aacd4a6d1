"""Replay: the latest stored versions leave again as events, with their version numbers,
for the documents selected; a deleted HOKS replays as `hoks.deleted`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.ingest.__main__ import parse_args
from services.ingest.jobs.replay import Selection, replay
from tests.integration.ingest.test_http import EHOKS, JSON, is_hoks_event
from tests.support.events import EventCapture
from tests.support.services import Running


async def test_replay_stages_latest_versions_of_the_given_hoks(
    ingest: Running, events: EventCapture, new_id: Any
) -> None:
    kept, deleted, other = new_id(), new_id(), new_id()
    for hoks_id in (kept, deleted, other):
        response = await ingest.client.put(
            f"/api/v1/hoks/{hoks_id}", content=EHOKS[0].read_bytes(), headers=JSON
        )
        assert response.status_code == 201
    assert (await ingest.client.delete(f"/api/v1/hoks/{deleted}")).status_code == 204
    await events.wait_for(is_hoks_event(deleted, "hoks.deleted"))
    before = len(events.received)

    counts = await replay(ingest.service.db, Selection(hoks_ids=[kept, deleted]), batch_size=1)
    ingest.service.relay.wake()

    assert counts.by_type == {"hoks.changed": 1, "hoks.deleted": 1}
    [original, again] = await events.wait_for(is_hoks_event(kept), count=2)
    assert again["type"] == "hoks.changed"
    assert again["payload"] == original["payload"]
    assert again["message_id"] != original["message_id"]
    [_, gone] = await events.wait_for(is_hoks_event(deleted, "hoks.deleted"), count=2)
    assert gone["payload"] == {"hoks_id": deleted, "version": 2}
    replayed_other = [e for e in events.received[before:] if e["payload"].get("hoks_id") == other]
    assert replayed_other == []


async def test_replay_since_a_date_covers_documents_changed_since(
    ingest: Running, new_id: Any
) -> None:
    hoks_id = new_id()
    await ingest.client.put(f"/api/v1/hoks/{hoks_id}", content=EHOKS[0].read_bytes(), headers=JSON)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert (await replay(ingest.service.db, Selection(since=tomorrow))).by_type == {}
    today = await replay(ingest.service.db, Selection(since=dt.date.today()))
    assert today.by_type.get("hoks.changed", 0) >= 1


def test_the_command_line_reads_a_selection() -> None:
    args = parse_args(["replay", "--hoks", "1", "2", "--since", "2026-01-01"])
    assert (args.hoks, args.since) == ([1, 2], dt.date(2026, 1, 1))
    assert parse_args([]).command is None
    with pytest.raises(SystemExit):
        parse_args(["replay"])
