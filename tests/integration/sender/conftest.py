"""The sender's delivery clients against real servers on loopback: the fake SMTP server
(aiosmtpd, plain and with STARTTLS + AUTH) and the fake SMS gateway over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import pytest_asyncio
import trustme
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from services.sender.app import create_service
from services.sender.settings import SenderSettings, StartTls
from shared.auth import hash_token
from shared.events import SendRequested
from tests.fakes import sms
from tests.fakes.server import serve
from tests.fakes.smtp import FakeSmtp
from tests.support.events import publish as publish
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, READER_TOKEN, Running, run_in_process

#: The sender's frozen "today": the bundle of the examples is sent on it.
TODAY = dt.date(2025, 3, 17)
LAST_ANSWER_DAY = dt.date(2025, 4, 15)
KOULUTUSTOIMIJA = "1.2.246.562.10.346830761110"
OTHER_KOULUTUSTOIMIJA = "1.2.246.562.10.99999999999"
SCOPED_TOKEN = "sender-test-scoped-reader"
CALLBACK_TOKEN = "test-sms-callback-token"
SMS_TOKEN = "test-sms-token"
SMTP_USER = "lahettaja"
SMTP_PASSWORD = "Salasana-9f3c2e"


@dataclass
class RunningSms:
    root: str
    state: sms.SmsState


@dataclass
class TlsSmtp:
    """A fake relay offering STARTTLS with a certificate of a test CA, requiring AUTH."""

    server: FakeSmtp
    ca_file: Path


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[FakeSmtp]:
    with FakeSmtp() as server:
        yield server


@pytest.fixture
def smtp_fake(smtp_server: FakeSmtp) -> FakeSmtp:
    smtp_server.clear()
    return smtp_server


@pytest.fixture(scope="session")
def tls_smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSmtp]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with FakeSmtp(tls_context=context, credentials=(SMTP_USER, SMTP_PASSWORD)) as server:
        yield TlsSmtp(server, ca_file)


@pytest.fixture
def tls_smtp(tls_smtp_server: TlsSmtp) -> TlsSmtp:
    tls_smtp_server.server.clear()
    return tls_smtp_server


@pytest_asyncio.fixture(scope="session")
async def sms_server() -> AsyncIterator[RunningSms]:
    app = sms.create_app(SMS_TOKEN)
    async with serve(app) as root:
        yield RunningSms(root, app.state.sms)


@pytest_asyncio.fixture
async def sms_fake(sms_server: RunningSms) -> AsyncIterator[RunningSms]:
    async with httpx.AsyncClient(base_url=sms_server.root) as client:
        (await client.post("/_fake/reset")).raise_for_status()
    yield sms_server


# --- The sender service in-process, with its fakes ------------------------------------


@dataclass
class SurveyStandIn:
    """A small HTTP stand-in of the arvo_adapter's `GET /api/v1/links/{tunniste}/status`
    (api.md; bearer token with palaute:read as the real one asks): answers per tunniste,
    or 503 for a tunniste marked unreachable."""

    root: str
    answers: dict[str, dict[str, Any]]
    unreachable: set[str]
    asked: list[str]


@pytest_asyncio.fixture(scope="session")
async def survey_stand_in() -> AsyncIterator[SurveyStandIn]:
    app = FastAPI()
    state = SurveyStandIn("", {}, set(), [])

    @app.get("/api/v1/links/{tunniste}/status")
    async def status(tunniste: str, request: Request) -> Response:
        # As the real adapter: a bearer token of a client with palaute:read.
        if request.headers.get("authorization") != f"Bearer {READER_TOKEN}":
            return JSONResponse({"errors": ["unauthorized"]}, status_code=401)
        state.asked.append(tunniste)
        if tunniste in state.unreachable:
            return JSONResponse({"errors": ["arvo unavailable"]}, status_code=503)
        if tunniste not in state.answers:
            return JSONResponse({"errors": ["unknown tunniste"]}, status_code=404)
        return JSONResponse(state.answers[tunniste])

    async with serve(app) as root:
        state.root = root
        yield state


@pytest.fixture(scope="session")
def sender_clients_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev reader (every provider), a reader of one koulutustoimija, and an admin."""
    path = tmp_path_factory.mktemp("sender") / "clients.json"
    clients = [
        ("reader", READER_TOKEN, ["palaute:read"], ["*"]),
        ("scoped-reader", SCOPED_TOKEN, ["palaute:read"], [KOULUTUSTOIMIJA]),
        ("admin", ADMIN_TOKEN, ["admin", "palaute:read"], ["*"]),
    ]
    path.write_text(
        json.dumps(
            [
                {"client": n, "token_sha256": hash_token(t), "scopes": s, "koulutustoimijat": k}
                for n, t, s, k in clients
            ]
        )
    )
    return path


def sender_settings(
    infra: Infra,
    clients_file: Path,
    *,
    smtp_port: int,
    sms_root: str,
    survey_root: str,
    **overrides: Any,
) -> SenderSettings:
    values: dict[str, Any] = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "outbox_poll_seconds": 0.2,
        "retry_delays_ms": [200, 500, 1000],
        "clock_today": TODAY,
        "api_clients_file": clients_file,
        "smtp_port": smtp_port,
        "smtp_starttls": StartTls.OFF,
        "smtp_local_hostname": "sender.test",
        "smtp_timeout_seconds": 2.0,
        "smtp_from": "Opetushallitus <noreply@opintopolku.fi>",
        "smtp_reply_to": "palaute@opintopolku.fi",
        "sms_gateway_url": sms_root,
        "sms_gateway_token": SecretStr(SMS_TOKEN),
        "sms_callback_token": SecretStr(CALLBACK_TOKEN),
        "arvo_adapter_url": survey_root,
        "arvo_adapter_token": SecretStr(READER_TOKEN),
        "delivery_poll_seconds": 0.1,
        "delivery_retry_seconds": 300.0,
        "delivery_retry_first_wait_seconds": 0.1,
        "delivery_retry_max_wait_seconds": 0.5,
        "delivery_lease_seconds": 10.0,
    }
    return SenderSettings(**{**values, **overrides})


@pytest_asyncio.fixture(scope="session")
async def sender(
    infra: Infra,
    sender_clients_file: Path,
    smtp_server: FakeSmtp,
    sms_server: RunningSms,
    survey_stand_in: SurveyStandIn,
) -> AsyncIterator[Running]:
    settings = sender_settings(
        infra,
        sender_clients_file,
        smtp_port=smtp_server.port,
        sms_root=sms_server.root,
        survey_root=survey_stand_in.root,
    )
    async with run_in_process(create_service(settings)) as running:
        running.client.headers["authorization"] = f"Bearer {READER_TOKEN}"
        yield running


@pytest.fixture
def set_today(sender: Running) -> Iterator[Callable[[dt.date], None]]:
    """Freeze the sender's clock on another day; back to TODAY after the test."""

    def freeze(day: dt.date) -> None:
        sender.service.clock.frozen = day

    yield freeze
    sender.service.clock.frozen = TODAY


@pytest_asyncio.fixture(scope="session")
async def channel(infra: Infra) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


def send_request(
    *,
    email: str | None = None,
    phone: str | None = None,
    kind: str = "initial",
    resend_number: int = 0,
    nippu_id: uuid.UUID | None = None,
    tunniste: str | None = None,
    voimassa_loppupvm: dt.date = LAST_ANSWER_DAY,
    koulutustoimija: str = KOULUTUSTOIMIJA,
) -> SendRequested:
    nippu = nippu_id or uuid.uuid4()
    return SendRequested(
        nippu_id=nippu,
        tunniste=tunniste or f"perhosen_paivakoti_2025-03-16_{nippu.hex[:8]}",
        kind=kind,
        resend_number=resend_number,
        linkki=f"https://arvo.example/v/{nippu.hex[:12]}",
        niputuspvm=dt.date(2025, 3, 16),
        voimassa_loppupvm=voimassa_loppupvm,
        koulutustoimija_oid=koulutustoimija,
        oppilaitokset=["Keuda", "Stadin ammatti- ja aikuisopisto"],
        sahkoposti=email,
        puhelinnumero=phone,
    )


def unique_address(prefix: str = "ohjaaja") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.fi"


async def messages_api(
    sender: Running, nippu_id: uuid.UUID, token: str = READER_TOKEN
) -> httpx.Response:
    return await sender.client.get(
        "/api/v1/messages",
        params={"nippu_id": str(nippu_id)},
        headers={"authorization": f"Bearer {token}"},
    )


async def statuses(sender: Running, nippu_id: uuid.UUID) -> dict[str, str]:
    """message_key → status, through the API."""
    response = await messages_api(sender, nippu_id)
    if response.status_code == 404:
        return {}
    assert response.status_code == 200, response.text
    return {m["message_key"]: m["status"] for m in response.json()}


async def settled(
    sender: Running, nippu_id: uuid.UUID, count: int, timeout: float = 15.0
) -> dict[str, str]:
    """Until the bundle has `count` messages, none of them still on its way."""
    return await eventually(
        lambda: statuses(sender, nippu_id),
        lambda s: len(s) == count and not set(s.values()) & {"recorded", "sending"},
        timeout=timeout,
        what=f"{count} settled messages",
    )
