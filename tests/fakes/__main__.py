"""Run every fake external system in one process: ``python -m tests.fakes``.

Arvo on 8090 (base URL ``/api/``), SMS gateway on 8091, SMTP on 1025 with its JSON view
on 8092, all on 127.0.0.1. Ports: FAKE_ARVO_PORT, FAKE_SMS_PORT, FAKE_SMTP_PORT,
FAKE_SMTP_VIEW_PORT; host: FAKE_HOST; server log level: FAKE_LOG_LEVEL (warning).
Credentials follow the services' own variables (ARVO_USER, ARVO_PASSWORD,
SMS_GATEWAY_TOKEN; defaults arvo/arvo and sms-token) so both sides agree by default.
SIGTERM/SIGINT stop everything cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

import uvicorn
from fastapi import FastAPI

from tests.fakes import arvo, sms, smtp
from tests.fakes.server import QuietServer, bind_socket

log = logging.getLogger("tests.fakes")


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _server(app: FastAPI) -> QuietServer:
    config = uvicorn.Config(
        app,
        log_level=os.environ.get("FAKE_LOG_LEVEL", "warning").lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return QuietServer(config)


async def main() -> int:
    """Start all fakes, wait for a signal, stop them."""
    host = os.environ.get("FAKE_HOST", "127.0.0.1")
    ports = {
        "arvo": _port("FAKE_ARVO_PORT", 8090),
        "sms": _port("FAKE_SMS_PORT", 8091),
        "smtp": _port("FAKE_SMTP_PORT", 1025),
        "smtp_view": _port("FAKE_SMTP_VIEW_PORT", 8092),
    }
    mail = smtp.FakeSmtp(host, ports["smtp"])
    apps = {
        "arvo": arvo.create_app(
            os.environ.get("ARVO_USER", "arvo"), os.environ.get("ARVO_PASSWORD", "arvo")
        ),
        "sms": sms.create_app(os.environ.get("SMS_GATEWAY_TOKEN", "sms-token")),
        "smtp_view": smtp.create_view_app(mail),
    }
    sockets: dict[str, socket.socket] = {}
    try:
        for name in apps:
            sockets[name] = bind_socket(host, ports[name])
        await asyncio.to_thread(mail.start)
    except OSError as exc:
        log.error("fakes: cannot listen: %s", exc)
        for sock in sockets.values():
            sock.close()
        return 1

    servers = {name: _server(app) for name, app in apps.items()}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = [
        asyncio.create_task(server.serve(sockets=[sockets[name]]), name=name)
        for name, server in servers.items()
    ]
    while not all(s.started for s in servers.values()):
        if any(t.done() for t in tasks):
            stop.set()
            break
        await asyncio.sleep(0.02)
    else:
        log.info(
            "fakes listening: Arvo http://%s:%d/api/ (user %s), SMS http://%s:%d/messages, "
            "SMTP %s:%d (view http://%s:%d/_fake/messages)",
            host,
            ports["arvo"],
            os.environ.get("ARVO_USER", "arvo"),
            host,
            ports["sms"],
            host,
            mail.port,
            host,
            ports["smtp_view"],
        )

    await stop.wait()
    log.info("fakes: shutting down")
    for server in servers.values():
        server.should_exit = True
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(mail.stop)
    for sock in sockets.values():
        sock.close()
    failed = [r for r in results if isinstance(r, BaseException)]
    for error in failed:
        log.error("fakes: server failed: %r", error)
    return 1 if failed else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO; keep the dev console readable.
    logging.getLogger("mail.log").setLevel(os.environ.get("FAKE_LOG_LEVEL", "warning").upper())
    sys.exit(asyncio.run(main()))
