"""A loopback TCP proxy that a test can cut and restore: a real network outage, on demand.

`silence()` is the nastier outage: connections stay open and new ones are accepted,
but nothing is forwarded either way (a hung broker, a black-holing firewall). Not even a
close is passed on: when the server gives up on a silent connection, its client's
socket stays open and silent, as behind a black hole, until `speak()` or `cut()`.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.silent = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, as when the broker goes away."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def restore(self) -> None:
        self.silent = False
        if self._server is None:
            await self.start()

    def silence(self) -> None:
        """Keep accepting connections and taking bytes, but answer nothing, on new and
        open connections alike: a hung server or a black-holed network."""
        self.silent = True

    def speak(self) -> None:
        """End the silence: the held connections are broken (bytes were lost), so drop
        them; new connections are forwarded again."""
        self.silent = False
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.silent:
            self._writers.add(writer)
            with contextlib.suppress(Exception):
                while await reader.read(65536):
                    pass
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.silent:
                    writer.write(data)
                    await writer.drain()
        finally:
            # While silent the other side learns nothing, not even this close: its socket
            # is left to `speak()` or `cut()`.
            if not self.silent:
                self._writers.discard(writer)
                with contextlib.suppress(Exception):
                    writer.close()
