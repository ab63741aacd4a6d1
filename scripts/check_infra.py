"""Say clearly, before `scripts/run` starts anything, whether PostgreSQL and RabbitMQ answer
at the services' DATABASE_URL and AMQP_URL. (Tests check theirs in tests/conftest.py.)"""

from __future__ import annotations

import os
import sys

from tests.support.infra import tcp_unreachable

HOW = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
    "(Debian package postgresql), or: docker compose up -d postgres",
    "RabbitMQ": "rabbitmq-server -detached (Debian package rabbitmq-server), "
    "or: docker compose up -d rabbitmq",
}


def main() -> int:
    database = os.environ.get(
        "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tyoelamapalaute"
    )
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    failed = False
    for name, url, port in (("PostgreSQL", database, 5432), ("RabbitMQ", amqp, 5672)):
        problem = tcp_unreachable(name, url, port)
        if problem:
            failed = True
            print(f"error: {problem}. Start it: {HOW[name]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
