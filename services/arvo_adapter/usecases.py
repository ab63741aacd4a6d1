"""The arvo_adapter's use cases: record the work an event asks for, do it against Arvo,
read a link's status.

Why the work is recorded first and done apart from the message (docs/decisions.md,
"arvo_adapter"): an Arvo call can take seconds and Arvo can be down for minutes, so no
call is made inside the consumer's transaction. The consumer commits the work (bundle,
jaksot with their request_ids, changes) with its inbox claim and acks only then; the
worker (`worker.py`) does the calls, each piece under its bundle's lock, in short
transactions of its own. A backlog waits in these tables, durable, until Arvo answers.

Exactly one link per bundle and one live code per jakso, whatever happens:
- Every creating call is written down (intent log `calls`) and committed BEFORE it is
  made, and closed with Arvo's answer in the transaction that stores what it made. A call
  left `intended` (we died) or `unknown` (the answer was lost) may have had its effect.
- Codes: a jakso's `request_id` is the same on every attempt (arvo-api.md), and a jakso
  that has a code is never asked for another. A code made by a call in doubt cannot be
  found through the contract (no search by request_id), so it cannot be deleted: such
  calls stay in the log as possible orphans, each with its request_id, which is what
  Arvo's staff need to remove them (docs/decisions.md says so plainly).
- Links: the bundle's own `tunniste` is reused on every attempt, and Arvo refuses the
  same tunniste twice, so two live links are impossible. Before a new attempt, a link
  call in doubt is reconciled by `DELETE nippu/{tunniste}` (it frees the tunniste and
  the codes; a link nobody saw was never handed out), then the link is asked again with
  a new request_id. A 400 on the link while Arvo knows the tunniste (status 200) is such a
  link made after we stopped waiting: it is put in doubt and reconciled the same way.
- The result (link, codes, outcome) and `nippu.linked` are committed together, so the
  event says exactly what is stored.
- TPK links: made by Arvo with its own tunnus and no DELETE in the contract; an attempt
  in doubt is asked again with the same request_id and logged as a possible orphan.

What Arvo answers decides the rest: a 404 on a code is "no survey" (`arvo_ei_kyselya`,
not retried); 5xx, timeouts, an open circuit put the work off (exponential backoff, never
dropped); any other 4xx (invalid data, a refusal the contract does not name) can never
succeed: the row is `rejected` and its message goes to the dead-letter queue with Arvo's
answer attached.
"""

from __future__ import annotations

import logging
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.arvo_adapter.arvo import (
    ArvoBadRequest,
    ArvoCircuitOpen,
    ArvoClient,
    ArvoError,
    ArvoNoSurvey,
    ArvoNotFound,
    ArvoRejected,
    ArvoUnavailable,
    ArvoUnknownOutcome,
    BreakerState,
    metrics,
)
from services.arvo_adapter.arvo.models import (
    TUNNISTE_PATTERN,
    Metatiedot,
    NippuPatch,
    NippuRequest,
    NippuStatus,
    NippuTunnus,
    TyopaikkakyselyRequest,
    VastaajatunnusPatch,
    VastaajatunnusRequest,
)
from services.arvo_adapter.domain.linking import (
    JaksoView,
    code_data,
    outcome,
    retry_delay,
    window_passed,
)
from services.arvo_adapter.settings import ArvoAdapterSettings
from services.arvo_adapter.store import work as store
from services.arvo_adapter.store.tables import changes, niput, outbox, tpk_niput
from shared.auth import ApiClient
from shared.clock import Clock
from shared.db import Database
from shared.events import (
    ArvoStatusUpdate,
    JaksoCancelled,
    JaksoKestoChanged,
    NippuLinked,
    NippuLinkedJaksoPayload,
    NippuReady,
    SurveyStatus,
    TpkNippuLinked,
    TpkNippuReady,
)
from shared.messaging.broker import Broker
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import add_event
from shared.messaging.topology import ARVO_ADAPTER_EVENTS, DEAD_LETTER_EXCHANGE

log = logging.getLogger(__name__)

CREATE_CODE = "create_vastaajatunnus"
CREATE_LINK = "create_nippu"
CREATE_TPK = "create_tyopaikkakysely_tunnus"
# A Retry-After is honoured up to a day (agreed hours can close a night and a weekend
# day at most before someone should look).
MAX_RETRY_AFTER_SECONDS = 86_400.0


class Invalid(Exception):
    """An event whose content Arvo could never accept (names the field, never values)."""


class NotVisible(Exception):
    """A bundle of a koulutustoimija the caller may not see (answered as unknown)."""


class Waiting(Exception):
    """A change that needs something not there yet (its bundle's code or link)."""


@dataclass(frozen=True)
class Received:
    """The message a piece of work came from: kept for the dead-letter queue."""

    message_id: uuid.UUID
    body: bytes

    @classmethod
    def of(cls, envelope: Envelope) -> Received:
        return cls(envelope.message_id, envelope.model_dump_json().encode())


class ArvoAdapter:
    """The use cases with what they need; one per process, shared by routes, consumer
    and worker."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        arvo: ArvoClient,
        broker: Broker,
        settings: ArvoAdapterSettings,
    ) -> None:
        self.db = db
        self.clock = clock
        self.arvo = arvo
        self.broker = broker
        self.settings = settings
        self._rng = random.Random()

    # --- recording (in the consumer's transaction) -------------------------------------

    async def record_nippu_ready(
        self, session: AsyncSession, *, payload: NippuReady, received: Received
    ) -> bool:
        """The bundle and a row per jakso, each with its request_id; nothing is called.
        False when the bundle was recorded before. Raises `Invalid` when a jakso's data
        could never make a code (the field is named), when the bundle has no jaksot, or
        when its tunniste is already another bundle's."""
        if not payload.jaksot:
            raise Invalid("a bundle without jaksot")
        if not re.fullmatch(TUNNISTE_PATTERN, payload.tunniste):
            raise Invalid("invalid tunniste (N2: only [a-z0-9_-])")
        rows = []
        for jakso in payload.jaksot:
            data = code_data(payload, jakso)
            try:
                VastaajatunnusRequest(request_id=uuid.uuid4(), kesto=jakso.kesto, **data)
            except ValidationError as exc:
                fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
                raise Invalid(f"jakso {jakso.jakso_id}: invalid {', '.join(fields)}") from exc
            rows.append({"jakso_id": jakso.jakso_id, "data": data, "kesto": jakso.kesto})
        recorded = await store.insert_nippu(
            session,
            nippu_id=payload.nippu_id,
            tunniste=payload.tunniste,
            koulutustoimija_oid=payload.koulutustoimija_oid,
            payload=payload.model_dump(mode="json"),
            jaksot=rows,
            message_id=received.message_id,
            message_body=received.body,
        )
        if not recorded:
            known = await store.get_nippu_by_tunniste(session, payload.tunniste)
            if known is not None and known.nippu_id != payload.nippu_id:
                raise Invalid("tunniste already used by another bundle")
        return recorded

    async def record_tpk_nippu_ready(
        self, session: AsyncSession, *, payload: TpkNippuReady, received: Received
    ) -> bool:
        return await store.insert_tpk(
            session,
            tpk_nippu_id=payload.tpk_nippu_id,
            payload=payload.model_dump(mode="json"),
            message_id=received.message_id,
            message_body=received.body,
        )

    async def record_status_update(
        self, session: AsyncSession, *, payload: ArvoStatusUpdate, received: Received
    ) -> None:
        await self._record_change(session, "patch_nippu", payload.nippu_id, None, payload, received)

    async def record_kesto_changed(
        self, session: AsyncSession, *, payload: JaksoKestoChanged, received: Received
    ) -> None:
        await self._record_change(
            session, "patch_kesto", payload.nippu_id, payload.jakso_id, payload, received
        )

    async def record_cancelled(
        self, session: AsyncSession, *, payload: JaksoCancelled, received: Received
    ) -> None:
        await self._record_change(
            session, "delete_code", payload.nippu_id, payload.jakso_id, payload, received
        )

    async def _record_change(
        self,
        session: AsyncSession,
        kind: str,
        nippu_id: uuid.UUID,
        jakso_id: int | None,
        payload: ArvoStatusUpdate | JaksoKestoChanged | JaksoCancelled,
        received: Received,
    ) -> None:
        await store.insert_change(
            session,
            nippu_id=nippu_id,
            kind=kind,
            jakso_id=jakso_id,
            payload=payload.model_dump(mode="json"),
            message_id=received.message_id,
            message_body=received.body,
        )

    # --- the worker's side ---------------------------------------------------------------

    @property
    def arvo_refuses_calls(self) -> bool:
        return self.arvo.breaker.state is BreakerState.OPEN

    @property
    def arvo_on_trial(self) -> bool:
        """Half-open: the breaker lets one trial call through to see if Arvo is back."""
        return self.arvo.breaker.state is BreakerState.HALF_OPEN

    async def due_work(self, *, limit: int, exclude: Sequence[uuid.UUID]) -> list[store.WorkKey]:
        async with self.db.transaction() as session:
            return await store.due_work(session, limit=limit, exclude=exclude)

    async def refresh_backlog(self) -> None:
        async with self.db.transaction() as session:
            counts = await store.backlog(session)
            doubts = await store.count_in_doubt(session)
        for kind, count in counts.items():
            metrics.BACKLOG.labels(kind).set(count)
        for endpoint in (CREATE_CODE, CREATE_TPK):
            metrics.POSSIBLE_ORPHANS.labels(endpoint).set(doubts.get(endpoint, 0))

    async def retry_now(self, key: uuid.UUID) -> int:
        """An operator's "try it now" for a bundle or TPK bundle waiting for Arvo (e.g.
        after Arvo's agreed hours changed): its waiting rows become due; how many."""
        async with self.db.transaction() as session:
            return await store.due_now(session, key)

    async def calls_in_doubt(self, *, limit: int) -> list[Any]:
        """For operators: what Arvo's staff need to find codes we could not (request_id)."""
        async with self.db.transaction() as session:
            return await store.calls_left_in_doubt(session, limit=limit)

    async def work(self, key: store.WorkKey) -> bool:
        """Do what is due for one bundle (the bundle, then its changes in order) or one
        TPK bundle, under its lock. False when another worker holds it."""
        async with store.locked(self.db, key.id) as lock:
            if lock is None:
                return False
            if key.kind == "tpk":
                await self._guarded(lock, tpk_niput, key.id, self._link_tpk(lock, key.id))
                return True
            async with lock.transaction() as session:
                bundle = await store.load_bundle(session, key.id, CREATE_LINK)
            ok = True
            if bundle.nippu is not None and bundle.nippu.state == "pending" and bundle.nippu.due:
                ok = await self._guarded(lock, niput, key.id, self._link_nippu(lock, bundle))
            if bundle.changes and ok:
                await self._work_changes(lock, bundle.changes)
            return True

    async def _guarded(self, lock: store.Locked, table: Table, key: Any, step: Any) -> bool:
        """Run one piece of work; write down how it ended when it did not succeed.
        True when it succeeded."""
        try:
            await step
        except Waiting as exc:
            await self._postpone(lock, table, key, exc, count_attempt=True)
        except ArvoCircuitOpen as exc:
            await self._postpone(lock, table, key, exc, count_attempt=False)
        except (ArvoUnavailable, ArvoUnknownOutcome) as exc:
            await self._postpone(lock, table, key, exc, count_attempt=True)
        except ArvoRejected as exc:
            await self._reject(lock, table, key, exc)
        except Exception as exc:
            # Our own trouble (database, a bug): retried like Arvo's, logged with its type.
            log.warning("arvo work failed", exc_info=True, extra={"error": type(exc).__name__})
            await self._postpone(lock, table, key, exc, count_attempt=True)
        else:
            return True
        return False

    async def _postpone(
        self, lock: store.Locked, table: Table, key: Any, exc: Exception, *, count_attempt: bool
    ) -> None:
        async with lock.transaction() as session:
            attempts = await store.attempts_of(session, table, key) + 1
            if isinstance(exc, ArvoCircuitOpen):
                # Open: until the cooldown ends; half-open: while the trial runs.
                breaker = self.arvo.breaker
                delay = max(breaker.seconds_until_retry() or breaker.cooldown_seconds / 4, 0.05)
            else:
                delay = retry_delay(
                    attempts,
                    initial=self.settings.arvo_work_backoff_initial_seconds,
                    maximum=self.settings.arvo_work_backoff_max_seconds,
                    rng=self._rng,
                )
                if isinstance(exc, ArvoUnavailable) and exc.retry_after:
                    # Arvo said when (e.g. outside its agreed hours for link requests).
                    delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER_SECONDS))
            await store.postpone(
                session,
                table,
                key,
                delay_seconds=delay,
                error=f"{type(exc).__name__}: {exc}",
                count_attempt=count_attempt,
            )

    async def _reject(self, lock: store.Locked, table: Table, key: Any, exc: ArvoError) -> None:
        answer = {"endpoint": exc.endpoint, "status": exc.status, "errors": exc.errors}
        log.error(
            "arvo rejected a request; dead-lettering its message",
            extra={"table": table.name, "endpoint": exc.endpoint, "status": exc.status},
        )
        async with lock.transaction() as session:
            await store.reject(session, table, key, error=str(exc), arvo_errors=answer)
        await self.dead_letter_rejected()

    async def dead_letter_rejected(self) -> int:
        """Publish the message of every rejected row not yet dead-lettered to the queue's
        DLQ, with Arvo's answer in `x-error` and `x-arvo-answer`; a failed publish is
        tried again on a later pass. Returns how many went."""
        sent = 0
        async with self.db.transaction() as session:
            rows = await store.rejected_not_dead_lettered(session, limit=100)
        for table, row in rows:
            answer = row.arvo_errors or {}
            try:
                await self.broker.publish(
                    row.message_body,
                    ARVO_ADAPTER_EVENTS.name,
                    exchange=DEAD_LETTER_EXCHANGE,
                    message_id=str(row.message_id),
                    headers={
                        "x-error": (row.last_error or "")[:1000],
                        "x-original-queue": ARVO_ADAPTER_EVENTS.name,
                        "x-arvo-status": answer.get("status"),
                        "x-arvo-errors": "; ".join(answer.get("errors") or [])[:1000],
                    },
                )
            except Exception as exc:
                log.warning("could not dead-letter yet", extra={"error": type(exc).__name__})
                break
            key = row._mapping[next(iter(table.primary_key.columns)).name]
            async with self.db.transaction() as session:
                await store.mark_dead_lettered(session, table, key)
            sent += 1
        return sent

    # --- a TEP bundle: codes, then the link ------------------------------------------------

    async def _link_nippu(self, lock: store.Locked, bundle: store.BundleWork) -> None:
        assert bundle.nippu is not None
        nippu = NippuReady.model_validate(bundle.nippu.payload)
        passed = window_passed(self.clock.today(), nippu.voimassa_loppupvm)
        jaksot = bundle.jaksot
        for jakso in jaksot:
            if jakso.state == "pending" and not jakso.cancelled:
                await self._create_code(lock, nippu, jakso, ei_kuulu=passed)
        views = [JaksoView(j.jakso_id, j.state, j.cancelled, j.tunnus) for j in jaksot]
        # The window is judged again now: it may have closed while Arvo was away.
        passed = window_passed(self.clock.today(), nippu.voimassa_loppupvm)
        result = outcome(views, passed=passed)
        live = [j for j in jaksot if not j.cancelled and j.state == "created"]
        if result == "vastausaika_umpeutunut":
            for jakso in live:
                if not jakso.ei_kuulu:
                    await self._mark_not_sent(lock, nippu.nippu_id, jakso)
        linkki: str | None = None
        voimassa = None
        call_id: int | None = None
        if result == "linked":
            call_id, created = await self._create_link(
                lock, nippu, live, bundle.link_calls_in_doubt
            )
            linkki, voimassa = created.nippulinkki, created.voimassa_loppupvm
        async with lock.transaction() as session:
            if call_id is not None:
                await store.close_call(session, call_id, "answered")
            await store.finish(
                session,
                niput,
                nippu.nippu_id,
                outcome=result,
                linkki=linkki,
                voimassa_loppupvm=voimassa,
            )
            if result != "nothing_to_link":
                await add_event(
                    session,
                    outbox,
                    NippuLinked.TYPE,
                    NippuLinked(
                        nippu_id=nippu.nippu_id,
                        tunniste=nippu.tunniste,
                        outcome=result,
                        linkki=linkki,
                        voimassa_loppupvm=voimassa,
                        jaksot=[
                            NippuLinkedJaksoPayload(jakso_id=j.jakso_id, tunnus=j.tunnus)
                            for j in jaksot
                            if not j.cancelled
                        ],
                    ),
                )
        metrics.OUTCOMES.labels("nippu", result).inc()

    async def _create_code(
        self, lock: store.Locked, nippu: NippuReady, jakso: store.JaksoRecord, *, ei_kuulu: bool
    ) -> None:
        """One attempt at a jakso's code, written down before it is sent."""
        self._refuse_if_open(CREATE_CODE)
        request = VastaajatunnusRequest(
            request_id=jakso.request_id,
            kesto=jakso.kesto,
            metatiedot=Metatiedot(ei_kuulu_lahetettavien_perusjoukkoon=ei_kuulu),
            **jakso.data,
        )
        async with lock.transaction() as session:
            call_id = await store.intend(
                session,
                endpoint=CREATE_CODE,
                request_id=jakso.request_id,
                subject=nippu.nippu_id,
                jakso_id=jakso.jakso_id,
            )
        try:
            created = await self.arvo.create_vastaajatunnus(request)
        except ArvoNoSurvey:
            async with lock.transaction() as session:
                await store.close_call(session, call_id, "answered")
                await store.update_jakso(session, nippu.nippu_id, jakso.jakso_id, state="no_survey")
            jakso.state = "no_survey"
            return
        except BaseException as exc:
            await self._close_failed_call(lock, call_id, CREATE_CODE, exc)
            raise
        async with lock.transaction() as session:
            await store.close_call(session, call_id, "answered")
            await store.update_jakso(
                session,
                nippu.nippu_id,
                jakso.jakso_id,
                state="created",
                tunnus=created.tunnus,
                ei_kuulu=ei_kuulu,
            )
        jakso.state, jakso.tunnus, jakso.ei_kuulu = "created", created.tunnus, ei_kuulu

    async def _mark_not_sent(
        self, lock: store.Locked, nippu_id: uuid.UUID, jakso: store.JaksoRecord
    ) -> None:
        """A code made before the window closed, for a bundle that will not be sent now."""
        patch = VastaajatunnusPatch(
            metatiedot=Metatiedot(ei_kuulu_lahetettavien_perusjoukkoon=True)
        )
        assert jakso.tunnus is not None
        await self.arvo.patch_vastaajatunnus(jakso.tunnus, patch)
        async with lock.transaction() as session:
            await store.update_jakso(session, nippu_id, jakso.jakso_id, ei_kuulu=True)
        jakso.ei_kuulu = True

    async def _create_link(
        self,
        lock: store.Locked,
        nippu: NippuReady,
        live: Sequence[store.JaksoRecord],
        doubts: list[int],
    ) -> tuple[int, Any]:
        """The bundle's link under its own tunniste, after any attempt in doubt has been
        undone. Returns the open intent (closed with the result) and Arvo's answer."""
        self._refuse_if_open(CREATE_LINK)
        if doubts:
            existed = await self.arvo.delete_nippu(nippu.tunniste)
            if existed:
                metrics.DUPLICATES_RECONCILED.labels("nippu").inc()
                log.warning(
                    "a link made by an attempt in doubt was deleted",
                    extra={"nippu_id": str(nippu.nippu_id)},
                )
            async with lock.transaction() as session:
                await store.mark_reconciled(session, doubts)
        request = NippuRequest(
            tunniste=nippu.tunniste,
            koulutustoimija_oid=nippu.koulutustoimija_oid,
            tutkintotunnus=nippu.tutkintotunnus,
            tyonantaja=nippu.tyonantaja,
            tyopaikka=nippu.tyopaikka,
            tunnukset=[
                NippuTunnus(
                    tunnus=j.tunnus, tyopaikkajakson_loppupvm=j.data["tyopaikkajakson_loppupvm"]
                )
                for j in live
            ],
            voimassa_alkupvm=nippu.voimassa_alkupvm,
            request_id=uuid.uuid4(),
        )
        async with lock.transaction() as session:
            call_id = await store.intend(
                session,
                endpoint=CREATE_LINK,
                request_id=request.request_id,
                subject=nippu.nippu_id,
            )
        try:
            created = await self.arvo.create_nippu(request)
        except ArvoBadRequest as exc:
            await self._close_failed_call(lock, call_id, CREATE_LINK, exc)
            if await self._tunniste_taken(nippu.tunniste):
                # Ours, made by an attempt that finished after we stopped waiting for it.
                async with lock.transaction() as session:
                    await store.close_call(session, call_id, "unknown")
                raise ArvoUnknownOutcome(
                    CREATE_LINK, "tunniste already in Arvo: reconciling", status=400
                ) from exc
            raise
        except BaseException as exc:
            await self._close_failed_call(lock, call_id, CREATE_LINK, exc)
            raise
        return call_id, created

    async def _tunniste_taken(self, tunniste: str) -> bool:
        try:
            await self.arvo.status(tunniste)
        except ArvoNotFound:
            return False
        return True

    async def _close_failed_call(
        self, lock: store.Locked, call_id: int, endpoint: str, exc: BaseException
    ) -> None:
        """Arvo said no, or surely did nothing, or we do not know (then it stays in doubt:
        `unknown`, or `intended` when even this write fails)."""
        async with lock.transaction() as session:
            if isinstance(exc, ArvoUnknownOutcome) or not isinstance(exc, ArvoError):
                await store.close_call(session, call_id, "unknown")
                metrics.IN_DOUBT.labels(endpoint).inc()
            elif isinstance(exc, ArvoRejected):
                await store.close_call(session, call_id, "answered")
            else:
                await store.forget_call(session, call_id)

    def _refuse_if_open(self, endpoint: str) -> None:
        """No intent is written for a call the breaker would refuse anyway."""
        if self.arvo_refuses_calls:
            raise ArvoCircuitOpen(
                endpoint,
                "circuit open, not called",
                retry_after=self.arvo.breaker.seconds_until_retry() or None,
            )

    # --- changes of a bundle after it was recorded ------------------------------------------

    async def _work_changes(self, lock: store.Locked, pending: Sequence[Any]) -> None:
        """In the order they came; one that must wait holds back those after it. A status
        that arrives after a later-decided one was applied is skipped (`_overtaken`)."""
        for change in pending:
            ok = await self._guarded(lock, changes, change.id, self._apply_change(lock, change))
            if not ok:
                return

    async def _apply_change(self, lock: store.Locked, change: Any) -> None:
        async with lock.transaction() as session:
            nippu = await store.get_nippu(session, change.nippu_id)
            jakso = (
                await store.get_jakso(session, change.nippu_id, change.jakso_id)
                if change.jakso_id is not None
                else None
            )
        if nippu is None:
            raise Waiting("its bundle has not been recorded yet")
        if change.kind == "patch_nippu":
            update = ArvoStatusUpdate.model_validate(change.payload)
            if nippu.state == "pending":
                raise Waiting("its bundle has no link yet")
            async with lock.transaction() as session:
                applied = await store.applied_status_bodies(session, change.nippu_id)
            tila: str | None = update.tila
            if _overtaken(change.message_body, applied) and nippu.tila is not None:
                # The later status stays; the validity this one carries (set once, on
                # the first send: W2, S4) still goes to Arvo.
                tila = nippu.tila
                if update.voimassa_loppupvm is None:
                    tila = None
            if nippu.outcome == "linked" and tila is not None:
                patch = NippuPatch.model_validate(
                    {"tila": tila, "voimassa_loppupvm": update.voimassa_loppupvm}
                )
                await self.arvo.patch_nippu(nippu.tunniste, patch)
                async with lock.transaction() as session:
                    await store.set_tila(session, nippu.nippu_id, tila)
        elif change.kind == "patch_kesto":
            kesto = JaksoKestoChanged.model_validate(change.payload).kesto
            if jakso is None:
                raise Waiting("its jakso has not been recorded yet")
            if jakso.state == "created" and not jakso.cancelled:
                await self.arvo.patch_vastaajatunnus(jakso.tunnus, VastaajatunnusPatch(kesto=kesto))
            async with lock.transaction() as session:
                await store.update_jakso(session, nippu.nippu_id, jakso.jakso_id, kesto=kesto)
        elif change.kind == "delete_code":
            JaksoCancelled.model_validate(change.payload)
            if jakso is None:
                raise Waiting("its jakso has not been recorded yet")
            async with lock.transaction() as session:
                await store.update_jakso(session, nippu.nippu_id, jakso.jakso_id, cancelled=True)
            if jakso.state == "created" and jakso.code_deleted_at is None:
                await self.arvo.delete_vastaajatunnus(jakso.tunnus)
                async with lock.transaction() as session:
                    await store.mark_code_deleted(session, nippu.nippu_id, jakso.jakso_id)
        async with lock.transaction() as session:
            await store.finish(session, changes, change.id)

    # --- a TPK bundle -----------------------------------------------------------------------

    async def _link_tpk(self, lock: store.Locked, tpk_nippu_id: uuid.UUID) -> None:
        async with lock.transaction() as session:
            row = await store.get_tpk(session, tpk_nippu_id)
        if row is None or row.state != "pending":
            return
        payload = TpkNippuReady.model_validate(row.payload)
        self._refuse_if_open(CREATE_TPK)
        request = TyopaikkakyselyRequest(
            request_id=row.request_id,
            **payload.model_dump(exclude={"tpk_nippu_id"}),
        )
        async with lock.transaction() as session:
            call_id = await store.intend(
                session, endpoint=CREATE_TPK, request_id=row.request_id, subject=tpk_nippu_id
            )
        try:
            created = await self.arvo.create_tyopaikkakysely_tunnus(request)
        except BaseException as exc:
            await self._close_failed_call(lock, call_id, CREATE_TPK, exc)
            raise
        async with lock.transaction() as session:
            await store.close_call(session, call_id, "answered")
            await store.finish(
                session,
                tpk_niput,
                tpk_nippu_id,
                tunnus=created.tunnus,
                kysely_linkki=created.kysely_linkki,
                voimassa_loppupvm=created.voimassa_loppupvm,
            )
            await add_event(
                session,
                outbox,
                TpkNippuLinked.TYPE,
                TpkNippuLinked(
                    tpk_nippu_id=tpk_nippu_id,
                    tunnus=created.tunnus,
                    kysely_linkki=created.kysely_linkki,
                    voimassa_loppupvm=created.voimassa_loppupvm,
                ),
            )
        metrics.OUTCOMES.labels("tpk", "linked").inc()

    # --- reading a link's status --------------------------------------------------------------

    async def link_status(self, tunniste: str, *, client: ApiClient) -> NippuStatus:
        """Arvo's word on a bundle, read through (a caller waits: short timeout). The
        first time it shows an answer, `survey.status` is published for the bundler. A
        client limited to some koulutustoimijat sees only their bundles."""
        if not client.may_see(None):
            async with self.db.transaction() as session:
                known = await store.get_nippu_by_tunniste(session, tunniste)
            if known is None or not client.may_see(known.koulutustoimija_oid):
                raise NotVisible(tunniste)
        status = await self.arvo.status(tunniste)
        if status.vastattu:
            async with self.db.transaction() as session:
                if await store.mark_vastattu_reported(session, tunniste) is not None:
                    await add_event(
                        session,
                        outbox,
                        SurveyStatus.TYPE,
                        SurveyStatus(
                            tunniste=tunniste,
                            vastattu=True,
                            voimassa_loppupvm=status.voimassa_loppupvm,
                        ),
                    )
        return status


def _overtaken(body: bytes, applied: Sequence[bytes]) -> bool:
    """Whether a status the bundler decided later is already in Arvo.

    Status updates of one bundle are decided in order (the bundler holds the bundle's row
    lock), but they reach us in any order: one that failed a first delivery comes back
    through the retry queue, or in a batch that committed after the next one's, after
    those behind it. Arriving late, an earlier status would overwrite a later one
    (`lahetetty` after `vastattu`), so the envelope's `occurred_at`, set by the bundler's
    outbox when it decided, orders them: an overtaken status is not sent again, only the
    validity it carries."""
    occurred = Envelope.model_validate_json(body).occurred_at
    return any(Envelope.model_validate_json(other).occurred_at > occurred for other in applied)
