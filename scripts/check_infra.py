"""Say clearly, before anything starts, whether PostgreSQL and RabbitMQ answer."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

HOW = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
    "(Debian package postgresql), or: docker compose up -d postgres",
    "RabbitMQ": "rabbitmq-server -detached (Debian package rabbitmq-server), "
    "or: docker compose up -d rabbitmq",
}


def reachable(url: str, default_port: int) -> tuple[str, int, bool]:
    parts = urlsplit(url.replace("postgresql+asyncpg", "postgresql"))
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return host, port, True
    except OSError:
        return host, port, False


def main() -> int:
    database = os.environ.get(
        "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tyoelamapalaute"
    )
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    failed = False
    for name, url, port in (("PostgreSQL", database, 5432), ("RabbitMQ", amqp, 5672)):
        host, port, ok = reachable(url, port)
        if not ok:
            failed = True
            print(
                f"error: {name} is not reachable at {host}:{port}. Start it: {HOW[name]}",
                file=sys.stderr,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
