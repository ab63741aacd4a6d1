"""`scripts/run_all.py` (behind `scripts/run`): ports checked before anything starts, a
child that exits stops everything with a non-zero status, SIGTERM stops all with 0."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from shared.settings import REPO_ROOT
from tests.support.infra import Infra
from tests.support.services import free_port, service_env

RUN_ALL = Path(REPO_ROOT) / "scripts" / "run_all.py"
PORT_VARIABLES = (
    "INGEST_PORT",
    "BUNDLER_PORT",
    "ARVO_ADAPTER_PORT",
    "SENDER_PORT",
    "FAKE_ARVO_PORT",
    "FAKE_SMS_PORT",
    "FAKE_SMTP_PORT",
    "FAKE_SMTP_VIEW_PORT",
)


def run_all_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", *EXTERNALS)}
    return {
        **env,
        **{variable: str(free_port()) for variable in PORT_VARIABLES},
        "RUN_LOG_DIR": str(tmp_path / "logs"),
        **extra,
    }


EXTERNALS = ("ARVO_URL", "SMTP_HOST", "SMTP_PORT", "SMS_GATEWAY_URL", "ARVO_ADAPTER_URL")


@pytest.mark.parametrize("variable", ["INGEST_PORT", "FAKE_SMTP_PORT"])
async def test_a_taken_port_is_named_before_anything_starts(tmp_path: Path, variable: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = run_env(tmp_path, **{variable: str(port)})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(RUN_ALL), env=env, cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, (out, err)
    message = err.decode()
    assert f"port {port}" in message and variable in message, message
    assert "nothing was started" in message
    assert not (tmp_path / "logs").exists(), "no child was started"


def test_only_the_process_that_holds_a_port_counts_as_listening() -> None:
    listens = run_all_module().listens
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert listens(os.getpid(), port)
        assert not listens(os.getppid(), port), "another process's listener is not ours"
    assert not listens(os.getpid(), port)


@contextlib.asynccontextmanager
async def running_system(
    infra: Infra, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, int]]]:
    """scripts/run_all.py until it says it is running; yields it and its children's pids."""
    env = run_env(tmp_path, **service_env(infra))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RUN_ALL), env=env, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    pids: dict[str, int] = {}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while "fakes" not in pids:
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - loop.time())
            assert line, f"run_all ended before it was running: {await proc.stderr.read()!r}"
            text = line.decode()
            if "(pid " in text:
                pids[text.split()[0]] = int(text.rsplit("(pid ", 1)[1].rstrip(")\n"))
        assert set(pids) == {"ingest", "bundler", "arvo_adapter", "sender", "fakes"}
        yield proc, pids
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 60)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_child_that_exits_stops_everything_with_a_failure(
    infra: Infra, tmp_path: Path
) -> None:
    async with running_system(infra, tmp_path) as (proc, pids):
        os.kill(pids["bundler"], signal.SIGKILL)
        code = await asyncio.wait_for(proc.wait(), 60)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
    assert code == 1, err
    assert "bundler exited with status -9" in err
    assert not any(alive(pid) for pid in pids.values()), "every other child was stopped"


async def test_sigterm_stops_everything_with_success(infra: Infra, tmp_path: Path) -> None:
    async with running_system(infra, tmp_path) as (proc, pids):
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0
    assert not any(alive(pid) for pid in pids.values())
