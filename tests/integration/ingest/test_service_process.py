"""`python -m services.ingest` builds its `Service` once per process (shared/service.py):
the app it serves is the one built in that process, and with `WEB_CONCURRENCY` > 1 each
worker builds its own. Counted from the service's own "service built" log line."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import httpx

from tests.support.examples import EHOKS_EXAMPLES
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import UPSTREAM_TOKEN, ServiceProcess, service_env

EXAMPLE = EHOKS_EXAMPLES / "hoksit.json"
AUTH = {"authorization": f"Bearer {UPSTREAM_TOKEN}"}


def log_size(process: ServiceProcess) -> int:
    """Where this run's lines start: the log file is appended to."""
    return process.log_path.stat().st_size if process.log_path.exists() else 0


def builds_by_pid(process: ServiceProcess, since: int) -> Counter[int]:
    """How many Services each process of the run built, from its JSON log lines."""
    built: Counter[int] = Counter()
    with process.log_path.open("rb") as log:
        log.seek(since)
        lines = log.read().decode().splitlines()
    for line in lines:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "service built":
            built[event["pid"]] += 1
    return built


async def test_one_process_builds_one_service_and_serves_it(infra: Infra, new_id: Any) -> None:
    process = ServiceProcess("ingest", service_env(infra, WEB_CONCURRENCY="1"))
    since = log_size(process)
    await process.start()
    try:
        async with httpx.AsyncClient(base_url=process.base_url, headers=AUTH) as client:
            hoks_id = new_id()
            put = await client.put(
                f"/api/v1/hoks/{hoks_id}",
                content=EXAMPLE.read_bytes(),
                headers={"content-type": "application/json"},
            )
            assert put.status_code == 201, put.text
            assert (await client.delete(f"/api/v1/hoks/{hoks_id}")).status_code == 204
            unknown = await client.delete(f"/api/v1/hoks/{new_id()}")
            assert unknown.status_code == 404
            assert unknown.json()["error"] == "not_found"
    finally:
        await process.terminate()
    assert process.proc is not None
    assert builds_by_pid(process, since) == {process.proc.pid: 1}


async def test_each_worker_process_builds_its_own_service_once(infra: Infra) -> None:
    process = ServiceProcess("ingest", service_env(infra, WEB_CONCURRENCY="2"))
    since = log_size(process)
    await process.start()
    try:
        # The supervisor (it migrates) and two workers: one Service each, in three processes.
        built = await eventually(
            lambda: asyncio.to_thread(builds_by_pid, process, since),
            lambda b: len(b) == 3,
            timeout=30,
            what="both workers built their Service",
        )
    finally:
        await process.terminate()
    assert all(count == 1 for count in built.values()), built
    assert process.proc is not None and built[process.proc.pid] == 1
