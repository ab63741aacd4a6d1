"""Queries of the survey flow after a bundle is formed (links, sending, answers, resends,
K4) and of the bundler's read APIs and reports.

Changes to one bundle run under a row lock on it (`lock_nippu`), so the events of one
bundle (its link, the sender's reports, Arvo's answer, a resend) are applied one after
the other whatever their order of arrival.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.bundler.store.tables import (
    hoksit,
    jaksot,
    lahetykset,
    niput,
    opiskeluoikeudet,
    tpk_niput,
)
from shared.events import JaksoPayload, OpiskeluoikeusChanged

#: The sender's reports of a message that went out.
SENT_REPORTS = ("sent", "delivered")

# --- One bundle ------------------------------------------------------------------------


@dataclass(frozen=True)
class NippuRow:
    id: uuid.UUID
    tunniste: str
    koulutustoimija_oid: str
    tutkinto: str
    tyopaikan_ytunnus: str
    tyopaikka: str
    niputuspvm: dt.date
    lahetyspvm: dt.date
    voimassa_loppupvm: dt.date
    tila: str
    linkki: str | None
    sahkoposti: str | None
    puhelinnumero: str | None
    resend_count: int


_NIPPU_COLUMNS = (
    niput.c.id,
    niput.c.tunniste,
    niput.c.koulutustoimija_oid,
    niput.c.tutkinto,
    niput.c.tyopaikan_ytunnus,
    niput.c.tyopaikka,
    niput.c.niputuspvm,
    niput.c.lahetyspvm,
    niput.c.voimassa_loppupvm,
    niput.c.tila,
    niput.c.linkki,
    niput.c.sahkoposti,
    niput.c.puhelinnumero,
    niput.c.resend_count,
)


def _nippu(row: Any) -> NippuRow:
    return NippuRow(**{c.name: getattr(row, c.name) for c in _NIPPU_COLUMNS})


async def lock_nippu(session: AsyncSession, nippu_id: uuid.UUID) -> NippuRow | None:
    """The bundle, locked for this transaction (None when unknown)."""
    row = (
        await session.execute(
            select(*_NIPPU_COLUMNS).where(niput.c.id == nippu_id).with_for_update()
        )
    ).first()
    return None if row is None else _nippu(row)


async def lock_unsent_closed(
    session: AsyncSession, *, tilat: Iterable[str], before: dt.date, limit: int
) -> list[NippuRow]:
    """Bundles in one of `tilat` whose last answer day is before `before` and none of
    whose messages was ever reported sent, locked; those another transaction holds are
    skipped (they are being changed: the next run sees them)."""
    went_out = (
        select(lahetykset.c.id)
        .where(lahetykset.c.nippu_id == niput.c.id, lahetykset.c.tila.in_(SENT_REPORTS))
        .exists()
    )
    rows = await session.execute(
        select(*_NIPPU_COLUMNS)
        .where(
            niput.c.tila.in_(list(tilat)),
            niput.c.voimassa_loppupvm < before,
            ~went_out,
        )
        .order_by(niput.c.voimassa_loppupvm, niput.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_nippu(r) for r in rows]


async def lock_nippu_by_tunniste(session: AsyncSession, tunniste: str) -> NippuRow | None:
    row = (
        await session.execute(
            select(*_NIPPU_COLUMNS).where(niput.c.tunniste == tunniste).with_for_update()
        )
    ).first()
    return None if row is None else _nippu(row)


async def update_nippu(session: AsyncSession, nippu_id: uuid.UUID, **values: Any) -> None:
    await session.execute(
        update(niput).where(niput.c.id == nippu_id).values(**values, updated_at=func.now())
    )


@dataclass(frozen=True)
class NippuJakso:
    """A jakso of a bundle as the flow needs it: its state and instructor contact."""

    id: int
    tila: str
    syy: str
    rule: str | None
    sahkoposti: str | None
    puhelinnumero: str | None
    oppilaitos: str | None
    """The oppilaitos' name (S5), or its OID when the study right named none."""


async def jaksot_of_nippu(session: AsyncSession, nippu_id: uuid.UUID) -> list[NippuJakso]:
    """The bundle's jaksot, locked, with each one's oppilaitos (S5 names it)."""
    rows = await session.execute(
        select(
            jaksot.c.id,
            jaksot.c.tila,
            jaksot.c.syy,
            jaksot.c.rule,
            jaksot.c.ohjaaja_sahkoposti,
            jaksot.c.ohjaaja_puhelinnumero,
            func.coalesce(
                opiskeluoikeudet.c.data["oppilaitos_nimi"].as_string(),
                opiskeluoikeudet.c.data["oppilaitos_oid"].as_string(),
            ).label("oppilaitos"),
        )
        .select_from(
            jaksot.outerjoin(
                opiskeluoikeudet, opiskeluoikeudet.c.oid == jaksot.c.opiskeluoikeus_oid
            )
        )
        .where(jaksot.c.nippu_id == nippu_id)
        .order_by(jaksot.c.id)
        .with_for_update(of=jaksot)
    )
    return [
        NippuJakso(
            id=r.id,
            tila=r.tila,
            syy=r.syy,
            rule=r.rule,
            sahkoposti=r.ohjaaja_sahkoposti,
            puhelinnumero=r.ohjaaja_puhelinnumero,
            oppilaitos=r.oppilaitos,
        )
        for r in rows
    ]


async def set_jakso_states(
    session: AsyncSession, jakso_ids: Sequence[int], *, tila: str, syy: str | None, rule: str
) -> None:
    if not jakso_ids:
        return
    values: dict[str, Any] = {"tila": tila, "rule": rule, "updated_at": func.now()}
    if syy is not None:
        values["syy"] = syy
    await session.execute(update(jaksot).where(jaksot.c.id.in_(jakso_ids)).values(**values))


async def set_tunnukset(session: AsyncSession, tunnukset: Mapping[int, str | None]) -> None:
    """Each jakso's answer code in Arvo (None: Arvo had no survey for it)."""
    for jakso_id, tunnus in tunnukset.items():
        await session.execute(update(jaksot).where(jaksot.c.id == jakso_id).values(tunnus=tunnus))


async def add_lahetys(
    session: AsyncSession,
    *,
    nippu_id: uuid.UUID,
    message_key: str,
    kind: str,
    kanava: str | None,
    tila: str | None,
    reason: str | None,
    at: dt.datetime,
) -> None:
    await session.execute(
        lahetykset.insert().values(
            nippu_id=nippu_id,
            message_key=message_key,
            kind=kind,
            kanava=kanava,
            tila=tila,
            reason=reason,
            at=at,
        )
    )


@dataclass(frozen=True)
class Lahetys:
    message_key: str
    kind: str
    kanava: str | None
    tila: str | None
    reason: str | None
    at: dt.datetime


async def lahetykset_of(
    session: AsyncSession, nippu_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Lahetys]]:
    """The sender's reports of each bundle, in the order they happened."""
    ids = list(nippu_ids)
    result: dict[uuid.UUID, list[Lahetys]] = {i: [] for i in ids}
    if not ids:
        return result
    rows = await session.execute(
        select(lahetykset)
        .where(lahetykset.c.nippu_id.in_(ids))
        .order_by(lahetykset.c.nippu_id, lahetykset.c.at, lahetykset.c.id)
    )
    for r in rows:
        result[r.nippu_id].append(Lahetys(r.message_key, r.kind, r.kanava, r.tila, r.reason, r.at))
    return result


# --- TPK links (T5) ---------------------------------------------------------------------


async def set_tpk_link(
    session: AsyncSession,
    tpk_nippu_id: uuid.UUID,
    *,
    tunnus: str,
    kysely_linkki: str,
    voimassa_loppupvm: dt.date,
) -> bool:
    """Store a TPK bundle's link; False when the bundle is unknown."""
    result = await session.execute(
        update(tpk_niput)
        .where(tpk_niput.c.id == tpk_nippu_id)
        .values(
            tunnus=tunnus,
            kysely_linkki=kysely_linkki,
            voimassa_loppupvm=voimassa_loppupvm,
            updated_at=func.now(),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- K4: an oppija's jaksot for kesto -----------------------------------------------------


@dataclass(frozen=True)
class OppijanJaksoRow:
    """One of an oppija's jaksot (any HOKS) with its study right, for K1."""

    id: int
    hoks_id: int
    payload: JaksoPayload
    opiskeluoikeus: OpiskeluoikeusChanged | None
    nippu_id: uuid.UUID | None
    kesto: int | None
    tila: str


async def lock_oppija(session: AsyncSession, oppija_oid: str) -> None:
    """Serialise K4's recomputations of one student (taken after the HOKS and study-right
    locks): the later one reads what the earlier committed."""
    key = func.hashtextextended(f"bundler.oppija:{oppija_oid}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def has_bundled_jaksot(session: AsyncSession, oppija_oid: str) -> bool:
    """Whether any jakso of the oppija is in a bundle (K4 has anything to recompute)."""
    found = await session.scalar(
        select(jaksot.c.id)
        .where(jaksot.c.oppija_oid == oppija_oid, jaksot.c.nippu_id.is_not(None))
        .limit(1)
    )
    return found is not None


async def oppijan_jaksot(session: AsyncSession, oppija_oid: str) -> list[OppijanJaksoRow]:
    """Every live jakso of an oppija (not removed, its HOKS not deleted): K1 splits each
    day between them."""
    rows = await session.execute(
        select(
            jaksot.c.id,
            jaksot.c.hoks_id,
            jaksot.c.data,
            jaksot.c.nippu_id,
            jaksot.c.kesto,
            jaksot.c.tila,
            opiskeluoikeudet.c.data.label("oo_data"),
        )
        .select_from(
            jaksot.join(hoksit, hoksit.c.hoks_id == jaksot.c.hoks_id).outerjoin(
                opiskeluoikeudet, opiskeluoikeudet.c.oid == jaksot.c.opiskeluoikeus_oid
            )
        )
        .where(
            jaksot.c.oppija_oid == oppija_oid,
            jaksot.c.poistettu.is_(False),
            hoksit.c.deleted.is_(False),
        )
        .order_by(jaksot.c.id)
    )
    return [
        OppijanJaksoRow(
            id=r.id,
            hoks_id=r.hoks_id,
            payload=JaksoPayload.model_validate(r.data),
            opiskeluoikeus=None
            if r.oo_data is None
            else OpiskeluoikeusChanged.model_validate(r.oo_data),
            nippu_id=r.nippu_id,
            kesto=r.kesto,
            tila=r.tila,
        )
        for r in rows
    ]


async def set_kesto(session: AsyncSession, jakso_id: int, kesto: int) -> None:
    await session.execute(update(jaksot).where(jaksot.c.id == jakso_id).values(kesto=kesto))


async def nippu_of_jakso(session: AsyncSession, jakso_id: int) -> uuid.UUID | None:
    return await session.scalar(select(jaksot.c.nippu_id).where(jaksot.c.id == jakso_id))


# --- Reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NippuView:
    """A TEP bundle as `GET /api/v1/niput` shows it (api.md)."""

    nippu_id: uuid.UUID
    tunniste: str
    niputuspvm: dt.date
    koulutustoimija: str
    ytunnus: str
    tyopaikka: str
    tutkinto: str
    jaksot: list[int]
    tila: str
    linkki: str | None
    voimassa_loppupvm: dt.date
    lahetyspvm: dt.date
    resend_count: int
    lahetykset: list[Lahetys]


def _visible(column: Any, koulutustoimijat: frozenset[str] | None) -> Any:
    """Only the caller's koulutustoimijat (None: every one)."""
    return True if koulutustoimijat is None else column.in_(koulutustoimijat)


async def niput_view(
    session: AsyncSession,
    *,
    koulutustoimijat: frozenset[str] | None,
    koulutustoimija: str | None = None,
    niputuspvm: dt.date | None = None,
    nippu_id: uuid.UUID | None = None,
    after: tuple[dt.date, uuid.UUID] | None = None,
    limit: int = 100,
) -> list[NippuView]:
    """Bundles in (niputuspvm, id) order, from after the cursor `after`."""
    query = select(*_NIPPU_COLUMNS).where(_visible(niput.c.koulutustoimija_oid, koulutustoimijat))
    if koulutustoimija is not None:
        query = query.where(niput.c.koulutustoimija_oid == koulutustoimija)
    if niputuspvm is not None:
        query = query.where(niput.c.niputuspvm == niputuspvm)
    if nippu_id is not None:
        query = query.where(niput.c.id == nippu_id)
    if after is not None:
        query = query.where(
            or_(
                niput.c.niputuspvm > after[0],
                and_(niput.c.niputuspvm == after[0], niput.c.id > after[1]),
            )
        )
    rows = [
        _nippu(r)
        for r in await session.execute(query.order_by(niput.c.niputuspvm, niput.c.id).limit(limit))
    ]
    ids = [r.id for r in rows]
    members: dict[uuid.UUID, list[int]] = {i: [] for i in ids}
    if ids:
        for r in await session.execute(
            select(jaksot.c.nippu_id, jaksot.c.id)
            .where(jaksot.c.nippu_id.in_(ids))
            .order_by(jaksot.c.id)
        ):
            members[r.nippu_id].append(r.id)
    sent = await lahetykset_of(session, ids)
    return [
        NippuView(
            nippu_id=r.id,
            tunniste=r.tunniste,
            niputuspvm=r.niputuspvm,
            koulutustoimija=r.koulutustoimija_oid,
            ytunnus=r.tyopaikan_ytunnus,
            tyopaikka=r.tyopaikka,
            tutkinto=r.tutkinto,
            jaksot=members[r.id],
            tila=r.tila,
            linkki=r.linkki,
            voimassa_loppupvm=r.voimassa_loppupvm,
            lahetyspvm=r.lahetyspvm,
            resend_count=r.resend_count,
            lahetykset=sent[r.id],
        )
        for r in rows
    ]


async def nippu_owner(session: AsyncSession, nippu_id: uuid.UUID) -> tuple[bool, str | None]:
    row = (
        await session.execute(select(niput.c.koulutustoimija_oid).where(niput.c.id == nippu_id))
    ).first()
    return (False, None) if row is None else (True, row.koulutustoimija_oid)


@dataclass(frozen=True)
class TpkNippuView:
    tpk_nippu_id: uuid.UUID
    koulutustoimija: str
    ytunnus: str
    tyopaikka: str
    tyopaikka_normalisoitu: str
    kausi_alku: dt.date
    kausi_loppu: dt.date
    vastaamisajan_alkupvm: dt.date
    vastaamisajan_loppupvm: dt.date
    tunnus: str | None
    kysely_linkki: str | None
    voimassa_loppupvm: dt.date | None
    jaksoja: int


async def tpk_niput_view(
    session: AsyncSession,
    *,
    koulutustoimijat: frozenset[str] | None,
    koulutustoimija: str | None,
    kausi: dt.date | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[TpkNippuView]:
    count = (
        select(func.count())
        .select_from(jaksot)
        .where(jaksot.c.tpk_nippu_id == tpk_niput.c.id)
        .scalar_subquery()
    )
    query = select(tpk_niput, count.label("jaksoja")).where(
        _visible(tpk_niput.c.koulutustoimija_oid, koulutustoimijat)
    )
    if koulutustoimija is not None:
        query = query.where(tpk_niput.c.koulutustoimija_oid == koulutustoimija)
    if kausi is not None:
        query = query.where(tpk_niput.c.kausi_alku == kausi)
    if after is not None:
        query = query.where(tpk_niput.c.id > after)
    rows = await session.execute(query.order_by(tpk_niput.c.id).limit(limit))
    return [
        TpkNippuView(
            tpk_nippu_id=r.id,
            koulutustoimija=r.koulutustoimija_oid,
            ytunnus=r.tyopaikan_ytunnus,
            tyopaikka=r.tyopaikka,
            tyopaikka_normalisoitu=r.tyopaikka_normalisoitu,
            kausi_alku=r.kausi_alku,
            kausi_loppu=r.kausi_loppu,
            vastaamisajan_alkupvm=r.vastaamisajan_alkupvm,
            vastaamisajan_loppupvm=r.vastaamisajan_loppupvm,
            tunnus=r.tunnus,
            kysely_linkki=r.kysely_linkki,
            voimassa_loppupvm=r.voimassa_loppupvm,
            jaksoja=r.jaksoja,
        )
        for r in rows
    ]


# --- Reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JaksoReportRow:
    """N5: one row per jakso, with its bundle's link, sending and answer status. No
    personal data: the instructor is not named."""

    jakso_id: int
    hoks_id: int
    yksiloiva_tunniste: str | None
    koulutustoimija: str | None
    hankkimistapa: str
    tyopaikka: str | None
    ytunnus: str | None
    alku: dt.date
    loppu: dt.date | None
    osa_aikaisuus: int | None
    kesto: int | None
    tila: str
    syy: str
    niputuspvm: dt.date | None
    nippu_id: uuid.UUID | None
    tunniste: str | None
    tutkinto: str | None
    linkki: str | None
    nippu_tila: str | None
    lahetyspvm: dt.date | None
    voimassa_loppupvm: dt.date | None
    vastattu: bool


async def jaksot_report(
    session: AsyncSession,
    *,
    koulutustoimijat: frozenset[str] | None,
    koulutustoimija: str | None,
    alku: dt.date | None,
    loppu: dt.date | None,
    after: int | None,
    limit: int,
) -> list[JaksoReportRow]:
    """Jaksot whose `loppu` is in [alku, loppu], in id order from after the cursor."""
    query = (
        select(
            jaksot,
            niput.c.tunniste.label("n_tunniste"),
            niput.c.tutkinto.label("n_tutkinto"),
            niput.c.linkki.label("n_linkki"),
            niput.c.tila.label("n_tila"),
            niput.c.lahetyspvm.label("n_lahetyspvm"),
            niput.c.voimassa_loppupvm.label("n_voimassa"),
        )
        .select_from(jaksot.outerjoin(niput, niput.c.id == jaksot.c.nippu_id))
        .where(_visible(jaksot.c.koulutustoimija_oid, koulutustoimijat))
    )
    if koulutustoimija is not None:
        query = query.where(jaksot.c.koulutustoimija_oid == koulutustoimija)
    if alku is not None:
        query = query.where(jaksot.c.loppu >= alku)
    if loppu is not None:
        query = query.where(jaksot.c.loppu <= loppu)
    if after is not None:
        query = query.where(jaksot.c.id > after)
    rows = await session.execute(query.order_by(jaksot.c.id).limit(limit))
    return [
        JaksoReportRow(
            jakso_id=r.id,
            hoks_id=r.hoks_id,
            yksiloiva_tunniste=None if r.tunniste_puuttuu else r.tunniste,
            koulutustoimija=r.koulutustoimija_oid,
            hankkimistapa=r.hankkimistapa,
            tyopaikka=r.tyopaikan_nimi,
            ytunnus=r.tyopaikan_ytunnus,
            alku=r.alku,
            loppu=r.loppu,
            osa_aikaisuus=r.osa_aikaisuus,
            kesto=r.kesto,
            tila=r.tila,
            syy=r.syy,
            niputuspvm=r.niputuspvm,
            nippu_id=r.nippu_id,
            tunniste=r.n_tunniste,
            tutkinto=r.n_tutkinto,
            linkki=r.n_linkki,
            nippu_tila=r.n_tila,
            lahetyspvm=r.n_lahetyspvm,
            voimassa_loppupvm=r.n_voimassa,
            vastattu=r.n_tila == "vastattu",
        )
        for r in rows
    ]


@dataclass(frozen=True)
class ResponseCounts:
    koulutustoimija: str
    niput_sent: int
    niput_answered: int
    jaksot_sent: int
    jaksot_answered: int


async def response_counts(
    session: AsyncSession,
    *,
    koulutustoimijat: frozenset[str] | None,
    koulutustoimija: str | None,
    alku: dt.date | None,
    loppu: dt.date | None,
    sent_tilat: frozenset[str],
    answered_tila: str,
) -> list[ResponseCounts]:
    """Per koulutustoimija: bundles (and their jaksot) sent and answered, by the
    bundles' niputuspvm in [alku, loppu]. One pass over the selected bundles and their
    jaksot (`jaksot.nippu_id` is indexed), never over every jakso."""
    sent = niput.c.tila.in_(sent_tilat)
    answered = niput.c.tila == answered_tila
    query = (
        select(
            niput.c.koulutustoimija_oid,
            func.count(niput.c.id.distinct()).filter(sent).label("niput_sent"),
            func.count(niput.c.id.distinct()).filter(answered).label("niput_answered"),
            func.count(jaksot.c.id).filter(sent).label("jaksot_sent"),
            func.count(jaksot.c.id).filter(answered).label("jaksot_answered"),
        )
        .select_from(niput.outerjoin(jaksot, jaksot.c.nippu_id == niput.c.id))
        .where(_visible(niput.c.koulutustoimija_oid, koulutustoimijat))
        .group_by(niput.c.koulutustoimija_oid)
        .order_by(niput.c.koulutustoimija_oid)
    )
    if koulutustoimija is not None:
        query = query.where(niput.c.koulutustoimija_oid == koulutustoimija)
    if alku is not None:
        query = query.where(niput.c.niputuspvm >= alku)
    if loppu is not None:
        query = query.where(niput.c.niputuspvm <= loppu)
    return [
        ResponseCounts(
            r.koulutustoimija_oid,
            int(r.niput_sent),
            int(r.niput_answered),
            int(r.jaksot_sent),
            int(r.jaksot_answered),
        )
        for r in await session.execute(query)
    ]


@dataclass(frozen=True)
class ContactRow:
    """A jakso not yet sent, with what C3 and J2 need to judge its contacts. The
    addresses are read only to judge them; the report never shows them."""

    jakso_id: int
    hoks_id: int
    yksiloiva_tunniste: str | None
    tunniste_puuttuu: bool
    koulutustoimija: str | None
    tyopaikka: str | None
    ytunnus: str | None
    ohjaaja_normalisoitu: str | None
    niputuspvm: dt.date | None
    tila: str
    syy: str
    sahkoposti: str | None
    puhelinnumero: str | None


async def contact_rows(
    session: AsyncSession,
    *,
    koulutustoimijat: frozenset[str] | None,
    koulutustoimija: str | None,
    pending_tilat: frozenset[str],
    pending_syyt: frozenset[str],
) -> list[ContactRow]:
    """Jaksot still to be sent (waiting, bundled, or without a usable contact) whose
    personal data has not been removed."""
    query = select(jaksot).where(
        _visible(jaksot.c.koulutustoimija_oid, koulutustoimijat),
        or_(jaksot.c.tila.in_(pending_tilat), jaksot.c.syy.in_(pending_syyt)),
        jaksot.c.personal_data_removed_at.is_(None),
        jaksot.c.poistettu.is_(False),
    )
    if koulutustoimija is not None:
        query = query.where(jaksot.c.koulutustoimija_oid == koulutustoimija)
    rows = await session.execute(query.order_by(jaksot.c.niputuspvm, jaksot.c.id))
    return [
        ContactRow(
            jakso_id=r.id,
            hoks_id=r.hoks_id,
            yksiloiva_tunniste=None if r.tunniste_puuttuu else r.tunniste,
            tunniste_puuttuu=r.tunniste_puuttuu,
            koulutustoimija=r.koulutustoimija_oid,
            tyopaikka=r.tyopaikan_nimi,
            ytunnus=r.tyopaikan_ytunnus,
            ohjaaja_normalisoitu=r.ohjaaja_normalisoitu,
            niputuspvm=r.niputuspvm,
            tila=r.tila,
            syy=r.syy,
            sahkoposti=r.ohjaaja_sahkoposti,
            puhelinnumero=r.ohjaaja_puhelinnumero,
        )
        for r in rows
    ]
