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

from services.bundler.domain import from_events
from services.bundler.domain.changes import (
    JaksoChange,
    StoredJakso,
    context_changes,
    judge_hoks,
    with_removed,
)
from services.bundler.domain.eligibility import JaksoState, LoppuMuutos, Syy, Tila
from services.bundler.domain.jakso import Hoks, Jakso, JaksoId, Opiskeluoikeus
from services.bundler.domain.retention import Cutoff, keeps_removed, without_instructor
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
from shared.auth import ApiClient, audit
from shared.clock import Clock
from shared.db import Database
from shared.domain.dates import DEFAULT_POLICIES, PolicySchedule
from shared.events import HoksChanged, HoksDeleted, JaksoPayload, OpiskeluoikeusChanged
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
        await set_hoks_version(
            session,
            hoks.hoks_id,
            hoks_version=context.version,
            koulutustoimija_oid=context.koulutustoimija_oid,
        )
        await add_transitions(session, transitions)

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
