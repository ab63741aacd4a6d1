"""`scripts/test tests/unit` needs no PostgreSQL or RabbitMQ; a session that selected
integration or e2e tests (marked by directory in tests/conftest.py) stops at once, naming
what is missing, when they do not answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from shared.settings import REPO_ROOT


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released without listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def pytest_without_infra(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TEST_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/postgres",
        "TEST_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{closed_port()}/",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unit_tests_run_without_postgres_or_rabbitmq() -> None:
    result = pytest_without_infra("tests/unit/test_clock.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_integration_tests_stop_at_once_naming_what_is_missing() -> None:
    result = pytest_without_infra("tests/unit/test_clock.py", "tests/integration/shared")
    assert result.returncode == 3, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "PostgreSQL is not reachable" in output
    assert "RabbitMQ is not reachable" in output
    assert " passed" not in output, "nothing runs before the check"


def test_markers_follow_the_directory_and_deselect() -> None:
    result = pytest_without_infra(
        "tests/unit/test_clock.py",
        "tests/integration/shared/test_db.py",
        "tests/e2e",
        "-m",
        "not integration and not e2e",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deselected" in result.stdout
    collected = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only"),
            *("-m", "integration", "tests/integration/shared/test_db.py"),
            "tests/unit/test_clock.py",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids and all(line.startswith("tests/integration/") for line in ids), collected.stdout
