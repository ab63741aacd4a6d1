"""What operators and integrators expect of a running service (issue 11): offline /docs
with an Authorize button, a documented error shape, readable operation ids, one access log
line per request, and metrics that count every worker's requests.

One ingest process with two workers (`WEB_CONCURRENCY=2`) serves the whole module.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import pytest_asyncio

from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import UPSTREAM_TOKEN, ServiceProcess, service_env

pytestmark = pytest.mark.e2e
JSON = {"content-type": "application/json"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ingest(infra: Infra) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess("ingest", service_env(infra, WEB_CONCURRENCY="2"))
    process.log_path.unlink(missing_ok=True)
    await process.start()
    try:
        yield process
    finally:
        await process.terminate()


def fresh_connection_client(base_url: str) -> httpx.AsyncClient:
    """No keep-alive: each request is a new connection, which either worker may accept."""
    return httpx.AsyncClient(
        base_url=base_url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_and_every_asset_they_reference_are_served_locally(
    ingest: ServiceProcess, page: str
) -> None:
    async with httpx.AsyncClient(base_url=ingest.base_url, timeout=10) as client:
        html = (await client.get(page)).text
        referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        referenced += re.findall(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html)
        assert any(url.endswith(".js") for url in referenced), html
        for url in referenced:
            absolute = urljoin(f"{ingest.base_url}{page}", url)
            # No CDN, no web font: every URL of the page is this server's.
            assert urlsplit(absolute).netloc == urlsplit(ingest.base_url).netloc, url
            response = await client.get(absolute)
            assert response.status_code == 200, url
            assert response.content, url
        assert not re.search(r"https?://(?!127\.0\.0\.1)", html), "an absolute external URL"


async def test_openapi_has_bearer_auth_readable_ids_and_the_error_schema(
    ingest: ServiceProcess,
) -> None:
    async with httpx.AsyncClient(base_url=ingest.base_url, timeout=10) as client:
        spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    [(scheme_name, scheme)] = schemes.items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")

    operations = {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    ids = {key: operation["operationId"] for key, operation in operations.items()}
    assert ids[("put", "/api/v1/hoks/{hoks_id}")] == "put_hoks"
    assert ids[("put", "/api/v1/opiskeluoikeudet/{oid}")] == "put_opiskeluoikeus"
    assert ids[("delete", "/api/v1/hoks/{hoks_id}")] == "remove_hoks"
    assert ids[("get", "/health/ready")] == "ready"
    assert len(set(ids.values())) == len(ids)

    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"error", "message", "details"}
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"loc", "msg"}
    assert "HTTPValidationError" not in spec["components"]["schemas"], "not what we send"
    for path in ("/api/v1/hoks/{hoks_id}", "/api/v1/opiskeluoikeudet/{oid}"):
        put = operations[("put", path)]
        assert put["security"] == [{scheme_name: []}]
        for status in ("401", "403", "413", "415", "422", "503"):
            content = put["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, status


async def test_each_request_leaves_one_access_log_line_without_personal_data(
    ingest: ServiceProcess,
) -> None:
    secret_query = "hetu=010101-123N"
    marker_body = b'{"etunimi": "Maija"}'
    correlation = {
        "authorized": "access-log-test-authorized",
        "anonymous": "access-log-test-anonymous",
    }
    async with fresh_connection_client(ingest.base_url) as client:
        authorized = await client.put(
            f"/api/v1/hoks/987654321?{secret_query}",
            content=marker_body,
            headers={
                **JSON,
                "authorization": f"Bearer {UPSTREAM_TOKEN}",
                "x-correlation-id": correlation["authorized"],
            },
        )
        anonymous = await client.get(
            f"/api/v1/hoks/987654321?{secret_query}",
            headers={"x-correlation-id": correlation["anonymous"]},
        )
    assert authorized.status_code == 422  # no oids: the body is not a HOKS
    assert anonymous.status_code == 405

    async def access_lines() -> dict[str, dict[str, Any]]:
        lines = [json.loads(line) for line in ingest.log_path.read_text().splitlines()]
        return {
            line["correlation_id"]: line
            for line in lines
            if line.get("logger") == "access" and line.get("correlation_id") in correlation.values()
        }

    lines = await eventually(access_lines, lambda found: len(found) == 2, what="access lines")
    line = lines[correlation["authorized"]]
    assert line["event"] == "request"
    assert (line["method"], line["route"], line["status"], line["client"]) == (
        "PUT",
        "/api/v1/hoks/{hoks_id}",
        422,
        "dev-upstream",
    )
    assert 0 < line["duration_ms"] < 10_000
    line = lines[correlation["anonymous"]]
    assert (line["method"], line["route"], line["status"], line["client"]) == (
        "GET",
        "/api/v1/hoks/{hoks_id}",
        405,
        None,
    )
    text = ingest.log_path.read_text()
    for never in ("010101-123N", "Maija", UPSTREAM_TOKEN, "987654321"):
        assert never not in text, never


async def test_metrics_count_the_requests_of_every_worker(ingest: ServiceProcess) -> None:
    route = "/api/v1/opiskeluoikeudet/{oid}"
    sample = re.compile(
        r'^http_requests_total\{method="PUT",route="' + re.escape(route) + r'",status="401"\}'
        r" ([0-9.e+]+)$",
        re.MULTILINE,
    )
    requests = 40
    async with fresh_connection_client(ingest.base_url) as client:
        for _ in range(requests):
            response = await client.put("/api/v1/opiskeluoikeudet/1.2.246.562.15.1", json={})
            assert response.status_code == 401
        # Whichever worker answers /metrics must count all of them.
        for _ in range(8):
            metrics = (await client.get("/metrics")).text
            assert [float(n) for n in sample.findall(metrics)] == [requests]
