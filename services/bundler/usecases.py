"""The bundler's use cases, called by its consumers and routes alike.

Each reads top to bottom: lock and load, decide (the domain: `changes.judge_hoks`),
store, record. The event use cases run in the consumer's transaction (the inbox claim
is in it too), so a redelivered message changes nothing; an older version than the one
stored is ignored, so any order of events ends in the state of the newest.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from services.bundler.domain import flow, from_events
from services.bundler.domain.changes import (
    JaksoChange,
    StoredJakso,
    context_changes,
    judge_hoks,
    with_removed,
)
from services.bundler.domain.eligibility import JaksoState, LoppuMuutos, Syy, Tila
from services.bundler.domain.jakso import Hoks, Jakso, JaksoId, Opiskeluoikeus
from services.bundler.domain.kesto import OppijanJakso
from services.bundler.domain.kesto import kesto as kesto_of
from services.bundler.domain.retention import Cutoff, keeps_removed, without_instructor
from services.bundler.store import flow as flow_store
from services.bundler.store.cleanup import Limits, remove_from_jaksot, remove_from_niput
from services.bundler.store.state import (
    JaksoRecord,
    JaksoView,
    StoredHoks,
    StoredJaksoRow,
    TransitionRecord,
    add_transitions,
    get_hoks,
    get_opiskeluoikeus,
    hoks_koulutustoimija,
    hoksit_of_opiskeluoikeus,
    insert_jakso,
    jakso_owner,
    jaksot_of_hoks,
    jaksot_view,
    lock_hoks,
    lock_opiskeluoikeus,
    save_hoks,
    save_opiskeluoikeus,
    set_hoks_version,
    transitions_of,
    update_jakso,
)
from services.bundler.store.tables import outbox
from shared.auth import ALL_KOULUTUSTOIMIJAT, ApiClient, audit
from shared.clock import HELSINKI, Clock
from shared.db import Database
from shared.domain.contacts import JaksoContact
from shared.domain.dates import DEFAULT_POLICIES, PolicySchedule, Rahoituskausi, rahoituskausi
from shared.events import (
    ArvoStatusUpdate,
    HoksChanged,
    HoksDeleted,
    JaksoCancelled,
    JaksoKestoChanged,
    JaksoPayload,
    NippuLinked,
    OpiskeluoikeusChanged,
    SendRequested,
    SendStatus,
    SurveyStatus,
    TpkNippuLinked,
)
from shared.messaging.outbox import add_event
from shared.service import Service

log = logging.getLogger(__name__)


class NotFound(Exception):
    """Unknown, or another koulutustoimija's (HTTP 404 either way: a caller cannot learn
    that another provider's data exists)."""


@dataclass(frozen=True)
class Cause:
    """What made the bundler look at a jakso again (E18): an event and its version."""

    event_type: str
    version: int
    message_id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.event_type} v{self.version}"


@dataclass(frozen=True)
class _HoksContext:
    """One HOKS as a judgement needs it: the domain value and what its rows carry."""

    hoks: Hoks
    version: int
    opiskeluoikeus: Opiskeluoikeus | None
    koulutustoimija_oid: str | None


class Bundler:
    """The use cases with what they need; one per process, shared by routes and consumers."""

    def __init__(
        self, *, db: Database, clock: Clock, policies: PolicySchedule = DEFAULT_POLICIES
    ) -> None:
        self.db = db
        self.clock = clock
        self.policies = policies
        self.flow = Flow(db=db, clock=clock)

    @classmethod
    def of(cls, service: Service) -> Bundler:
        """The use cases on a Service's database and clock."""
        return cls(db=service.db, clock=service.clock)

    # --- Keeping state current (E, J4, W4, E14, E18) ---------------------------------

    async def apply_hoks_changed(
        self, session: AsyncSession, *, payload: HoksChanged, cause: Cause
    ) -> bool:
        """A new HOKS version: store its jaksot (J2) and judge every jakso of the HOKS;
        one missing from this version was removed (E14). False when older than stored."""
        await lock_hoks(session, payload.hoks_id)
        before = await get_hoks(session, payload.hoks_id)
        if before is not None and before.version >= payload.version:
            return _ignored(cause, before.version)
        await lock_opiskeluoikeus(session, payload.opiskeluoikeus_oid)
        hoks = from_events.hoks(payload)
        await save_hoks(
            session,
            StoredHoks(
                hoks_id=hoks.hoks_id,
                version=payload.version,
                oppija_oid=hoks.oppija_oid,
                opiskeluoikeus_oid=hoks.opiskeluoikeus_oid,
                is_tuva=hoks.is_tuva,
                deleted=False,
            ),
        )
        context = await self._context(session, hoks, payload.version)
        new = {from_events.jakso(hoks.hoks_id, p).id: p for p in payload.jaksot}
        old_hoks = _domain_hoks(before)
        await self._judge(
            session,
            context,
            new_payloads=new,
            changed=context_changes(old_hoks=old_hoks, new_hoks=hoks),
            cause=cause,
        )
        return True

    async def apply_hoks_deleted(
        self, session: AsyncSession, *, payload: HoksDeleted, cause: Cause
    ) -> bool:
        """The HOKS was deleted: its jaksot not yet bundled end `hoks_poistettu` (E14).
        A deletion seen before any version leaves a tombstone that older versions meet."""
        await lock_hoks(session, payload.hoks_id)
        before = await get_hoks(session, payload.hoks_id)
        if before is not None and before.version >= payload.version:
            return _ignored(cause, before.version)
        if before is None or before.opiskeluoikeus_oid is None:
            await save_hoks(
                session,
                StoredHoks(payload.hoks_id, payload.version, None, None, False, deleted=True),
            )
            return True
        await lock_opiskeluoikeus(session, before.opiskeluoikeus_oid)
        await save_hoks(session, replace(before, version=payload.version, deleted=True))
        old_hoks = _domain_hoks(before)
        assert old_hoks is not None
        hoks = replace(old_hoks, poistettu=True)
        context = await self._context(session, hoks, payload.version)
        await self._judge(
            session,
            context,
            changed=context_changes(old_hoks=old_hoks, new_hoks=hoks),
            cause=cause,
        )
        return True

    async def apply_opiskeluoikeus_changed(
        self, session: AsyncSession, *, payload: OpiskeluoikeusChanged, cause: Cause
    ) -> bool:
        """A new study-right version: re-judge the jaksot of every HOKS on it (E3 → E4–E15,
        E7, E10, E16, E17). False when older than stored."""
        await lock_opiskeluoikeus(session, payload.oid)
        before = await get_opiskeluoikeus(session, payload.oid)
        if before is not None and before.version >= payload.version:
            return _ignored(cause, before.version)
        await save_opiskeluoikeus(session, payload)
        new = from_events.opiskeluoikeus(payload)
        changed = context_changes(
            old_opiskeluoikeus=None if before is None else from_events.opiskeluoikeus(before),
            new_opiskeluoikeus=new,
        )
        for stored in await hoksit_of_opiskeluoikeus(session, payload.oid):
            hoks = _domain_hoks(stored)
            assert hoks is not None  # a HOKS found by its study right is no tombstone
            context = _HoksContext(hoks, stored.version, new, new.koulutustoimija_oid)
            await self._judge(session, context, changed=changed, cause=cause)
        return True

    async def _context(self, session: AsyncSession, hoks: Hoks, version: int) -> _HoksContext:
        payload = await get_opiskeluoikeus(session, hoks.opiskeluoikeus_oid)
        opiskeluoikeus = None if payload is None else from_events.opiskeluoikeus(payload)
        return _HoksContext(
            hoks,
            version,
            opiskeluoikeus,
            None if opiskeluoikeus is None else opiskeluoikeus.koulutustoimija_oid,
        )

    async def _judge(
        self,
        session: AsyncSession,
        context: _HoksContext,
        *,
        changed: Sequence[str],
        cause: Cause,
        new_payloads: Mapping[JaksoId, JaksoPayload] | None = None,
    ) -> None:
        """Judge every jakso of one HOKS (J4 needs them all), store each, record the
        transitions (E18). `new_payloads`: a new HOKS version's jaksot, else the stored
        jaksot are judged as they are."""
        hoks = context.hoks
        loaded = [
            (_stored(hoks.hoks_id, row), row) for row in await jaksot_of_hoks(session, hoks.hoks_id)
        ]
        stored = {s.jakso.id: s for s, _ in loaded}
        rows = {s.jakso.id: row for s, row in loaded}
        removed = _still_removed(rows, stored, new_payloads)
        if new_payloads is not None and removed:
            new_payloads = {
                jakso_id: without_instructor(p) if jakso_id in removed else p
                for jakso_id, p in new_payloads.items()
            }
        if new_payloads is None:
            current: Sequence[Jakso] = [s.jakso for s in stored.values()]
        else:
            current = with_removed(
                [from_events.jakso(hoks.hoks_id, p) for p in new_payloads.values()], stored
            )
        changes = judge_hoks(
            hoks=hoks,
            jaksot=current,
            stored=stored,
            opiskeluoikeus=context.opiskeluoikeus,
            today=self.clock.today(),
            context=changed,
            policies=self.policies,
        )
        at = self.clock.now()
        transitions: list[TransitionRecord] = []
        applied: list[tuple[int, JaksoChange, StoredJakso | None]] = []
        for change in changes:
            jakso_id = change.jakso.id
            row = rows.get(jakso_id)
            payload = (new_payloads or {}).get(jakso_id) or (row.payload if row else None)
            assert payload is not None  # every judged jakso is new or stored
            record = _record(context, payload, change, jakso_id in removed)
            if row is None:
                row_id = await insert_jakso(session, record, tunniste=jakso_id.tunniste)
            else:
                row_id = row.id
                await update_jakso(session, row_id, record)
            if change.recorded:
                transitions.append(_transition(row_id, change, cause, at))
            applied.append((row_id, change, stored.get(jakso_id)))
        await set_hoks_version(
            session,
            hoks.hoks_id,
            hoks_version=context.version,
            koulutustoimija_oid=context.koulutustoimija_oid,
        )
        await add_transitions(session, transitions)
        # After bundling: cancellations (E14) and K4, in the same transaction.
        await self.flow.after_judge(
            session, oppija_oid=hoks.oppija_oid, changes=applied, cause=cause
        )

    # --- Personal data (P1) -----------------------------------------------------------

    async def remove_personal_data(
        self, *, date: dt.date, retention_days: int, batch_size: int = 1000
    ) -> dict[str, int]:
        """P1: instructors' names, e-mails and phones out of the bundles and jaksot whose
        purpose ended more than `retention_days` before `date` (`retention.Cutoff`).
        Batches of their own transactions; a second run finds nothing to do."""
        cutoff = Cutoff(date, retention_days)
        limits = Limits(
            bundle_closed_before=cutoff.bundle_closed_before,
            niputuspvm_before=cutoff.niputuspvm_before,
            loppu_before=cutoff.loppu_before,
            unchanged_since=cutoff.unchanged_since,
        )
        counts: dict[str, int] = {}
        for name, remove in (("niput", remove_from_niput), ("jaksot", remove_from_jaksot)):
            counts[name], after = 0, None
            while True:
                async with self.db.transaction() as session:
                    batch = await remove(
                        session, limits, after=after, batch_size=batch_size, now=self.clock.now()
                    )
                if batch.cleaned == 0:
                    break
                counts[name] += batch.cleaned
                after = batch.last_id
        return counts

    # --- Reads ------------------------------------------------------------------------

    async def hoks_jaksot(self, *, hoks_id: int, client: ApiClient) -> list[JaksoView]:
        """The jaksot of a HOKS (api.md), for a caller who may see its koulutustoimija.
        They describe an identifiable student's studies: each read is audit-logged."""
        async with self.db.transaction() as session:
            known, owner = await hoks_koulutustoimija(session, hoks_id)
            if not known or not client.may_see(owner):
                raise NotFound(f"HOKS {hoks_id} is not known")
            views = await jaksot_view(session, hoks_id)
        audit(client, "hoks.jaksot.read", f"hoks/{hoks_id}")
        return views

    async def jakso_history(self, *, jakso_id: int, client: ApiClient) -> list[TransitionRecord]:
        """Every recorded transition of a jakso, oldest first (E18): why it is where it is."""
        async with self.db.transaction() as session:
            known, owner = await jakso_owner(session, jakso_id)
            if not known or not client.may_see(owner):
                raise NotFound(f"jakso {jakso_id} is not known")
            transitions = await transitions_of(session, jakso_id)
        audit(client, "jakso.history.read", f"jakso/{jakso_id}")
        return transitions


def _ignored(cause: Cause, stored_version: int) -> bool:
    log.info(
        "older version ignored",
        extra={"cause": str(cause), "stored_version": stored_version},
    )
    return False


def _domain_hoks(stored: StoredHoks | None) -> Hoks | None:
    if stored is None or stored.oppija_oid is None or stored.opiskeluoikeus_oid is None:
        return None
    return Hoks(
        hoks_id=stored.hoks_id,
        oppija_oid=stored.oppija_oid,
        opiskeluoikeus_oid=stored.opiskeluoikeus_oid,
        is_tuva=stored.is_tuva,
        poistettu=stored.deleted,
    )


def _stored(hoks_id: int, row: StoredJaksoRow) -> StoredJakso:
    return StoredJakso(
        jakso=replace(from_events.jakso(hoks_id, row.payload), poistettu=row.poistettu),
        state=JaksoState(Tila(row.tila), Syy(row.syy)),
        rule=row.rule,
        niputuspvm=row.niputuspvm,
    )


def _still_removed(
    rows: Mapping[JaksoId, StoredJaksoRow],
    stored: Mapping[JaksoId, StoredJakso],
    new_payloads: Mapping[JaksoId, JaksoPayload] | None,
) -> set[JaksoId]:
    """The jaksot whose instructor data P1 removed and that stay without it (a new HOKS
    version brings it back only when `loppu` moved for a jakso not bundled)."""
    kept: set[JaksoId] = set()
    for jakso_id, row in rows.items():
        if not row.personal_data_removed:
            continue
        new = (new_payloads or {}).get(jakso_id)
        if new is None or keeps_removed(
            stored[jakso_id].state, stored_loppu=row.payload.loppu, new_loppu=new.loppu
        ):
            kept.add(jakso_id)
    return kept


def _record(
    context: _HoksContext, payload: JaksoPayload, change: JaksoChange, personal_data_removed: bool
) -> JaksoRecord:
    hoks = context.hoks
    return JaksoRecord(
        hoks_id=hoks.hoks_id,
        hoks_version=context.version,
        oppija_oid=hoks.oppija_oid,
        opiskeluoikeus_oid=hoks.opiskeluoikeus_oid,
        koulutustoimija_oid=context.koulutustoimija_oid,
        payload=payload,
        ohjaaja_normalisoitu=change.ohjaaja_normalisoitu,
        tyopaikka_normalisoitu=change.tyopaikka_normalisoitu,
        tila=change.state.tila.value,
        syy=(change.state.syy or change.evaluated.syy).value,
        rule=change.rule,
        niputuspvm=change.niputuspvm,
        poistettu=change.jakso.poistettu,
        personal_data_removed=personal_data_removed,
    )


def _transition(
    jakso_id: int, change: JaksoChange, cause: Cause, at: dt.datetime
) -> TransitionRecord:
    old = change.transition.old
    muutos = change.loppu_muutos
    return TransitionRecord(
        jakso_id=jakso_id,
        at=at,
        from_tila=None if old is None else old.tila.value,
        from_syy=None if old is None or old.syy is None else old.syy.value,
        to_tila=change.evaluated.tila.value,
        to_syy=change.evaluated.syy.value,
        rule=change.evaluated.rule,
        changed=change.transition.changed,
        cause=str(cause),
        message_id=cause.message_id,
        applied=change.applied,
        loppu_muutos=None if muutos in (None, LoppuMuutos.UNCHANGED) else str(muutos),
    )


# --- After Arvo and the sender; read APIs and reports (bundler-flow) ---------------------


class UnknownNippu(Exception):
    """An event about a bundle this bundler never formed, or one that contradicts itself
    (`linked` without a link): it can never be applied."""


@dataclass(frozen=True)
class FlowCause:
    """The event behind a later state of a jakso (E18 history)."""

    event_type: str
    message_id: uuid.UUID


@dataclass(frozen=True)
class ResponseRate:
    """Sent and answered bundles (one link each) and their jaksot, per koulutustoimija."""

    koulutustoimija: str
    kysely: str
    sent: int
    answered: int
    rate: float | None
    jaksot_sent: int
    jaksot_answered: int
    jaksot_rate: float | None


@dataclass(frozen=True)
class ContactIssueRow:
    """C3/J2: a jakso to fix before `korjattava_viimeistaan` (its niputuspvm)."""

    jakso_id: int
    hoks_id: int
    yksiloiva_tunniste: str | None
    koulutustoimija: str | None
    tyopaikka: str | None
    ytunnus: str | None
    tila: str
    syy: str
    korjattava_viimeistaan: dt.date | None
    issues: list[str]


#: Bundle states in which its message went out (response rates).
_SENT_TILAT = frozenset(
    {
        flow.NippuTila.LAHETETTY,
        flow.NippuTila.VASTATTU,
        flow.NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA,
    }
)
#: States Arvo is told of (S2); it knows `vastattu` itself, and a bundle that timed out
#: before its link has nothing in Arvo to update.
_REPORTED_TO_ARVO = frozenset(
    {
        flow.NippuTila.LAHETETTY,
        flow.NippuTila.LAHETYS_EPAONNISTUNUT,
        flow.NippuTila.BOUNCED,
        flow.NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA,
        flow.NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA,
    }
)
_LATER_RULES = {
    flow.NippuTila.LAHETETTY: "S2",
    flow.NippuTila.VASTATTU: "S3",
    flow.NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA: "S3",
    flow.NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA: "W3",
    flow.NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA: "C3",
    flow.NippuTila.ARVO_EI_KYSELYA: "arvo_404",
}


class Flow:
    """What follows a formed bundle: Arvo's link, the channels, the sender's reports,
    Arvo's answers, resends (S4), K4 and cancellations; and the read APIs and reports.

    Every event use case runs in the consumer's transaction with a row lock on its
    bundle, so the reports of one bundle apply one at a time, in any order (the pure
    rules of `domain.flow` make a late, lower-ranked report change nothing)."""

    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    @classmethod
    def of(cls, service: Service) -> Flow:
        return cls(db=service.db, clock=service.clock)

    # --- nippu.linked, tpk_nippu.linked -------------------------------------------------

    async def apply_nippu_linked(
        self, session: AsyncSession, *, payload: NippuLinked, cause: FlowCause
    ) -> None:
        """Store the link and each jakso's code; then send (C3, C4) or tell Arvo that the
        bundle has no usable contact; or end the bundle without a survey (Arvo 404, the
        window passed before Arvo was reached)."""
        nippu = await flow_store.lock_nippu(session, payload.nippu_id)
        if nippu is None:
            raise UnknownNippu(f"nippu {payload.nippu_id} is not known")
        if nippu.linkki is not None or nippu.tila in _LINKED_WITHOUT_LINK:
            log.info("nippu already linked", extra={"nippu_id": str(nippu.id)})
            return
        await flow_store.set_tunnukset(session, {j.jakso_id: j.tunnus for j in payload.jaksot})
        members = await flow_store.jaksot_of_nippu(session, nippu.id)
        live = [j for j in members if flow.jakso_follows_bundle(j.tila, j.syy)]
        if payload.outcome == "arvo_ei_kyselya":
            tila = flow.NippuTila.ARVO_EI_KYSELYA
        elif payload.outcome == "vastausaika_umpeutunut":
            tila = flow.NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA
        elif not live:
            tila = flow.NippuTila.PERUTTU
        elif payload.linkki is None:
            raise UnknownNippu(f"nippu.linked of {nippu.id} is `linked` without a link")
        else:
            await self._link(session, nippu, payload.linkki, payload, live, cause)
            return
        await flow_store.update_nippu(
            session, nippu.id, tila=tila.value, linkki=payload.linkki, **_validity(payload)
        )
        await self._jaksot_follow(session, live, tila, cause)

    async def _link(
        self,
        session: AsyncSession,
        nippu: flow_store.NippuRow,
        linkki: str,
        payload: NippuLinked,
        live: Sequence[flow_store.NippuJakso],
        cause: FlowCause,
    ) -> None:
        decision = flow.decide_link(JaksoContact(j.sahkoposti, j.puhelinnumero) for j in live)
        contacts = decision.contacts
        voimassa = payload.voimassa_loppupvm or nippu.voimassa_loppupvm
        await flow_store.update_nippu(
            session,
            nippu.id,
            tila=decision.tila.value,
            linkki=linkki,
            voimassa_loppupvm=voimassa,
            sahkoposti=contacts.sahkoposti,
            puhelinnumero=contacts.puhelinnumero,
            sahkoposti_tila=None if contacts.email_issue is None else str(contacts.email_issue),
            puhelin_tila=None if contacts.phone_issue is None else str(contacts.phone_issue),
        )
        if not decision.send:
            await self._jaksot_follow(session, live, decision.tila, cause)
            await add_event(
                session,
                outbox,
                ArvoStatusUpdate.TYPE,
                ArvoStatusUpdate(
                    nippu_id=nippu.id,
                    tunniste=nippu.tunniste,
                    tila=decision.tila.value,
                    voimassa_loppupvm=voimassa,
                ),
            )
            return
        await add_event(
            session,
            outbox,
            SendRequested.TYPE,
            SendRequested(
                nippu_id=nippu.id,
                tunniste=nippu.tunniste,
                kind="initial",
                resend_number=0,
                linkki=linkki,
                niputuspvm=nippu.niputuspvm,
                voimassa_loppupvm=voimassa,
                koulutustoimija_oid=nippu.koulutustoimija_oid,
                oppilaitokset=_oppilaitokset(live),
                sahkoposti=contacts.sahkoposti,
                puhelinnumero=contacts.puhelinnumero,
            ),
        )

    async def apply_tpk_nippu_linked(
        self, session: AsyncSession, *, payload: TpkNippuLinked
    ) -> None:
        """T5: the link waits in the bundler for the provider to fetch it."""
        stored = await flow_store.set_tpk_link(
            session,
            payload.tpk_nippu_id,
            tunnus=payload.tunnus,
            kysely_linkki=payload.kysely_linkki,
            voimassa_loppupvm=payload.voimassa_loppupvm,
        )
        if not stored:
            raise UnknownNippu(f"tpk nippu {payload.tpk_nippu_id} is not known")

    # --- send.status, survey.status ------------------------------------------------------

    async def apply_send_status(
        self, session: AsyncSession, *, payload: SendStatus, cause: FlowCause
    ) -> None:
        """Record the sender's report, then derive the bundle's state from all of its
        messages' reports (S2) or take the reminder run's verdict (S3); on the first
        successful send set the validity by W2; tell Arvo (S2)."""
        nippu = await flow_store.lock_nippu(session, payload.nippu_id)
        if nippu is None:
            raise UnknownNippu(f"nippu {payload.nippu_id} is not known")
        reports = (await flow_store.lahetykset_of(session, [nippu.id]))[nippu.id]
        await flow_store.add_lahetys(
            session,
            nippu_id=nippu.id,
            message_key=payload.message_key,
            kind=payload.kind,
            kanava=payload.kanava,
            tila=payload.tila,
            reason=payload.reason,
            at=payload.at,
        )
        if payload.nippu_tila is not None:
            proposed = flow.NippuTila(payload.nippu_tila)
        elif payload.tila is not None:
            messages = flow.latest_message_states(
                [(r.message_key, r.tila) for r in reports if r.tila is not None]
                + [(payload.message_key, payload.tila)]
            )
            expected = (nippu.sahkoposti is not None) + (nippu.puhelinnumero is not None)
            proposed = flow.sending_tila(messages, expected)
        else:
            return
        new = flow.next_tila(nippu.tila, proposed)
        if new is None:
            return
        values: dict[str, object] = {"tila": new.value}
        voimassa = nippu.voimassa_loppupvm
        earlier_sent = any(r.tila in ("sent", "delivered") for r in reports)
        if new is flow.NippuTila.LAHETETTY and not earlier_sent:
            sent_on = payload.at.astimezone(HELSINKI).date()
            voimassa = flow.validity_on_first_send(nippu.niputuspvm, sent_on)
            values.update(lahetyspvm=sent_on, voimassa_loppupvm=voimassa)
        await flow_store.update_nippu(session, nippu.id, **values)
        members = await flow_store.jaksot_of_nippu(session, nippu.id)
        await self._jaksot_follow(
            session, [j for j in members if flow.jakso_follows_bundle(j.tila, j.syy)], new, cause
        )
        if new in _REPORTED_TO_ARVO:
            await add_event(
                session,
                outbox,
                ArvoStatusUpdate.TYPE,
                ArvoStatusUpdate(
                    nippu_id=nippu.id,
                    tunniste=nippu.tunniste,
                    tila=new.value,
                    voimassa_loppupvm=voimassa,
                ),
            )

    async def apply_survey_status(
        self, session: AsyncSession, *, payload: SurveyStatus, cause: FlowCause
    ) -> None:
        """Arvo says the bundle's survey was answered: `vastattu`, whatever came before
        (S3). An unanswered status changes nothing: the reminder run decides the rest."""
        nippu = await flow_store.lock_nippu_by_tunniste(session, payload.tunniste)
        if nippu is None:
            log.warning("survey.status of an unknown bundle ignored")
            return
        if not payload.vastattu:
            return
        new = flow.next_tila(nippu.tila, flow.NippuTila.VASTATTU)
        if new is None:
            return
        await flow_store.update_nippu(session, nippu.id, tila=new.value)
        members = await flow_store.jaksot_of_nippu(session, nippu.id)
        await self._jaksot_follow(
            session,
            [
                j
                for j in members
                if flow.jakso_follows_bundle(j.tila, j.syy) or j.tila == "lahetetty"
            ],
            new,
            cause,
        )

    async def _jaksot_follow(
        self,
        session: AsyncSession,
        members: Sequence[flow_store.NippuJakso],
        tila: flow.NippuTila,
        cause: FlowCause,
    ) -> None:
        """The bundle's jaksot take its later state (rules.md), each change recorded."""
        later = flow.JAKSO_STATE_OF.get(tila)
        if later is None:
            return
        moving = [j for j in members if (j.tila, j.syy) != (later.tila, later.syy or j.syy)]
        rule = _LATER_RULES[tila]
        await flow_store.set_jakso_states(
            session,
            [j.id for j in moving],
            tila=later.tila.value,
            syy=None if later.syy is None else later.syy.value,
            rule=rule,
        )
        at = self.clock.now()
        await add_transitions(
            session,
            [
                TransitionRecord(
                    jakso_id=j.id,
                    at=at,
                    from_tila=j.tila,
                    from_syy=j.syy,
                    to_tila=later.tila.value,
                    to_syy=j.syy if later.syy is None else later.syy.value,
                    rule=rule,
                    changed=("nippu.tila",),
                    cause=cause.event_type,
                    message_id=cause.message_id,
                    applied=True,
                    loppu_muutos=None,
                )
                for j in moving
            ],
        )

    # --- Resend (S4) -------------------------------------------------------------------------

    async def resend(
        self,
        *,
        nippu_id: uuid.UUID,
        client: ApiClient,
        sahkoposti: str | None,
        puhelinnumero: str | None,
    ) -> int:
        """S4: the same link and validity again, to the corrected address(es) when given.
        Returns the resend's number. Raises NotFound, `flow.InvalidAddress` (422) or
        `flow.ResendRefused` (409)."""
        async with self.db.transaction() as session:
            nippu = await flow_store.lock_nippu(session, nippu_id)
            if nippu is None or not client.may_see(nippu.koulutustoimija_oid):
                raise NotFound(f"nippu {nippu_id} is not known")
            target = flow.decide_resend(
                tila=nippu.tila,
                linkki=nippu.linkki,
                voimassa_loppupvm=nippu.voimassa_loppupvm,
                today=self.clock.today(),
                stored=flow.ResendTarget(nippu.sahkoposti, nippu.puhelinnumero),
                sahkoposti=sahkoposti,
                puhelinnumero=puhelinnumero,
            )
            assert nippu.linkki is not None  # decide_resend refuses a bundle without one
            number = nippu.resend_count + 1
            values: dict[str, object] = {"resend_count": number}
            if target.sahkoposti is not None and sahkoposti is not None:
                values.update(sahkoposti=target.sahkoposti, sahkoposti_tila=None)
            if target.puhelinnumero is not None and puhelinnumero is not None:
                values.update(puhelinnumero=target.puhelinnumero, puhelin_tila=None)
            await flow_store.update_nippu(session, nippu.id, **values)
            members = await flow_store.jaksot_of_nippu(session, nippu.id)
            await add_event(
                session,
                outbox,
                SendRequested.TYPE,
                SendRequested(
                    nippu_id=nippu.id,
                    tunniste=nippu.tunniste,
                    kind="resend",
                    resend_number=number,
                    linkki=nippu.linkki,
                    niputuspvm=nippu.niputuspvm,
                    voimassa_loppupvm=nippu.voimassa_loppupvm,
                    koulutustoimija_oid=nippu.koulutustoimija_oid,
                    oppilaitokset=_oppilaitokset(members),
                    sahkoposti=target.sahkoposti,
                    puhelinnumero=target.puhelinnumero,
                ),
            )
        log.info("resend requested", extra={"nippu_id": str(nippu_id), "resend_number": number})
        return number

    # --- K4 and cancellations (called by Bundler._judge) ---------------------------------

    async def after_judge(
        self,
        session: AsyncSession,
        *,
        oppija_oid: str,
        changes: Sequence[tuple[int, JaksoChange, StoredJakso | None]],
        cause: Cause,
    ) -> None:
        """E14 for bundled jaksot not yet sent: `jakso.cancelled`; then K4: a recorded
        change of a jakso may change the kesto of the student's bundled jaksot in the same
        rahoituskausi: `jakso.kesto_changed` for each whose kesto moved."""
        recorded = [(row_id, c, s) for row_id, c, s in changes if c.recorded]
        if not recorded:
            return
        at = self.clock.now()
        for row_id, change, before in recorded:
            if before is None or change.applied:
                continue
            evaluated = change.evaluated
            if not flow.cancels_bundled(
                before.state.tila, before.state.syy or "", evaluated.tila, evaluated.syy
            ):
                continue
            nippu_id = await flow_store.nippu_of_jakso(session, row_id)
            if nippu_id is None:
                continue
            await flow_store.set_jakso_states(
                session, [row_id], tila=evaluated.tila, syy=evaluated.syy, rule=evaluated.rule
            )
            await add_transitions(
                session,
                [
                    TransitionRecord(
                        jakso_id=row_id,
                        at=at,
                        from_tila=before.state.tila.value,
                        from_syy=None if before.state.syy is None else before.state.syy.value,
                        to_tila=evaluated.tila.value,
                        to_syy=evaluated.syy.value,
                        rule=evaluated.rule,
                        changed=("peruttu",),
                        cause=str(cause),
                        message_id=cause.message_id,
                        applied=True,
                        loppu_muutos=None,
                    )
                ],
            )
            await add_event(
                session,
                outbox,
                JaksoCancelled.TYPE,
                JaksoCancelled(jakso_id=row_id, nippu_id=nippu_id),
            )
        # The kausi of a changed jakso's end date, before and after the change.
        loput = [c.jakso.loppu for _, c, _ in recorded]
        loput += [s.jakso.loppu for _, _, s in recorded if s is not None]
        kaudet = {rahoituskausi(loppu) for loppu in loput if loppu is not None}
        await self._recompute_kesto(session, oppija_oid=oppija_oid, kaudet=kaudet)

    async def _recompute_kesto(
        self, session: AsyncSession, *, oppija_oid: str, kaudet: set[Rahoituskausi]
    ) -> None:
        if not kaudet or not await flow_store.has_bundled_jaksot(session, oppija_oid):
            return
        rows = await flow_store.oppijan_jaksot(session, oppija_oid)
        bundled = [
            r
            for r in rows
            if r.nippu_id is not None
            and r.kesto is not None
            and r.payload.loppu is not None
            and rahoituskausi(r.payload.loppu) in kaudet
        ]
        if not bundled:
            return
        by_id = {r.id: from_events.jakso(r.hoks_id, r.payload).id for r in rows}
        computed = kesto_of(
            [
                OppijanJakso(
                    from_events.jakso(r.hoks_id, r.payload),
                    None
                    if r.opiskeluoikeus is None
                    else from_events.opiskeluoikeus(r.opiskeluoikeus),
                )
                for r in rows
            ]
        )
        for r in bundled:
            new = computed.get(by_id[r.id])
            if new is None or new == r.kesto:
                continue
            assert r.nippu_id is not None
            await flow_store.set_kesto(session, r.id, new)
            await add_event(
                session,
                outbox,
                JaksoKestoChanged.TYPE,
                JaksoKestoChanged(jakso_id=r.id, nippu_id=r.nippu_id, kesto=new),
            )

    # --- Reads -----------------------------------------------------------------------------

    async def niput(
        self,
        *,
        client: ApiClient,
        koulutustoimija: str | None,
        niputuspvm: dt.date | None,
        after: tuple[dt.date, uuid.UUID] | None,
        limit: int,
    ) -> list[flow_store.NippuView]:
        """TEP bundles of the caller's koulutustoimijat (api.md). No personal data: the
        bundle names a workplace, not its instructor."""
        _check_visible(client, koulutustoimija)
        async with self.db.transaction() as session:
            return await flow_store.niput_view(
                session,
                koulutustoimijat=_scope(client),
                koulutustoimija=koulutustoimija,
                niputuspvm=niputuspvm,
                after=after,
                limit=limit,
            )

    async def nippu(self, *, client: ApiClient, nippu_id: uuid.UUID) -> flow_store.NippuView:
        async with self.db.transaction() as session:
            found = await flow_store.niput_view(
                session, koulutustoimijat=_scope(client), nippu_id=nippu_id, limit=1
            )
        if not found:
            raise NotFound(f"nippu {nippu_id} is not known")
        return found[0]

    async def tpk_niput(
        self,
        *,
        client: ApiClient,
        koulutustoimija: str | None,
        kausi: dt.date | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[flow_store.TpkNippuView]:
        """T5: TPK bundles with their links, for the provider to hand out."""
        _check_visible(client, koulutustoimija)
        async with self.db.transaction() as session:
            return await flow_store.tpk_niput_view(
                session,
                koulutustoimijat=_scope(client),
                koulutustoimija=koulutustoimija,
                kausi=kausi,
                after=after,
                limit=limit,
            )

    async def jaksot_report(
        self,
        *,
        client: ApiClient,
        koulutustoimija: str | None,
        alku: dt.date | None,
        loppu: dt.date | None,
        after: int | None,
        limit: int,
    ) -> list[flow_store.JaksoReportRow]:
        """N5: one row per jakso with its bundle's link and status. Rows name HOKS ids,
        i.e. identifiable students' studies: audit-logged."""
        _check_visible(client, koulutustoimija)
        async with self.db.transaction() as session:
            rows = await flow_store.jaksot_report(
                session,
                koulutustoimijat=_scope(client),
                koulutustoimija=koulutustoimija,
                alku=alku,
                loppu=loppu,
                after=after,
                limit=limit,
            )
        audit(client, "reports.jaksot.read", f"koulutustoimija/{koulutustoimija or '*'}")
        return rows

    async def response_rates(
        self,
        *,
        client: ApiClient,
        koulutustoimija: str | None,
        alku: dt.date | None,
        loppu: dt.date | None,
    ) -> list[ResponseRate]:
        """Sent and answered TEP surveys per koulutustoimija: a survey is a bundle (one
        link, one answer); the jaksot it covers are counted beside it."""
        _check_visible(client, koulutustoimija)
        async with self.db.transaction() as session:
            counts = await flow_store.response_counts(
                session,
                koulutustoimijat=_scope(client),
                koulutustoimija=koulutustoimija,
                alku=alku,
                loppu=loppu,
                sent_tilat=frozenset(str(t) for t in _SENT_TILAT),
                answered_tila=flow.NippuTila.VASTATTU.value,
            )
        return [
            ResponseRate(
                koulutustoimija=c.koulutustoimija,
                kysely="tep",
                sent=c.niput_sent,
                answered=c.niput_answered,
                rate=_rate(c.niput_answered, c.niput_sent),
                jaksot_sent=c.jaksot_sent,
                jaksot_answered=c.jaksot_answered,
                jaksot_rate=_rate(c.jaksot_answered, c.jaksot_sent),
            )
            for c in counts
        ]

    async def contact_data(
        self, *, client: ApiClient, koulutustoimija: str | None
    ) -> list[ContactIssueRow]:
        """C3, J2: each jakso still to be sent whose instructor e-mail or phone is missing,
        invalid or disagrees with the other jaksot of its coming bundle, or which has no
        yksiloiva-tunniste; with the niputuspvm by which to fix it. Addresses are judged,
        never shown; the rows name HOKS ids: audit-logged."""
        _check_visible(client, koulutustoimija)
        async with self.db.transaction() as session:
            rows = await flow_store.contact_rows(
                session,
                koulutustoimijat=_scope(client),
                koulutustoimija=koulutustoimija,
                pending_tilat=frozenset({Tila.ODOTTAA.value, Tila.NIPUTETTU.value}),
                pending_syyt=frozenset({Syy.YHTEYSTIETO_PUUTTUU.value}),
            )
        audit(client, "reports.contact_data.read", f"koulutustoimija/{koulutustoimija or '*'}")
        issues = flow.contact_report_issues(
            [
                flow.ContactCandidate(
                    jakso_id=r.jakso_id,
                    group=(r.ohjaaja_normalisoitu, r.ytunnus, r.koulutustoimija, r.niputuspvm),
                    contact=JaksoContact(r.sahkoposti, r.puhelinnumero),
                    tunniste_puuttuu=r.tunniste_puuttuu,
                )
                for r in rows
            ]
        )
        return [
            ContactIssueRow(
                jakso_id=r.jakso_id,
                hoks_id=r.hoks_id,
                yksiloiva_tunniste=r.yksiloiva_tunniste,
                koulutustoimija=r.koulutustoimija,
                tyopaikka=r.tyopaikka,
                ytunnus=r.ytunnus,
                tila=r.tila,
                syy=r.syy,
                korjattava_viimeistaan=r.niputuspvm,
                issues=list(issues[r.jakso_id]),
            )
            for r in rows
            if issues[r.jakso_id]
        ]


#: A bundle in one of these states has had its `nippu.linked` (those with a link are
#: recognised by it): the TEP run forms bundles `odottaa_lahetysta` (or `niputettu`).
_LINKED_WITHOUT_LINK = frozenset(
    {
        flow.NippuTila.ARVO_EI_KYSELYA.value,
        flow.NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA.value,
        flow.NippuTila.PERUTTU.value,
    }
)


def _validity(payload: NippuLinked) -> dict[str, object]:
    if payload.voimassa_loppupvm is None:
        return {}
    return {"voimassa_loppupvm": payload.voimassa_loppupvm}


def _oppilaitokset(members: Sequence[flow_store.NippuJakso]) -> list[str]:
    """S5 names the providers' oppilaitokset of the bundle's jaksot."""
    return sorted({j.oppilaitos for j in members if j.oppilaitos})


def _scope(client: ApiClient) -> frozenset[str] | None:
    """The koulutustoimijat a caller may see; None for every one."""
    return None if ALL_KOULUTUSTOIMIJAT in client.koulutustoimijat else client.koulutustoimijat


def _check_visible(client: ApiClient, koulutustoimija: str | None) -> None:
    """Asking for another provider's data is 404, as if it did not exist."""
    if koulutustoimija is not None and not client.may_see(koulutustoimija):
        raise NotFound(f"koulutustoimija {koulutustoimija} is not known")


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)
