"""Run an ASGI app as a real uvicorn server inside the current event loop.

Tests talk to fakes (and to our own services) over real HTTP so that the client code,
timeouts and serialisation are exercised exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator
from typing import Any

import uvicorn

__all__ = ["QuietServer", "bind_socket", "serve"]


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner.

    Several servers share one process (tests, the fakes launcher); uvicorn's own handler
    would be overwritten by the next server and re-raise signals on exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a listening TCP socket ourselves so port 0 yields a known free port, race-free."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@contextlib.asynccontextmanager
async def serve(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 = a free port) and yield its base URL.

    The base URL has no trailing slash, e.g. ``http://127.0.0.1:54321``. The server
    stops (gracefully, then forcibly) when the block exits.
    """
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="auto",
        timeout_graceful_shutdown=5,
        access_log=False,
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn:{actual_port}")
    try:
        await _wait_started(server, task, startup_timeout)
        yield f"http://{host}:{actual_port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            sock.close()


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None], limit: float) -> None:
    """Poll until uvicorn reports started; surface a crashed startup instead of hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not server.started:
        if task.done():
            task.result()  # re-raises the startup error
            raise RuntimeError("uvicorn server exited before it started")
        if loop.time() > deadline:
            server.should_exit = True
            raise TimeoutError(f"uvicorn server did not start within {limit} s")
        await asyncio.sleep(0.01)
