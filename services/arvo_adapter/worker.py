"""The worker: takes the recorded work that is due and does it against Arvo, a bounded
number of bundles at a time, outside any consumer's transaction (usecases module doc).

It looks for due work when woken (a message was recorded, a slot came free) and every
`ARVO_WORK_POLL_SECONDS`; while the circuit breaker is open it asks for nothing and the
backlog waits in the tables. Stopping lets work in flight finish for a few seconds, then
cancels it: a call cut off that way is left in doubt in the intent log, and the next
attempt reconciles it like any lost answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from services.arvo_adapter.store.work import WorkKey
from services.arvo_adapter.usecases import ArvoAdapter

log = logging.getLogger(__name__)

# A consumer's commit follows its handler by a moment: look a little later.
WAKE_DELAY_SECONDS = 0.02
HOUSEKEEPING_SECONDS = 5.0
# Within the service's 10 s for a graceful stop (api.md), after the consumers' own grace.
STOP_GRACE_SECONDS = 4.0


class Worker:
    def __init__(self, adapter: ArvoAdapter, *, concurrency: int, poll_seconds: float) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.adapter = adapter
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="arvo-worker")
        self._housekeeping = asyncio.create_task(self._keep_house(), name="arvo-housekeeping")

    def wake(self) -> None:
        """Look for due work soon (safe to call from any coroutine of this loop)."""
        asyncio.get_running_loop().call_later(WAKE_DELAY_SECONDS, self._wake.set)

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Take no more work; let bundles in flight finish for `grace_seconds` (a call cut
        off mid-way is a call in doubt, for codes a possible orphan), then cancel them."""
        loops = [t for t in (self._task, self._housekeeping) if t is not None]
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        in_flight = list(self._in_flight.values())
        if in_flight:
            _, late = await asyncio.wait(in_flight, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.adapter.arvo.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self._fill()
            except Exception as exc:
                log.warning("arvo worker could not take work", extra={"error": type(exc).__name__})
            timeout = self.poll_seconds
            if self.adapter.arvo_refuses_calls:
                timeout = min(timeout, max(0.05, self.adapter.arvo.breaker.seconds_until_retry()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()

    async def _fill(self) -> None:
        if self.adapter.arvo_refuses_calls:
            return
        room = self.concurrency - len(self._in_flight)
        if self.adapter.arvo_on_trial:
            # Half-open: one bundle tries Arvo; the rest wait for its verdict.
            room = min(room, 1 - len(self._in_flight))
        if room <= 0:
            return
        keys = await self.adapter.due_work(limit=room, exclude=list(self._in_flight))
        for key in keys:
            self._in_flight[key.id] = asyncio.create_task(self._one(key), name=f"arvo:{key.id}")

    async def _one(self, key: WorkKey) -> None:
        worked = False
        try:
            worked = await self.adapter.work(key)
        except Exception as exc:
            log.warning(
                "arvo work ended with an error",
                exc_info=True,
                extra={"kind": key.kind, "error": type(exc).__name__},
            )
        finally:
            self._in_flight.pop(key.id, None)
            if worked:
                self._wake.set()

    async def _keep_house(self) -> None:
        """The backlog gauge, and rejected messages whose dead-lettering failed before."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self.adapter.refresh_backlog()
                await self.adapter.dead_letter_rejected()
            except Exception as exc:
                log.warning("arvo housekeeping failed", extra={"error": type(exc).__name__})
