"""The delivery worker: hands recorded messages over, a few at a time, outside any
transaction (issue 14), so a slow or absent SMTP server holds no message un-acked and no
database transaction open.

Each pass first turns messages left `sending` past their lease into unknown outcomes,
then claims due messages ahead (up to twice its concurrency, so one claim serves several
attempts) and starts attempts up to DELIVERY_CONCURRENCY. It wakes when the consumer commits
new messages, when an attempt ends, and otherwise every DELIVERY_POLL_SECONDS (retries
become due by time). Stopping lets attempts in flight finish within a grace period: a
message cut off inside its handover is left to the lease, as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from services.sender.settings import SenderSettings
from services.sender.store.messages import Claimed
from services.sender.usecases import Sender

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 4.0


class DeliveryWorker:
    def __init__(self, sender: Sender, settings: SenderSettings) -> None:
        self.sender = sender
        self.concurrency = max(1, settings.delivery_concurrency)
        self.batch_size = max(1, settings.delivery_batch_size)
        self.poll_seconds = settings.delivery_poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[object]] = set()
        self._ready: deque[Claimed] = deque()
        self._stopping = False
        self._expire_due = 0.0
        sender.on_recorded(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name="delivery-worker")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ready:
            # Claimed ahead but not started: due again at once, not after their lease.
            with contextlib.suppress(Exception):
                await self.sender.release(list(self._ready))
            self._ready.clear()
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.sender.ports.aclose()

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                await self._loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery pass failed; retrying")
                await asyncio.sleep(min(self.poll_seconds, 1.0))

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            loop = asyncio.get_running_loop()
            if loop.time() >= self._expire_due:
                self._expire_due = loop.time() + min(self.poll_seconds, 1.0)
                await self.sender.expire_stale()
            if len(self._ready) < self.concurrency:
                # Claim ahead, up to twice the concurrency: one claim serves many attempts.
                want = min(2 * self.concurrency - len(self._ready), self.batch_size)
                self._ready.extend(await self.sender.claim(want))
            while self._ready and len(self._in_flight) < self.concurrency:
                message = self._ready.popleft()
                task = asyncio.create_task(self._deliver(message), name="deliver")
                self._in_flight.add(task)
                task.add_done_callback(self._done)
            # Nothing due, or all slots busy: an ended attempt, a new message or the poll
            # wakes us.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def _deliver(self, message: Claimed) -> object:
        try:
            return await self.sender.deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim stays until its lease runs out; then the message is due again
            # (or, if it was already being handed over, an unknown outcome).
            log.exception("delivery attempt failed", extra={"message_key": message.message_key})
            return None
