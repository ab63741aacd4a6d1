"""What the TEP and TPK niputus runs read and write (D3, N1–N3, K1, T1–T4).

A TEP run takes its due jaksot one koulutustoimija at a time (the koulutustoimija is part
of every bundle key, N1), each in its own transaction: the jaksot are locked
(`FOR UPDATE`, in id order like the state consumer's), and PostgreSQL re-checks the
`nippu_id IS NULL` and state conditions on a row that another transaction changed while
it waited, so two runs never bundle one jakso twice. Bulk writes are one statement per
kind of row (executemany), whatever the number of bundles.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Text,
    and_,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.bundler.store.state import StoredHoks
from services.bundler.store.tables import (
    hoksit,
    jaksot,
    niput,
    opiskeluoikeudet,
    runs,
    tpk_niput,
)
from shared.events import JaksoPayload, OpiskeluoikeusChanged

ODOTTAA = "odottaa"
ODOTTAA_NIPUTUSTA = "odottaa_niputusta"
JAKSO_KESKEN = "jakso_kesken"
JATKUU_MYOHEMMIN = "jatkuu_myohemmin"


async def lock(session: AsyncSession, key: str) -> None:
    """A transaction-scoped advisory lock on `key` (serialises TPK runs of one kausi)."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def run_id(session: AsyncSession, job: str, date: dt.date) -> uuid.UUID | None:
    """The id of the run (job, date) executing now (shared/jobs.py made its row)."""
    return await session.scalar(select(runs.c.id).where(runs.c.job == job, runs.c.date == date))


# --- Re-judging waiting jaksot --------------------------------------------------------


async def hoksit_to_rejudge(session: AsyncSession, today: dt.date) -> list[int]:
    """HOKS with a jakso whose judgement may have changed by `today` though no event came:
    one that was still running (E1) and has ended, or the earlier part of a jatkumo
    waiting for its latest jakso (J4), which may have ended meanwhile."""
    rows = await session.execute(
        select(jaksot.c.hoks_id)
        .where(
            jaksot.c.tila == ODOTTAA,
            jaksot.c.nippu_id.is_(None),
            or_(
                and_(jaksot.c.syy == JAKSO_KESKEN, jaksot.c.loppu <= today),
                jaksot.c.syy == JATKUU_MYOHEMMIN,
            ),
        )
        .distinct()
        .order_by(jaksot.c.hoks_id)
    )
    return [int(r.hoks_id) for r in rows]


async def lock_many(session: AsyncSession, keys: Iterable[str]) -> None:
    """Transaction advisory locks on many keys in one statement, in a fixed order (by
    their hash), the same keys `state.lock_hoks` / `lock_opiskeluoikeus` take one by one."""
    ordered = sorted(set(keys))
    if ordered:
        await session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT hashtextextended(k, 0) AS h "
                "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": ordered},
        )


async def hoksit_by_id(session: AsyncSession, hoks_ids: Sequence[int]) -> list[StoredHoks]:
    wanted = bindparam("hoks_ids", list(hoks_ids), type_=ARRAY(BigInteger))
    rows = await session.execute(
        select(
            hoksit.c.hoks_id,
            hoksit.c.version,
            hoksit.c.oppija_oid,
            hoksit.c.opiskeluoikeus_oid,
            hoksit.c.is_tuva,
            hoksit.c.deleted,
        )
        .where(hoksit.c.hoks_id == any_(wanted))
        .order_by(hoksit.c.hoks_id)
    )
    return [
        StoredHoks(
            hoks_id=r.hoks_id,
            version=r.version,
            oppija_oid=r.oppija_oid,
            opiskeluoikeus_oid=r.opiskeluoikeus_oid,
            is_tuva=r.is_tuva,
            deleted=r.deleted,
        )
        for r in rows
    ]


async def opiskeluoikeudet_by_oid(
    session: AsyncSession, oids: Iterable[str]
) -> dict[str, OpiskeluoikeusChanged]:
    wanted = sorted(set(oids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(opiskeluoikeudet.c.oid, opiskeluoikeudet.c.data).where(
            opiskeluoikeudet.c.oid == any_(bindparam("oids", wanted, type_=ARRAY(Text)))
        )
    )
    return {r.oid: OpiskeluoikeusChanged.model_validate(r.data) for r in rows}


@dataclass(frozen=True)
class Judgement:
    """A jakso's new judgement after a run judged it again."""

    jakso_id: int
    tila: str
    syy: str
    rule: str | None
    niputuspvm: dt.date | None


async def set_judgements(session: AsyncSession, judgements: Sequence[Judgement]) -> None:
    """The judgement columns of many jaksot in one statement (their facts are unchanged)."""
    if not judgements:
        return
    await session.execute(
        text(
            f"UPDATE {jaksot.fullname} AS j SET tila = v.tila, syy = v.syy, rule = v.rule, "
            "niputuspvm = v.niputuspvm, updated_at = now() "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:tilat AS text[]), "
            "CAST(:syyt AS text[]), CAST(:rules AS text[]), CAST(:pvmt AS date[])) "
            "AS v(id, tila, syy, rule, niputuspvm) WHERE j.id = v.id"
        ),
        {
            "ids": [j.jakso_id for j in judgements],
            "tilat": [j.tila for j in judgements],
            "syyt": [j.syy for j in judgements],
            "rules": [j.rule for j in judgements],
            "pvmt": [j.niputuspvm for j in judgements],
        },
    )


# --- TEP ------------------------------------------------------------------------------


def _due(run_date: dt.date) -> Any:
    """N3, D3: eligible (E15, or J4 joining its latest), not bundled, niputuspvm come."""
    return and_(
        jaksot.c.tila == ODOTTAA,
        jaksot.c.syy == ODOTTAA_NIPUTUSTA,
        jaksot.c.niputuspvm <= run_date,
        jaksot.c.nippu_id.is_(None),
        jaksot.c.poistettu.is_(False),
    )


async def due_koulutustoimijat(session: AsyncSession, run_date: dt.date) -> list[str | None]:
    """The koulutustoimijat with due jaksot (None: due jaksot whose study right names
    none; they cannot be keyed, N1)."""
    rows = await session.execute(
        select(jaksot.c.koulutustoimija_oid)
        .where(_due(run_date))
        .distinct()
        .order_by(jaksot.c.koulutustoimija_oid)
    )
    return [r.koulutustoimija_oid for r in rows]


@dataclass(frozen=True)
class DueJakso:
    """A due jakso, locked: its facts (instructor included), judgement and study right."""

    id: int
    hoks_id: int
    oppija_oid: str
    payload: JaksoPayload
    tila: str
    syy: str
    rule: str | None
    niputuspvm: dt.date
    opiskeluoikeus: OpiskeluoikeusChanged | None


def _payload(row: Any) -> JaksoPayload:
    return JaksoPayload.model_validate(
        {
            **row.data,
            "ohjaaja": {
                "nimi": row.ohjaaja_nimi,
                "sahkoposti": row.ohjaaja_sahkoposti,
                "puhelinnumero": row.ohjaaja_puhelinnumero,
            },
        }
    )


async def lock_due(
    session: AsyncSession, koulutustoimija_oid: str | None, run_date: dt.date
) -> list[DueJakso]:
    """The due jaksot of one koulutustoimija, locked for this transaction in id order.

    A row another transaction changed while this one waited is checked again against
    the conditions (READ COMMITTED's re-check), so one bundled meanwhile is left out."""
    owner = (
        jaksot.c.koulutustoimija_oid.is_(None)
        if koulutustoimija_oid is None
        else jaksot.c.koulutustoimija_oid == koulutustoimija_oid
    )
    rows = await session.execute(
        select(
            jaksot.c.id,
            jaksot.c.hoks_id,
            jaksot.c.oppija_oid,
            jaksot.c.data,
            jaksot.c.ohjaaja_nimi,
            jaksot.c.ohjaaja_sahkoposti,
            jaksot.c.ohjaaja_puhelinnumero,
            jaksot.c.tila,
            jaksot.c.syy,
            jaksot.c.rule,
            jaksot.c.niputuspvm,
            opiskeluoikeudet.c.data.label("opiskeluoikeus"),
        )
        .select_from(
            jaksot.outerjoin(
                opiskeluoikeudet, opiskeluoikeudet.c.oid == jaksot.c.opiskeluoikeus_oid
            )
        )
        .where(_due(run_date), owner)
        .order_by(jaksot.c.id)
        .with_for_update(of=jaksot)
    )
    cache: dict[str, OpiskeluoikeusChanged] = {}
    result = []
    for row in rows:
        oo = None
        if row.opiskeluoikeus is not None:
            oid = row.opiskeluoikeus["oid"]
            if oid not in cache:
                cache[oid] = OpiskeluoikeusChanged.model_validate(row.opiskeluoikeus)
            oo = cache[oid]
        result.append(
            DueJakso(
                id=row.id,
                hoks_id=row.hoks_id,
                oppija_oid=row.oppija_oid,
                payload=_payload(row),
                tila=row.tila,
                syy=row.syy,
                rule=row.rule,
                niputuspvm=row.niputuspvm,
                opiskeluoikeus=oo,
            )
        )
    return result


@dataclass(frozen=True)
class KestoJakso:
    """What K1/K2 read of one of an oppija's jaksot: its J2 identity, dates, osa-aikaisuus,
    interruptions, and its study right's states (None: the study right is unknown)."""

    id: int
    oppija_oid: str
    opiskeluoikeus_oid: str
    hoks_id: int
    tunniste: str
    tunniste_puuttuu: bool
    alku: dt.date
    loppu: dt.date | None
    osa_aikaisuus: int | None
    keskeytymisajanjaksot: list[dict[str, Any]]
    opiskeluoikeusjaksot: list[dict[str, Any]] | None


async def oppijoiden_jaksot(session: AsyncSession, oppija_oids: Iterable[str]) -> list[KestoJakso]:
    """K1: every jakso of these oppijat over all their HOKS, except removed jaksot and
    those of deleted HOKS; only the fields kesto reads."""
    oids = sorted(set(oppija_oids))
    if not oids:
        return []
    rows = await session.execute(
        select(
            jaksot.c.id,
            jaksot.c.oppija_oid,
            jaksot.c.opiskeluoikeus_oid,
            jaksot.c.hoks_id,
            jaksot.c.tunniste,
            jaksot.c.tunniste_puuttuu,
            jaksot.c.alku,
            jaksot.c.loppu,
            jaksot.c.osa_aikaisuus,
            jaksot.c.data["keskeytymisajanjaksot"].label("keskeytykset"),
            opiskeluoikeudet.c.data["opiskeluoikeusjaksot"].label("tilat"),
            opiskeluoikeudet.c.oid.label("oo_oid"),
        )
        .select_from(
            jaksot.join(hoksit, hoksit.c.hoks_id == jaksot.c.hoks_id).outerjoin(
                opiskeluoikeudet, opiskeluoikeudet.c.oid == jaksot.c.opiskeluoikeus_oid
            )
        )
        .where(
            jaksot.c.oppija_oid == any_(bindparam("oids", oids, type_=ARRAY(Text))),
            jaksot.c.poistettu.is_(False),
            hoksit.c.deleted.is_(False),
        )
    )
    return [
        KestoJakso(
            id=r.id,
            oppija_oid=r.oppija_oid,
            opiskeluoikeus_oid=r.opiskeluoikeus_oid,
            hoks_id=r.hoks_id,
            tunniste=r.tunniste,
            tunniste_puuttuu=r.tunniste_puuttuu,
            alku=r.alku,
            loppu=r.loppu,
            osa_aikaisuus=r.osa_aikaisuus,
            keskeytymisajanjaksot=list(r.keskeytykset or []),
            opiskeluoikeusjaksot=None if r.oo_oid is None else list(r.tilat or []),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class NippuRow:
    """A new TEP bundle (N1, N2, W1, W2); `tila` is the status Arvo knows it by."""

    id: uuid.UUID
    tunniste: str
    ohjaaja_normalisoitu: str
    tyopaikan_ytunnus: str
    koulutustoimija_oid: str
    tutkinto: str
    niputuspvm: dt.date
    tyopaikka: str
    tyopaikka_normalisoitu: str
    run_id: uuid.UUID | None
    lahetyspvm: dt.date
    voimassa_loppupvm: dt.date
    tila: str


async def insert_niput(session: AsyncSession, rows: Sequence[NippuRow]) -> None:
    if rows:
        await session.execute(insert(niput), [r.__dict__ for r in rows])


@dataclass(frozen=True)
class Bundled:
    """A jakso put in a bundle, with the kesto computed when the bundle was formed (K4)."""

    jakso_id: int
    nippu_id: uuid.UUID
    kesto: int


async def set_bundled(
    session: AsyncSession, rows: Sequence[Bundled], *, tila: str, syy: str, rule: str
) -> None:
    """Each jakso into its bundle, in one statement (arrays unnested); only a jakso still
    without a bundle (the lock made sure)."""
    if not rows:
        return
    await session.execute(
        text(
            f"UPDATE {jaksot.fullname} AS j SET nippu_id = v.nippu_id, kesto = v.kesto, "
            "tila = :tila, syy = :syy, rule = :rule, updated_at = now() "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:nippu_ids AS uuid[]), "
            "CAST(:kestot AS integer[])) AS v(id, nippu_id, kesto) "
            "WHERE j.id = v.id AND j.nippu_id IS NULL"
        ),
        {
            "ids": [r.jakso_id for r in rows],
            "nippu_ids": [r.nippu_id for r in rows],
            "kestot": [r.kesto for r in rows],
            "tila": tila,
            "syy": syy,
            "rule": rule,
        },
    )


async def set_state(
    session: AsyncSession, jakso_ids: Sequence[int], *, tila: str, syy: str, rule: str
) -> None:
    """W3: due jaksot whose answer window closed before the run are not sent."""
    if jakso_ids:
        await session.execute(
            update(jaksot)
            .where(jaksot.c.id == any_(bindparam("ids", list(jakso_ids), type_=ARRAY(BigInteger))))
            .values(tila=tila, syy=syy, rule=rule, updated_at=func.now())
        )


# --- TPK ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TpkJakso:
    """A jakso that may count for TPK (T2): its facts, state and koulutustoimija."""

    id: int
    hoks_id: int
    payload: JaksoPayload
    tila: str
    syy: str
    koulutustoimija_oid: str


def _tpk_may_count(kausi_alku: dt.date, kausi_loppu: dt.date, tilat: Sequence[str]) -> Any:
    """T1, T2 prefilter: ending in the kausi, in no TPK bundle, in a state that may count."""
    return and_(
        jaksot.c.loppu >= kausi_alku,
        jaksot.c.loppu <= kausi_loppu,
        jaksot.c.tpk_nippu_id.is_(None),
        jaksot.c.poistettu.is_(False),
        jaksot.c.tila.in_(list(tilat)),
    )


async def tpk_koulutustoimijat(
    session: AsyncSession, *, kausi_alku: dt.date, kausi_loppu: dt.date, tilat: Sequence[str]
) -> list[str]:
    """The koulutustoimijat with jaksot a TPK run of the kausi may bundle."""
    rows = await session.execute(
        select(jaksot.c.koulutustoimija_oid)
        .where(
            _tpk_may_count(kausi_alku, kausi_loppu, tilat),
            jaksot.c.koulutustoimija_oid.is_not(None),
        )
        .distinct()
        .order_by(jaksot.c.koulutustoimija_oid)
    )
    return [r.koulutustoimija_oid for r in rows]


async def lock_tpk_jaksot(
    session: AsyncSession,
    koulutustoimija_oid: str,
    *,
    kausi_alku: dt.date,
    kausi_loppu: dt.date,
    tilat: Sequence[str],
) -> list[TpkJakso]:
    """A koulutustoimija's jaksot that may count for the kausi's TPK (T2 decides),
    locked in id order."""
    rows = await session.execute(
        select(
            jaksot.c.id,
            jaksot.c.hoks_id,
            jaksot.c.data,
            jaksot.c.ohjaaja_nimi,
            jaksot.c.ohjaaja_sahkoposti,
            jaksot.c.ohjaaja_puhelinnumero,
            jaksot.c.tila,
            jaksot.c.syy,
            jaksot.c.koulutustoimija_oid,
        )
        .where(
            _tpk_may_count(kausi_alku, kausi_loppu, tilat),
            jaksot.c.koulutustoimija_oid == koulutustoimija_oid,
        )
        .order_by(jaksot.c.id)
        .with_for_update()
    )
    return [
        TpkJakso(
            id=r.id,
            hoks_id=r.hoks_id,
            payload=_payload(r),
            tila=r.tila,
            syy=r.syy,
            koulutustoimija_oid=r.koulutustoimija_oid,
        )
        for r in rows
    ]


async def unlinked_tpk_niput(
    session: AsyncSession, kausi_alku: dt.date, koulutustoimija_oid: str
) -> dict[tuple[str, str], uuid.UUID]:
    """T4: a koulutustoimija's bundles of the kausi without a link yet, by (y-tunnus,
    normalised workplace name) (T3); late jaksot join them."""
    rows = await session.execute(
        select(
            tpk_niput.c.id,
            tpk_niput.c.tyopaikan_ytunnus,
            tpk_niput.c.tyopaikka_normalisoitu,
        )
        .where(
            tpk_niput.c.kausi_alku == kausi_alku,
            tpk_niput.c.koulutustoimija_oid == koulutustoimija_oid,
            tpk_niput.c.kysely_linkki.is_(None),
        )
        .order_by(tpk_niput.c.created_at, tpk_niput.c.id)
    )
    result: dict[tuple[str, str], uuid.UUID] = {}
    for r in rows:
        result.setdefault((r.tyopaikan_ytunnus, r.tyopaikka_normalisoitu), r.id)
    return result


@dataclass(frozen=True)
class TpkNippuRow:
    id: uuid.UUID
    koulutustoimija_oid: str
    tyopaikan_ytunnus: str
    tyopaikka_normalisoitu: str
    tyopaikka: str
    kausi_alku: dt.date
    kausi_loppu: dt.date
    vastaamisajan_alkupvm: dt.date
    vastaamisajan_loppupvm: dt.date
    run_id: uuid.UUID | None


async def insert_tpk_niput(session: AsyncSession, rows: Sequence[TpkNippuRow]) -> None:
    if rows:
        await session.execute(insert(tpk_niput), [r.__dict__ for r in rows])


async def set_tpk_nippu(session: AsyncSession, pairs: Sequence[tuple[int, uuid.UUID]]) -> None:
    if pairs:
        await session.execute(
            update(jaksot)
            .where(jaksot.c.id == bindparam("b_id"), jaksot.c.tpk_nippu_id.is_(None))
            .values(tpk_nippu_id=bindparam("b_nippu"), updated_at=func.now()),
            [{"b_id": jakso_id, "b_nippu": nippu_id} for jakso_id, nippu_id in pairs],
        )
