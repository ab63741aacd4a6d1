"""The bundler's use cases, called by its consumers and routes alike.

Each reads top to bottom: lock and load, decide (the domain: `changes.judge_hoks`),
store, record. The event use cases run in the consumer's transaction (the inbox claim
is in it too), so a redelivered message changes nothing; an older version than the one
stored is ignored, so any order of events ends in the state of the newest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Table
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
from services.bundler.domain.jakso import (
    Hoks,
    Jakso,
    JaksoId,
    Keskeytymisajanjakso,
    Ohjaaja,
    Opiskeluoikeus,
    Opiskeluoikeusjakso,
    TutkinnonOsa,
)
from services.bundler.domain.kesto import OppijanJakso, kesto
from services.bundler.domain.niputus import NiputusCandidate, candidate, nippu_jakso, niputa
from services.bundler.domain.retention import Cutoff, keeps_removed, without_instructor
from services.bundler.domain.tpk import TPK_TILAT, TpkCandidate, niputa_tpk, tpk_kausi_for_run
from services.bundler.store import flow as flow_store
from services.bundler.store import niputus as niputus_store
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
    hoks_lock_key,
    hoksit_of_opiskeluoikeus,
    insert_jakso,
    jakso_owner,
    jaksot_of_hoks,
    jaksot_of_hoksit,
    jaksot_view,
    lock_hoks,
    lock_opiskeluoikeus,
    opiskeluoikeus_lock_key,
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
from shared.domain.dates import (
    DEFAULT_POLICIES,
    PolicySchedule,
    Rahoituskausi,
    Tiedonkeruukausi,
    answer_window,
    rahoituskausi,
)
from shared.domain.koodisto import Hankkimistapa
from shared.domain.names import normalize_name, suffix_from_bytes
from shared.events import (
    ArvoStatusUpdate,
    HoksChanged,
    HoksDeleted,
    JaksoCancelled,
    JaksoKestoChanged,
    JaksoPayload,
    NippuLinked,
    NippuReady,
    OpiskeluoikeusChanged,
    SendRequested,
    SendStatus,
    SurveyStatus,
    TpkNippuLinked,
    TpkNippuReady,
)
from shared.messaging.outbox import add_event, add_events
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
class RunCause(Cause):
    """A dated run that looked at a jakso again (E18): `message_id` is the run's id."""

    date: dt.date = dt.date.min

    def __str__(self) -> str:
        return f"{self.event_type} {self.date.isoformat()}"


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


# --- Niputus: the dated TEP and TPK runs (D3, N1–N3, W1–W3, K1–K3, T1–T4) -----------

TEP_COUNTS = ("hoksit_rejudged", "niput", "jaksot", "vastausaika_umpeutunut", "no_key")
"""What a TEP run reports (the runs API shows them): HOKS judged again, bundles formed,
jaksot bundled, due jaksot whose window had closed (W3), and due jaksot without a
complete bundle key (a study right naming no koulutustoimija or tutkinto: they wait)."""
TPK_COUNTS = ("hoksit_rejudged", "tpk_niput", "jaksot", "jaksot_to_existing")
"""What a TPK run reports: new bundles, jaksot put in bundles, of which into bundles
an earlier run of the kausi formed (T4)."""


def _random_suffix() -> str:
    """N2: the random part of a bundle's identifier (48 bits)."""
    return suffix_from_bytes(secrets.token_bytes(6))


class Niputus:
    """The TEP and TPK niputus runs; `jobs/niputus.py` runs them by date.

    Every run first judges again the jaksot whose judgement the passing days change
    without an event (E1 → E15, J4), on the later of the run date and today, so a
    judgement never moves back in time. A TEP run then bundles, one koulutustoimija per
    transaction, every due jakso: its bundles, kesto, states, transitions and
    `nippu.ready` events commit together, so a run cut short resumes where it stopped
    and forms nothing twice.
    """

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        bundler: Bundler,
        outbox: Table,
        suffix: Callable[[], str] = _random_suffix,
        rejudge_batch: int = 500,
        workers: int = 1,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bundler = bundler
        self.outbox = outbox
        self.suffix = suffix
        self.rejudge_batch = rejudge_batch
        self.workers = workers

    @classmethod
    def of(cls, service: Service, bundler: Bundler) -> Niputus:
        return cls(db=service.db, clock=service.clock, bundler=bundler, outbox=outbox)

    async def tep(self, run_date: dt.date, *, job: str) -> dict[str, int]:
        """D3, N1–N3, W1–W3, K1–K3: bundle every eligible jakso whose niputuspvm has
        come by `run_date` and that is in no bundle yet; publish one `nippu.ready` each."""
        cause = await self._cause(job, run_date)
        counts: Counter[str] = Counter()
        counts["hoksit_rejudged"] = await self._rejudge(cause)
        async with self.db.transaction() as session:
            owners = await niputus_store.due_koulutustoimijat(session, run_date)
        remaining = iter(owners)

        async def worker() -> None:
            # Koulutustoimijat share no jakso and no bundle (N1 key), so their
            # transactions may run side by side (one's SQL while another's Python works;
            # on the shared 2-core machine it gained nothing, hence one by default).
            for owner in remaining:
                async with self.db.transaction() as session:
                    counts.update(await self._bundle_tep(session, owner, run_date, cause))

        async with asyncio.TaskGroup() as workers:
            for _ in range(min(self.workers, len(owners))):
                workers.create_task(worker())
        return {name: counts[name] for name in TEP_COUNTS}

    async def rejudge(self, run_date: dt.date, *, job: str) -> int:
        """Only the first step of a run (`_rejudge`): how many HOKS were judged again.
        The re-evaluation benchmark times it alone."""
        return await self._rejudge(await self._cause(job, run_date))

    async def _cause(self, job: str, run_date: dt.date) -> RunCause:
        async with self.db.transaction() as session:
            run_id = await niputus_store.run_id(session, job, run_date)
        return RunCause(job, 0, run_id or uuid.uuid4(), date=run_date)

    async def _rejudge(self, cause: RunCause) -> int:
        """E1 → E15 and J4 without an event: judge again, in batches of HOKS, each HOKS
        holding a jakso whose judgement the passing days may have changed."""
        today = max(cause.date, self.clock.today())
        async with self.db.transaction() as session:
            hoks_ids = await niputus_store.hoksit_to_rejudge(session, today)
        for start in range(0, len(hoks_ids), self.rejudge_batch):
            async with self.db.transaction() as session:
                await self._rejudge_batch(
                    session, hoks_ids[start : start + self.rejudge_batch], today, cause
                )
        return len(hoks_ids)

    async def _rejudge_batch(
        self, session: AsyncSession, hoks_ids: Sequence[int], today: dt.date, cause: RunCause
    ) -> None:
        """What the state use cases do for one HOKS (lock, load, `judge_hoks`, store the
        judgements, record E18), for many at once: the HOKS locks, then their study
        rights' locks (the events' order), each kind taken in one fixed order; the jaksot
        locked in id order by one statement; judgements and transitions written by one
        statement each. Facts are unchanged, so only judgement columns are written."""
        await niputus_store.lock_many(session, map(hoks_lock_key, hoks_ids))
        hoksit = [
            hoks
            for hoks in map(_domain_hoks, await niputus_store.hoksit_by_id(session, hoks_ids))
            if hoks is not None
        ]
        oids = {hoks.opiskeluoikeus_oid for hoks in hoksit}
        await niputus_store.lock_many(session, map(opiskeluoikeus_lock_key, oids))
        studies = await niputus_store.opiskeluoikeudet_by_oid(session, oids)
        rows_by_hoks = await jaksot_of_hoksit(session, [hoks.hoks_id for hoks in hoksit])
        at = self.clock.now()
        judgements: list[niputus_store.Judgement] = []
        transitions: list[TransitionRecord] = []
        for hoks in hoksit:
            payload = studies.get(hoks.opiskeluoikeus_oid)
            loaded = [
                (_stored(hoks.hoks_id, row), row) for row in rows_by_hoks.get(hoks.hoks_id, [])
            ]
            stored = {s.jakso.id: s for s, _ in loaded}
            rows = {s.jakso.id: row for s, row in loaded}
            changes = judge_hoks(
                hoks=hoks,
                jaksot=[s.jakso for s in stored.values()],
                stored=stored,
                opiskeluoikeus=None if payload is None else from_events.opiskeluoikeus(payload),
                today=today,
                policies=self.bundler.policies,
            )
            for change in changes:
                row = rows[change.jakso.id]
                new = niputus_store.Judgement(
                    row.id,
                    change.state.tila.value,
                    (change.state.syy or change.evaluated.syy).value,
                    change.rule,
                    change.niputuspvm,
                )
                if (new.tila, new.syy, new.rule, new.niputuspvm) != (
                    row.tila,
                    row.syy,
                    row.rule,
                    row.niputuspvm,
                ):
                    judgements.append(new)
                if change.recorded:
                    transitions.append(_transition(row.id, change, cause, at))
        await niputus_store.set_judgements(session, judgements)
        await add_transitions(session, transitions)

    async def _bundle_tep(
        self, session: AsyncSession, owner: str | None, run_date: dt.date, cause: RunCause
    ) -> Counter[str]:
        counts: Counter[str] = Counter()
        due: dict[JaksoId, tuple[niputus_store.DueJakso, Jakso, Opiskeluoikeus]] = {}
        candidates: list[NiputusCandidate] = []
        studies: dict[str, Opiskeluoikeus] = {}
        for row in await niputus_store.lock_due(session, owner, run_date):
            jakso = from_events.jakso(row.hoks_id, row.payload)
            if row.opiskeluoikeus is None:
                counts["no_key"] += 1
                continue
            oid = row.opiskeluoikeus.oid
            if oid not in studies:
                studies[oid] = from_events.opiskeluoikeus(row.opiskeluoikeus)
            try:
                candidates.append(candidate(jakso, studies[oid], row.niputuspvm))
            except ValueError:
                counts["no_key"] += 1
                continue
            due[jakso.id] = (row, jakso, studies[oid])
        result = niputa(candidates, run_date)
        at = self.clock.now()

        closed = [due[jakso_id][0] for jakso_id in result.window_closed]
        await niputus_store.set_state(
            session,
            [row.id for row in closed],
            tila=Tila.EI_LAHETETA,
            syy=Syy.VASTAUSAIKA_UMPEUTUNUT,
            rule="W3",
        )
        transitions = [
            _run_transition(row, Tila.EI_LAHETETA, Syy.VASTAUSAIKA_UMPEUTUNUT, "W3", cause, at)
            for row in closed
        ]
        counts["vastausaika_umpeutunut"] += len(closed)

        oppijat = {due[j][0].oppija_oid for nippu in result.niput for j in nippu.jaksot}
        kestot = _kestot(await niputus_store.oppijoiden_jaksot(session, oppijat))
        niput: list[niputus_store.NippuRow] = []
        bundled: list[niputus_store.Bundled] = []
        events: list[NippuReady] = []
        for nippu in result.niput:
            key = nippu.key
            nippu_id = uuid.uuid4()
            tunniste = nippu.tunniste(self.suffix())
            window = answer_window(key.niputuspvm, run_date)
            payloads = []
            for jakso_id in nippu.jaksot:
                row, jakso, opiskeluoikeus = due[jakso_id]
                kesto = kestot.get(row.id, 0)
                payloads.append(nippu_jakso(row.id, jakso, opiskeluoikeus, key, kesto))
                bundled.append(niputus_store.Bundled(row.id, nippu_id, kesto))
                transitions.append(
                    _run_transition(row, Tila.NIPUTETTU, Syy.NIPUTETTU, "N1", cause, at)
                )
            niput.append(
                niputus_store.NippuRow(
                    id=nippu_id,
                    tunniste=tunniste,
                    ohjaaja_normalisoitu=key.ohjaaja,
                    tyopaikan_ytunnus=key.y_tunnus,
                    koulutustoimija_oid=key.koulutustoimija,
                    tutkinto=key.tutkinto,
                    niputuspvm=key.niputuspvm,
                    tyopaikka=nippu.tyopaikka,
                    tyopaikka_normalisoitu=normalize_name(nippu.tyopaikka),
                    run_id=cause.message_id,
                    lahetyspvm=window.alku,
                    voimassa_loppupvm=window.loppu,
                    tila=NIPPU_ODOTTAA_LAHETYSTA,
                )
            )
            events.append(
                NippuReady(
                    nippu_id=nippu_id,
                    tunniste=tunniste,
                    koulutustoimija_oid=key.koulutustoimija,
                    tutkintotunnus=key.tutkinto,
                    tyonantaja=key.y_tunnus,
                    tyopaikka=nippu.tyopaikka,
                    niputuspvm=key.niputuspvm,
                    voimassa_alkupvm=window.alku,
                    voimassa_loppupvm=window.loppu,
                    jaksot=payloads,
                )
            )
        await niputus_store.insert_niput(session, niput)
        await niputus_store.set_bundled(
            session, bundled, tila=Tila.NIPUTETTU, syy=Syy.NIPUTETTU, rule="N1"
        )
        await add_transitions(session, transitions)
        await add_events(session, self.outbox, events)
        counts["niput"] += len(niput)
        counts["jaksot"] += len(bundled)
        return counts

    async def tpk(self, run_date: dt.date, *, job: str) -> dict[str, int]:
        """T1–T4: the TPK bundles of the kausi whose answer window holds `run_date` (the
        run on 1.7 the spring's, on 1.1 the autumn's). Run again within the window, it
        puts late jaksot into that kausi's bundles without a link, or new ones. One
        `tpk_nippu.ready` per new bundle."""
        kausi = tpk_kausi_for_run(run_date)
        counts: Counter[str] = Counter()
        if kausi is None:
            return {name: 0 for name in TPK_COUNTS}
        cause = await self._cause(job, run_date)
        counts["hoksit_rejudged"] = await self._rejudge(cause)
        tilat = sorted(TPK_TILAT)
        async with self.db.transaction() as session:
            owners = await niputus_store.tpk_koulutustoimijat(
                session, kausi_alku=kausi.alku, kausi_loppu=kausi.loppu, tilat=tilat
            )
        for owner in owners:
            async with self.db.transaction() as session:
                counts.update(await self._bundle_tpk(session, owner, kausi, tilat, cause))
        return {name: counts[name] for name in TPK_COUNTS}

    async def _bundle_tpk(
        self,
        session: AsyncSession,
        owner: str,
        kausi: Tiedonkeruukausi,
        tilat: Sequence[str],
        cause: RunCause,
    ) -> Counter[str]:
        """One koulutustoimija's TPK bundles of a kausi (the koulutustoimija is in the T3
        key), in the caller's transaction."""
        counts: Counter[str] = Counter()
        # One TPK run of a kausi and koulutustoimija at a time: each sees the other's
        # bundles.
        await niputus_store.lock(session, f"bundler.tpk:{kausi.alku.isoformat()}:{owner}")
        rows = await niputus_store.lock_tpk_jaksot(
            session, owner, kausi_alku=kausi.alku, kausi_loppu=kausi.loppu, tilat=tilat
        )
        by_jakso = {}
        candidates = []
        for row in rows:
            jakso = from_events.jakso(row.hoks_id, row.payload)
            by_jakso[jakso.id] = row
            candidates.append(TpkCandidate(jakso, JaksoState(Tila(row.tila), Syy(row.syy)), owner))
        existing = await niputus_store.unlinked_tpk_niput(session, kausi.alku, owner)
        window = kausi.answer_window
        new: list[niputus_store.TpkNippuRow] = []
        events: list[TpkNippuReady] = []
        pairs: list[tuple[int, uuid.UUID]] = []
        for nippu in niputa_tpk(candidates, kausi):
            key = nippu.key
            nippu_id = existing.get((key.y_tunnus, key.tyopaikka_normalisoitu))
            if nippu_id is None:
                nippu_id = uuid.uuid4()
                new.append(
                    niputus_store.TpkNippuRow(
                        id=nippu_id,
                        koulutustoimija_oid=key.koulutustoimija,
                        tyopaikan_ytunnus=key.y_tunnus,
                        tyopaikka_normalisoitu=key.tyopaikka_normalisoitu,
                        tyopaikka=nippu.tyopaikka,
                        kausi_alku=kausi.alku,
                        kausi_loppu=kausi.loppu,
                        vastaamisajan_alkupvm=window.alku,
                        vastaamisajan_loppupvm=window.loppu,
                        run_id=cause.message_id,
                    )
                )
                events.append(
                    TpkNippuReady(
                        tpk_nippu_id=nippu_id,
                        koulutustoimija_oid=key.koulutustoimija,
                        tyonantaja=key.y_tunnus,
                        tyopaikka=nippu.tyopaikka,
                        tyopaikka_normalisoitu=key.tyopaikka_normalisoitu,
                        tiedonkeruu_alkupvm=kausi.alku,
                        tiedonkeruu_loppupvm=kausi.loppu,
                        vastaamisajan_alkupvm=window.alku,
                        vastaamisajan_loppupvm=window.loppu,
                    )
                )
            else:
                counts["jaksot_to_existing"] += len(nippu.jaksot)
            pairs.extend((by_jakso[jakso_id].id, nippu_id) for jakso_id in nippu.jaksot)
        await niputus_store.insert_tpk_niput(session, new)
        await niputus_store.set_tpk_nippu(session, pairs)
        await add_events(session, self.outbox, events)
        counts["tpk_niput"] += len(new)
        counts["jaksot"] += len(pairs)
        return counts


#: The status of a bundle formed and not yet sent, in Arvo's vocabulary (arvo-api.md).
NIPPU_ODOTTAA_LAHETYSTA = "odottaa_lahetysta"


def _run_transition(
    row: niputus_store.DueJakso, tila: Tila, syy: Syy, rule: str, cause: RunCause, at: dt.datetime
) -> TransitionRecord:
    """E18: what a run did to a jakso (no facts changed, so `changed` is empty)."""
    return TransitionRecord(
        jakso_id=row.id,
        at=at,
        from_tila=row.tila,
        from_syy=row.syy,
        to_tila=tila.value,
        to_syy=syy.value,
        rule=rule,
        changed=(),
        cause=str(cause),
        message_id=cause.message_id,
        applied=True,
        loppu_muutos=None,
    )


def _kestot(rows: Sequence[niputus_store.KestoJakso]) -> dict[int, int]:
    """K1–K2 for every jakso of each oppija in `rows`, by jakso row id."""
    by_oppija: defaultdict[str, list[niputus_store.KestoJakso]] = defaultdict(list)
    for row in rows:
        by_oppija[row.oppija_oid].append(row)
    studies: dict[str, Opiskeluoikeus | None] = {}
    result: dict[int, int] = {}
    for group in by_oppija.values():
        inputs = [_kesto_jakso(row, studies) for row in group]
        row_ids = {oj.jakso.id: row.id for oj, row in zip(inputs, group, strict=True)}
        for jakso_id, value in kesto(inputs).items():
            result[row_ids[jakso_id]] = value
    return result


#: Kesto reads neither (frozen values: one shared instance instead of two per jakso).
_NO_OHJAAJA = Ohjaaja()
_ANY_OSA = TutkinnonOsa("ammatillinen")


def _kesto_jakso(
    row: niputus_store.KestoJakso, studies: dict[str, Opiskeluoikeus | None]
) -> OppijanJakso:
    """An oppija's jakso as K1/K2 read it: identity (J2), dates, osa-aikaisuus,
    interruptions and its study right's states (`studies`: made once per study right);
    other fields are not read by kesto."""
    d = dt.date.fromisoformat
    jakso = Jakso(
        hoks_id=row.hoks_id,
        yksiloiva_tunniste=None if row.tunniste_puuttuu else row.tunniste,
        path=row.tunniste if row.tunniste_puuttuu else "",
        hankkimistapa=Hankkimistapa.KOULUTUSSOPIMUS,
        alku=row.alku,
        loppu=row.loppu,
        osa_aikaisuus=row.osa_aikaisuus,
        tyopaikan_nimi=None,
        tyopaikan_ytunnus=None,
        ohjaaja=_NO_OHJAAJA,
        tutkinnon_osa=_ANY_OSA,
        keskeytymisajanjaksot=tuple(
            Keskeytymisajanjakso(d(k["alku"]), d(k["loppu"]) if k.get("loppu") else None)
            for k in row.keskeytymisajanjaksot
        ),
    )
    if row.opiskeluoikeus_oid not in studies:
        studies[row.opiskeluoikeus_oid] = (
            None
            if row.opiskeluoikeusjaksot is None
            else Opiskeluoikeus(
                oid=row.opiskeluoikeus_oid,
                koulutustoimija_oid=None,
                oppilaitos_oid=None,
                tyyppi=None,
                opiskeluoikeusjaksot=tuple(
                    Opiskeluoikeusjakso(d(t["alku"]), t.get("tila"), t.get("opintojen_rahoitus"))
                    for t in row.opiskeluoikeusjaksot
                ),
            )
        )
    return OppijanJakso(jakso, studies[row.opiskeluoikeus_oid])


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
#: A bundle in these states has had no message go out (W2 closes it unsent).
_UNSENT_TILAT = frozenset(
    {
        flow.NippuTila.ODOTTAA_LAHETYSTA.value,
        flow.NippuTila.NIPUTETTU.value,
        flow.NippuTila.LAHETYS_EPAONNISTUNUT.value,
        flow.NippuTila.BOUNCED.value,
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
            [j for j in members if flow.jakso_follows_bundle(j.tila, j.syy)],
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
                _flow_transition(
                    j.id,
                    (j.tila, j.syy),
                    (later.tila.value, j.syy if later.syy is None else later.syy.value),
                    rule=rule,
                    changed="nippu.tila",
                    cause=cause.event_type,
                    message_id=cause.message_id,
                    at=at,
                )
                for j in moving
            ],
        )

    # --- Windows that closed before any message went out ----------------------------------

    async def close_unsent(self, date: dt.date, *, job: str, batch: int = 500) -> dict[str, int]:
        """The daily job: a bundle whose last answer day passed before `date` without any
        message going out (every message failed or bounced, or none was ever reported)
        ends `vastausaika_loppunut_ennen_lahetysta`; its jaksot `vastausaika_loppunut`
        (rules.md: "closed unanswered or never sent"); Arvo is told when it has the link.
        A bundle without usable contacts keeps its state (its jaksot say why: C3)."""
        cause = FlowCause(f"{job} {date}", uuid.uuid5(uuid.NAMESPACE_URL, f"{job}/{date}"))
        closed = told = 0
        while True:
            async with self.db.transaction() as session:
                found = await flow_store.lock_unsent_closed(
                    session, tilat=_UNSENT_TILAT, before=date, limit=batch
                )
                for nippu in found:
                    tila = flow.NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA
                    await flow_store.update_nippu(session, nippu.id, tila=tila.value)
                    members = await flow_store.jaksot_of_nippu(session, nippu.id)
                    await self._jaksot_follow(
                        session,
                        [j for j in members if flow.jakso_follows_bundle(j.tila, j.syy)],
                        tila,
                        cause,
                    )
                    if nippu.linkki is not None:
                        told += 1
                        await add_event(
                            session,
                            outbox,
                            ArvoStatusUpdate.TYPE,
                            ArvoStatusUpdate(
                                nippu_id=nippu.id,
                                tunniste=nippu.tunniste,
                                tila=tila.value,
                                voimassa_loppupvm=nippu.voimassa_loppupvm,
                            ),
                        )
            closed += len(found)
            if len(found) < batch:
                return {"niput_suljettu": closed, "arvolle_kerrottu": told}

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
            old_syy = None if before.state.syy is None else before.state.syy.value
            await add_transitions(
                session,
                [
                    _flow_transition(
                        row_id,
                        (before.state.tila.value, old_syy),
                        (evaluated.tila.value, evaluated.syy.value),
                        rule=evaluated.rule,
                        changed="peruttu",
                        cause=str(cause),
                        message_id=cause.message_id,
                        at=at,
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
        await flow_store.lock_oppija(session, oppija_oid)
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
        computed = kesto(
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


def _flow_transition(
    jakso_id: int,
    old: tuple[str, str | None],
    new: tuple[str, str],
    *,
    rule: str,
    changed: str,
    cause: str,
    message_id: uuid.UUID,
    at: dt.datetime,
) -> TransitionRecord:
    """E18: a state the flow gave a jakso (its bundle's fate, or its cancellation)."""
    return TransitionRecord(
        jakso_id=jakso_id,
        at=at,
        from_tila=old[0],
        from_syy=old[1],
        to_tila=new[0],
        to_syy=new[1],
        rule=rule,
        changed=(changed,),
        cause=cause,
        message_id=message_id,
        applied=True,
        loppu_muutos=None,
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
