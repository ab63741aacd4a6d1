"""The sender's use cases, called by its consumer, delivery worker, routes and jobs.

Sending is two steps with a commit between them ("never twice", issue 14): the consumer
records each message under its unique key in the transaction that claims the event, and
the delivery worker hands recorded messages over outside any transaction, each attempt
fenced by a claim. Every state change is staged as `send.status` in the outbox in the
transaction that makes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncSession

from services.sender.delivery.sms import SmsGatewayClient
from services.sender.delivery.smtp import Handover, SmtpClient
from services.sender.delivery.survey_status import (
    SurveyStatusClient,
    SurveyStatusUnavailable,
)
from services.sender.domain.compose import (
    InvalidRecipient,
    MailIdentity,
    MessageKey,
    checked_email,
    checked_phone,
    compose_email,
    compose_sms,
)
from services.sender.domain.delivery import (
    REPORTED,
    UNKNOWN_OUTCOME,
    WENT_OUT,
    Backoff,
    Status,
    after_attempt,
    report_status,
)
from services.sender.domain.outcomes import DeliveryResult, Outcome
from services.sender.domain.reminders import REMINDER_AFTER, ReminderDecision, reminder_decision
from services.sender.domain.texts import MessageContext, MessageKind, email_text, sms_text
from services.sender.settings import SenderSettings
from services.sender.store.messages import (
    Claimed,
    MessageRecord,
    MessageRef,
    MessageView,
    NippuRecord,
    claim_due,
    decide_reminder,
    ensure_nippu,
    expire_sending,
    finish_attempt,
    get_nippu,
    insert_message,
    mark_sending,
    messages_of,
    release_claims,
    reminder_candidates,
    reminder_recipients,
    remove_personal_data,
    report_delivery,
    set_first_sent,
)
from services.sender.store.tables import outbox
from shared.auth import ApiClient, audit
from shared.clock import Clock
from shared.db import Database
from shared.domain.contacts import Channel
from shared.events import SendRequested, SendStatus
from shared.messaging.outbox import add_event, build_envelope

log = logging.getLogger(__name__)

#: Waits between tries to record an attempt's answer while the database does not take it
#: (about 8 s in all, well inside any lease).
FINISH_RETRY_WAITS = (0.1, 0.3, 0.6, 1.0, 2.0, 4.0)

#: Attempts by channel and the status they left the message in (`recorded`: a retry).
DELIVERIES = Counter(
    "sender_deliveries_total", "Delivery attempts by their outcome", ["kanava", "status"]
)
#: Messages found in the unknown-outcome window after their lease (a crash or a hang).
UNKNOWN_OUTCOMES = Counter(
    "sender_unknown_outcomes_total", "Messages left sending past their lease", ["kanava"]
)

#: Kinds of message as stored and reported: the first send, a resend (S4), the reminder (S3).
INITIAL, RESEND, REMINDER = "initial", "resend", "reminder"


#: A bundle the adapter could not tell about is asked again each day, until its last
#: answer day is this far behind: then no decision can matter any more (its window
#: closed, and P1 is about to remove its addresses).
STOP_ASKING_AFTER = dt.timedelta(days=30)


class NotFound(Exception):
    """Unknown, or another koulutustoimija's (HTTP 404 either way)."""


class RequestInvalid(Exception):
    """A send request that can never be sent as it is (no provider name to show, S5)."""


class UnknownDeliveryReport(Exception):
    """A delivery report for a message id we never got from the gateway."""


def message_key(nippu_id: uuid.UUID, kind: str, kanava: str, resend_number: int) -> str:
    """The unique key as text: what `send.status` and the messages API name a message by."""
    return f"{nippu_id}/{kind}/{kanava}/{resend_number}"


@dataclass(frozen=True)
class Ports:
    """The sender's outbound clients: one of each per process."""

    smtp: SmtpClient
    sms: SmsGatewayClient
    survey: SurveyStatusClient

    @classmethod
    def from_settings(cls, settings: SenderSettings) -> Ports:
        return cls(
            SmtpClient.from_settings(settings),
            SmsGatewayClient.from_settings(settings),
            SurveyStatusClient.from_settings(settings),
        )

    async def aclose(self) -> None:
        await self.sms.aclose()
        await self.survey.aclose()


class Sender:
    """The use cases with what they need; one per process."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: SenderSettings,
        ports: Ports,
        outbox_table: Table = outbox,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.ports = ports
        self.outbox = outbox_table
        self.identity: MailIdentity = settings.mail_identity
        self.backoff = Backoff(
            max_seconds=settings.delivery_retry_seconds,
            first_wait=settings.delivery_retry_first_wait_seconds,
            max_wait=settings.delivery_retry_max_wait_seconds,
        )
        self._on_recorded: list[Callable[[], None]] = []
        self._on_staged: list[Callable[[], None]] = []

    def on_staged(self, callback: Callable[[], None]) -> None:
        """Call `callback` after the worker committed events (the outbox relay's wake-up)."""
        self._on_staged.append(callback)

    def _staged(self) -> None:
        for callback in self._on_staged:
            callback()

    def on_recorded(self, callback: Callable[[], None]) -> None:
        """Call `callback` after a commit that recorded messages (the worker's wake-up)."""
        self._on_recorded.append(callback)

    # --- Recording (the consumer of send.requested, the reminder run) ----------------

    async def record_send_request(self, session: AsyncSession, *, payload: SendRequested) -> int:
        """S1/S4: record one message per channel the bundler gave an address for, in the
        consumer's transaction; a key recorded before (a redelivered or repeated request)
        is left as it is. The number of messages newly recorded."""
        if not any(name.strip() for name in payload.oppilaitokset):
            raise RequestInvalid("oppilaitokset: a message must name the provider (S5)")
        nippu = await ensure_nippu(
            session,
            NippuRecord(
                nippu_id=payload.nippu_id,
                tunniste=payload.tunniste,
                koulutustoimija_oid=payload.koulutustoimija_oid,
                linkki=payload.linkki,
                oppilaitokset=tuple(payload.oppilaitokset),
                niputuspvm=payload.niputuspvm,
                voimassa_loppupvm=payload.voimassa_loppupvm,
            ),
        )
        kind = payload.kind
        resend_number = payload.resend_number if kind == RESEND else 0
        addresses = {Channel.EMAIL: payload.sahkoposti, Channel.SMS: payload.puhelinnumero}
        window_closed = self.clock.today() > nippu.voimassa_loppupvm
        recorded = 0
        for channel, address in addresses.items():
            if address is None:
                continue
            closed = (
                "vastausaika päättynyt: the answer window closed (S4)" if window_closed else None
            )
            recorded += await self._record(
                session,
                nippu,
                kind=kind,
                channel=channel,
                resend_number=resend_number,
                address=address,
                refused=closed,
            )
        if not any(addresses.values()):
            log.warning("send request without any address", extra={"nippu_id": str(nippu.nippu_id)})
        return recorded

    async def _record(
        self,
        session: AsyncSession,
        nippu: NippuRecord,
        *,
        kind: str,
        channel: Channel,
        resend_number: int,
        address: str,
        refused: str | None = None,
    ) -> int:
        """Record one message (C1/C2 checked: an invalid address is recorded failed and
        never sent). 1 when new, 0 when its key was recorded before."""
        text_kind = MessageKind.REMINDER if kind == REMINDER else MessageKind.INITIAL
        context = _context(nippu.oppilaitokset, nippu.linkki, nippu.voimassa_loppupvm)
        recipient: str | None = None
        subject = body = None
        detail = refused
        try:
            recipient = (
                checked_email(address) if channel is Channel.EMAIL else checked_phone(address)
            )
        except InvalidRecipient as exc:
            detail = f"invalid recipient: {exc}"
        if detail is None:
            if channel is Channel.EMAIL:
                text = email_text(text_kind, context)
                subject, body = text.subject, text.body
            else:
                body = sms_text(text_kind, context).text
        record = MessageRecord(
            nippu_id=nippu.nippu_id,
            kind=kind,
            kanava=str(channel),
            resend_number=resend_number,
            message_key=message_key(nippu.nippu_id, kind, str(channel), resend_number),
            status=Status.RECORDED if detail is None else Status.FAILED,
            recipient=recipient if detail is None else None,
            subject=subject,
            body=body,
            detail=detail,
        )
        ref = await insert_message(session, record)
        if ref is None:
            return 0
        await self._report(session, ref, Status(record.status), detail)
        if record.status is Status.RECORDED:
            self._wake_after_commit(session)
        return 1

    def _wake_after_commit(self, session: AsyncSession) -> None:
        callbacks = self._on_recorded
        if not callbacks:
            return

        def wake(_: object) -> None:
            for callback in callbacks:
                callback()

        if not event.contains(session.sync_session, "after_commit", wake):
            event.listen(session.sync_session, "after_commit", wake, once=True)

    async def _report(
        self, session: AsyncSession, ref: MessageRef, status: Status, detail: str | None
    ) -> None:
        """Stage `send.status` for a message's new status, in the caller's transaction."""
        status_event = self._status_event(
            ref.nippu_id, ref.message_key, ref.kind, ref.kanava, status, detail
        )
        if status_event is not None:
            await add_event(session, self.outbox, SendStatus.TYPE, status_event)

    def _status_event(
        self,
        nippu_id: uuid.UUID,
        key: str,
        kind: str,
        kanava: str,
        status: Status,
        detail: str | None,
    ) -> SendStatus | None:
        """`send.status` of a message's new status; None for a status not reported."""
        tila = REPORTED.get(status)
        if tila is None:
            return None
        return SendStatus(
            nippu_id=nippu_id,
            message_key=key,
            kind=kind,
            kanava=kanava,
            tila=tila,
            reason=None if status in (Status.RECORDED, Status.SENT) else detail,
            at=self.clock.now(),
        )

    # --- Delivery (the worker) ------------------------------------------------------

    async def expire_stale(self) -> int:
        """Messages left `sending` past their lease become unknown (reported unconfirmed
        sent): never sent again."""
        async with self.db.transaction() as session:
            refs = await expire_sending(session, UNKNOWN_OUTCOME)
            for ref in refs:
                if ref.kind in (INITIAL, RESEND):
                    await set_first_sent(session, ref.nippu_id, self.clock.today())
                await self._report(session, ref, Status.UNKNOWN, UNKNOWN_OUTCOME)
        for ref in refs:
            UNKNOWN_OUTCOMES.labels(ref.kanava).inc()
            log.warning("unknown outcome", extra={"message_key": ref.message_key})
        if refs:
            self._staged()
        return len(refs)

    async def claim(self, limit: int) -> list[Claimed]:
        async with self.db.transaction() as session:
            return await claim_due(
                session,
                claim_id=uuid.uuid4(),
                limit=limit,
                lease_seconds=self.settings.delivery_lease_seconds,
            )

    async def release(self, claimed: Sequence[Claimed]) -> None:
        """Give back claims whose attempts never started (a stopping worker)."""
        async with self.db.transaction() as session:
            await release_claims(session, [(c.id, c.claim_id) for c in claimed])

    async def deliver(self, claimed: Claimed) -> Status | None:
        """One attempt at a claimed message, its verdict recorded and reported; None when
        the claim was lost meanwhile (another worker has the message)."""

        async def handover() -> bool:
            try:
                async with self.db.driver_connection() as conn:
                    return await mark_sending(conn, claimed.id, claimed.claim_id)
            except Exception as exc:
                # Not recorded (or not known to be): do not hand over. The answer below
                # puts the message back to recorded, due again after a wait.
                log.warning(
                    "handover not recorded; not handed over",
                    extra={"message_key": claimed.message_key, "error": type(exc).__name__},
                )
                return False

        result = await self._attempt(claimed, handover)
        verdict = after_attempt(
            result,
            backoff=self.backoff,
            attempts=claimed.attempts,
            first_attempt_at=claimed.first_attempt_at,
            now=dt.datetime.now(dt.UTC),
            jitter=random.random(),
        )
        status_event = None
        if verdict.status is not Status.RECORDED:
            status_event = self._status_event(
                claimed.nippu_id,
                claimed.message_key,
                claimed.kind,
                claimed.kanava,
                verdict.status,
                verdict.detail,
            )
        went_out = verdict.status in WENT_OUT and claimed.kind in (INITIAL, RESEND)
        event = None if status_event is None else build_envelope(SendStatus.TYPE, status_event)
        for wait in (*FINISH_RETRY_WAITS, None):
            try:
                async with self.db.driver_connection() as conn:
                    changed = await finish_attempt(
                        conn,
                        claimed.id,
                        claimed.claim_id,
                        verdict,
                        server_id=result.server_id,
                        first_sent_on=self.clock.today() if went_out else None,
                        event=event,
                    )
                break
            except Exception as exc:
                # A database blip: the answer is worth keeping (a sent message left
                # `sending` would end unknown). The statement is fenced, so running it
                # again after a commit whose reply was lost changes nothing.
                if wait is None:
                    raise
                log.warning(
                    "answer not recorded; retrying",
                    extra={"message_key": claimed.message_key, "error": type(exc).__name__},
                )
                await asyncio.sleep(wait)
        DELIVERIES.labels(claimed.kanava, "lost" if not changed else verdict.status).inc()
        if not changed:
            log.warning("claim lost; result dropped", extra={"message_key": claimed.message_key})
            return None
        if status_event is not None:
            self._staged()
        return verdict.status

    async def _attempt(self, claimed: Claimed, handover: Handover) -> DeliveryResult:
        text_kind = MessageKind.REMINDER if claimed.kind == REMINDER else MessageKind.INITIAL
        channel = Channel(claimed.kanava)
        key = MessageKey(str(claimed.nippu_id), text_kind, channel, claimed.resend_number)
        context = _context(claimed.oppilaitokset, claimed.linkki, claimed.voimassa_loppupvm)
        if claimed.recipient is None:
            # Removed by P1 before it could go: it never will.
            return DeliveryResult(Outcome.PERMANENT, "recipient removed (P1)")
        if channel is Channel.EMAIL:
            message = compose_email(
                key=key,
                context=context,
                recipient=claimed.recipient,
                identity=self.identity,
                sent_at=dt.datetime.now(dt.UTC),
            )
            return await self.ports.smtp.send(
                message,
                label=claimed.message_key,
                handover=handover,
            )
        sms = compose_sms(key=key, context=context, recipient=claimed.recipient)
        return await self.ports.sms.send(
            sms,
            label=claimed.message_key,
            handover=handover,
        )

    # --- SMS delivery reports -------------------------------------------------------

    async def sms_delivery_report(
        self, *, server_id: str, status: str, status_text: str | None
    ) -> None:
        """The gateway's report: delivered, or failed → bounced (reported with its text).
        A repeated report changes nothing; an unknown id raises UnknownDeliveryReport."""
        new = report_status(status)
        if new is None:
            raise ValueError(f"unknown delivery status {status!r}")
        detail = None if new is Status.DELIVERED else (status_text or "delivery failed")[:500]
        async with self.db.transaction() as session:
            known, ref = await report_delivery(session, server_id, new, detail)
            if not known:
                raise UnknownDeliveryReport(server_id)
            if ref is not None:
                await self._report(session, ref, new, detail)

    # --- Reminders (S3) -------------------------------------------------------------

    async def reminders(self, day: dt.date) -> dict[str, int]:
        """The daily run: each bundle first sent 5 or more days before `day` without a
        reminder decision is asked about at the arvo_adapter; answered → vastattu, window
        closed → vastausaika_loppunut_ennen_muistutusta, else one reminder on the same
        channels. An adapter that does not answer leaves the bundle for the next run."""
        counts = dict.fromkeys(
            ("checked", "reminded", "messages", "vastattu", "window_closed", "unreachable"), 0
        )
        async with self.db.transaction() as session:
            candidates = await reminder_candidates(
                session,
                first_sent_by=day - REMINDER_AFTER,
                window_closed_since=day - STOP_ASKING_AFTER,
            )
        for nippu in candidates:
            counts["checked"] += 1
            try:
                status = await self.ports.survey.status(nippu.tunniste)
            except SurveyStatusUnavailable as exc:
                counts["unreachable"] += 1
                log.warning(
                    "survey status unavailable; the bundle waits for the next run",
                    extra={"nippu_id": str(nippu.nippu_id), "error": str(exc)},
                )
                continue
            last_answer_day = status.voimassa_loppupvm or nippu.voimassa_loppupvm
            assert nippu.first_sent_on is not None
            decision = reminder_decision(
                first_sent=nippu.first_sent_on,
                today=day,
                vastattu=status.vastattu,
                last_answer_day=last_answer_day,
                reminder_sent=False,
            )
            async with self.db.transaction() as session:
                sent = await self._decide(session, nippu.nippu_id, decision, day, last_answer_day)
            if sent is None:
                continue
            if decision is ReminderDecision.SEND:
                counts["reminded"] += 1
                counts["messages"] += sent
            elif decision is ReminderDecision.ANSWERED:
                counts["vastattu"] += 1
            elif decision is ReminderDecision.WINDOW_CLOSED:
                counts["window_closed"] += 1
        return counts

    async def _decide(
        self,
        session: AsyncSession,
        nippu_id: uuid.UUID,
        decision: ReminderDecision,
        day: dt.date,
        last_answer_day: dt.date,
    ) -> int | None:
        """Apply one decision under the bundle's row lock; None when another run decided
        first (or there is nothing to do yet). The number of reminder messages recorded."""
        nippu = await get_nippu(session, nippu_id, lock=True)
        if nippu is None or nippu.reminder is not None or decision is ReminderDecision.WAIT:
            return None
        if decision in (ReminderDecision.ANSWERED, ReminderDecision.WINDOW_CLOSED):
            await decide_reminder(
                session,
                nippu_id,
                decision=decision.value,
                day=day,
                voimassa_loppupvm=last_answer_day,
            )
            await add_event(
                session,
                self.outbox,
                SendStatus.TYPE,
                SendStatus(
                    nippu_id=nippu_id,
                    message_key=message_key(nippu_id, REMINDER, "-", 0),
                    kind=REMINDER,
                    nippu_tila=decision.value,
                    at=self.clock.now(),
                ),
            )
            return 0
        recipients = await reminder_recipients(session, nippu_id)
        await decide_reminder(
            session,
            nippu_id,
            decision="sent" if recipients else "no_channel",
            day=day,
            voimassa_loppupvm=last_answer_day,
        )
        recorded = 0
        for kanava, address in sorted(recipients.items()):
            recorded += await self._record(
                session,
                nippu,
                kind=REMINDER,
                channel=Channel(kanava),
                resend_number=0,
                address=address,
            )
        return recorded

    # --- P1 -------------------------------------------------------------------------

    async def personal_data_cleanup(self, day: dt.date) -> dict[str, int]:
        """P1: addresses and rendered texts of bundles whose window closed more than the
        retention before `day` are removed; statuses and history stay."""
        retention = dt.timedelta(days=self.settings.personal_data_retention_days)
        async with self.db.transaction() as session:
            removed = await remove_personal_data(session, day - retention)
        return {"messages_cleaned": removed}

    # --- Reads ----------------------------------------------------------------------

    async def messages(self, *, nippu_id: uuid.UUID, client: ApiClient) -> list[MessageView]:
        """A bundle's messages with their history, for a caller who may see its
        koulutustoimija; they hold the recipient's address: each read is audit-logged."""
        async with self.db.transaction() as session:
            nippu = await get_nippu(session, nippu_id, lock=False)
            if nippu is None or not client.may_see(nippu.koulutustoimija_oid):
                raise NotFound(f"nippu {nippu_id} is not known")
            views = await messages_of(session, nippu_id)
        audit(client, "messages.read", f"nippu/{nippu_id}")
        return views


def _context(
    oppilaitokset: Sequence[str], linkki: str, voimassa_loppupvm: dt.date
) -> MessageContext:
    return MessageContext(tuple(oppilaitokset), linkki, voimassa_loppupvm)
