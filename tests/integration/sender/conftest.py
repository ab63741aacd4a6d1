"""The sender's delivery clients against real servers on loopback: the fake SMTP server
(aiosmtpd, plain and with STARTTLS + AUTH) and the fake SMS gateway over HTTP."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import trustme

from tests.fakes import sms
from tests.fakes.server import serve
from tests.fakes.smtp import FakeSmtp

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
