"""The bundler's record of HOKS, study rights and jaksot as the ingest's events left them,
and each jakso's history (E18).

Rows hold the event payloads' vocabulary (`shared.events`): a jakso row keeps its
`JaksoPayload` in `data` without the instructor, whose name, e-mail and phone are the
`ohjaaja_*` columns (P1 removes them). Concurrency: every change of a HOKS or a study
right runs under transaction-scoped advisory locks (`lock_hoks`, `lock_opiskeluoikeus`),
taken in that order, so a HOKS and its study right arriving at once are applied one after
the other and the later one sees the earlier.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, BigInteger, any_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.bundler.store.tables import hoksit, jakso_transitions, jaksot, opiskeluoikeudet
from shared.events import JaksoPayload, OhjaajaPayload, OpiskeluoikeusChanged


async def _lock(session: AsyncSession, key: str) -> None:
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def hoks_lock_key(hoks_id: int) -> str:
    return f"bundler.hoks:{hoks_id}"


def opiskeluoikeus_lock_key(oid: str) -> str:
    return f"bundler.opiskeluoikeus:{oid}"


async def lock_hoks(session: AsyncSession, hoks_id: int) -> None:
    """Serialise the events of one HOKS (taken before `lock_opiskeluoikeus`)."""
    await _lock(session, hoks_lock_key(hoks_id))


async def lock_opiskeluoikeus(session: AsyncSession, oid: str) -> None:
    """Serialise a study right's events with those of the HOKS that use it."""
    await _lock(session, opiskeluoikeus_lock_key(oid))


# --- HOKS -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredHoks:
    """A HOKS's latest applied version; a tombstone (deleted before any version was
    seen) has no oppija or study right."""

    hoks_id: int
    version: int
    oppija_oid: str | None
    opiskeluoikeus_oid: str | None
    is_tuva: bool
    deleted: bool


def _hoks(row: Any) -> StoredHoks:
    return StoredHoks(
        hoks_id=row.hoks_id,
        version=row.version,
        oppija_oid=row.oppija_oid,
        opiskeluoikeus_oid=row.opiskeluoikeus_oid,
        is_tuva=row.is_tuva,
        deleted=row.deleted,
    )


_HOKS_COLUMNS = (
    hoksit.c.hoks_id,
    hoksit.c.version,
    hoksit.c.oppija_oid,
    hoksit.c.opiskeluoikeus_oid,
    hoksit.c.is_tuva,
    hoksit.c.deleted,
)


async def get_hoks(session: AsyncSession, hoks_id: int) -> StoredHoks | None:
    row = (await session.execute(select(*_HOKS_COLUMNS).where(hoksit.c.hoks_id == hoks_id))).first()
    return None if row is None else _hoks(row)


async def save_hoks(session: AsyncSession, hoks: StoredHoks) -> None:
    values = {
        "version": hoks.version,
        "oppija_oid": hoks.oppija_oid,
        "opiskeluoikeus_oid": hoks.opiskeluoikeus_oid,
        "is_tuva": hoks.is_tuva,
        "deleted": hoks.deleted,
    }
    await session.execute(
        pg_insert(hoksit)
        .values(hoks_id=hoks.hoks_id, **values)
        .on_conflict_do_update(
            index_elements=[hoksit.c.hoks_id], set_={**values, "updated_at": func.now()}
        )
    )


async def hoksit_of_opiskeluoikeus(session: AsyncSession, oid: str) -> list[StoredHoks]:
    """The HOKS that name this study right (E3–E10 of their jaksot read it)."""
    rows = await session.execute(
        select(*_HOKS_COLUMNS)
        .where(hoksit.c.opiskeluoikeus_oid == oid)
        .order_by(hoksit.c.hoks_id)
        .with_for_update()
    )
    return [_hoks(row) for row in rows]


# --- Study rights ---------------------------------------------------------------------


async def get_opiskeluoikeus(session: AsyncSession, oid: str) -> OpiskeluoikeusChanged | None:
    """The latest applied `opiskeluoikeus.changed` payload of a study right."""
    data = await session.scalar(
        select(opiskeluoikeudet.c.data).where(opiskeluoikeudet.c.oid == oid)
    )
    return None if data is None else OpiskeluoikeusChanged.model_validate(data)


async def save_opiskeluoikeus(session: AsyncSession, payload: OpiskeluoikeusChanged) -> None:
    values = {
        "version": payload.version,
        "koulutustoimija_oid": payload.koulutustoimija_oid,
        "data": payload.model_dump(mode="json"),
    }
    await session.execute(
        pg_insert(opiskeluoikeudet)
        .values(oid=payload.oid, **values)
        .on_conflict_do_update(
            index_elements=[opiskeluoikeudet.c.oid], set_={**values, "updated_at": func.now()}
        )
    )


# --- Jaksot ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredJaksoRow:
    """A jakso row: its id, its facts as the payload carried them, and its judgement."""

    id: int
    payload: JaksoPayload
    tila: str
    syy: str
    rule: str | None
    niputuspvm: dt.date | None
    poistettu: bool
    personal_data_removed: bool = False
    """P1 removed the instructor's data: `payload.ohjaaja` holds only the normalised
    name (N4), which is what bundles, J4 and E12 read, and no e-mail or phone."""


async def jaksot_of_hoks(session: AsyncSession, hoks_id: int) -> list[StoredJaksoRow]:
    """Every stored jakso of a HOKS, removed ones too, locked for this transaction."""
    return (await jaksot_of_hoksit(session, [hoks_id])).get(hoks_id, [])


async def jaksot_of_hoksit(
    session: AsyncSession, hoks_ids: Sequence[int]
) -> dict[int, list[StoredJaksoRow]]:
    """`jaksot_of_hoks` for many HOKS in one statement (a run judging them again), by
    HOKS id; rows locked in id order."""
    wanted = bindparam("hoks_ids", list(hoks_ids), type_=ARRAY(BigInteger))
    rows = await session.execute(
        select(
            jaksot.c.id,
            jaksot.c.hoks_id,
            jaksot.c.data,
            jaksot.c.ohjaaja_nimi,
            jaksot.c.ohjaaja_sahkoposti,
            jaksot.c.ohjaaja_puhelinnumero,
            jaksot.c.ohjaaja_normalisoitu,
            jaksot.c.personal_data_removed_at,
            jaksot.c.tila,
            jaksot.c.syy,
            jaksot.c.rule,
            jaksot.c.niputuspvm,
            jaksot.c.poistettu,
        )
        .where(jaksot.c.hoks_id == any_(wanted))
        .order_by(jaksot.c.id)
        .with_for_update()
    )
    result: dict[int, list[StoredJaksoRow]] = {}
    for row in rows:
        result.setdefault(row.hoks_id, []).append(
            StoredJaksoRow(
                id=row.id,
                payload=JaksoPayload.model_validate(
                    {
                        **row.data,
                        "ohjaaja": (
                            OhjaajaPayload(nimi=row.ohjaaja_normalisoitu)
                            if row.personal_data_removed_at is not None
                            else OhjaajaPayload(
                                nimi=row.ohjaaja_nimi,
                                sahkoposti=row.ohjaaja_sahkoposti,
                                puhelinnumero=row.ohjaaja_puhelinnumero,
                            )
                        ),
                    }
                ),
                tila=row.tila,
                syy=row.syy,
                rule=row.rule,
                niputuspvm=row.niputuspvm,
                poistettu=row.poistettu,
                personal_data_removed=row.personal_data_removed_at is not None,
            )
        )
    return result


@dataclass(frozen=True)
class JaksoRecord:
    """What a jakso row holds after an event: identity (J2), its HOKS and study right,
    its facts (`payload`), normalised keys (N4) and judgement."""

    hoks_id: int
    hoks_version: int
    oppija_oid: str
    opiskeluoikeus_oid: str
    koulutustoimija_oid: str | None
    payload: JaksoPayload
    ohjaaja_normalisoitu: str | None
    tyopaikka_normalisoitu: str | None
    tila: str
    syy: str
    rule: str | None
    niputuspvm: dt.date | None
    poistettu: bool
    personal_data_removed: bool = False
    """P1 removed the instructor's data and it stays removed: the row keeps no name,
    e-mail or phone (else they are stored, and a former removal is undone)."""


def _jakso_values(record: JaksoRecord) -> dict[str, Any]:
    payload = record.payload
    ohjaaja = payload.ohjaaja or OhjaajaPayload()
    if record.personal_data_removed:
        personal: dict[str, Any] = {
            "ohjaaja_nimi": None,
            "ohjaaja_sahkoposti": None,
            "ohjaaja_puhelinnumero": None,
        }
    else:
        personal = {
            "ohjaaja_nimi": ohjaaja.nimi,
            "ohjaaja_sahkoposti": ohjaaja.sahkoposti,
            "ohjaaja_puhelinnumero": ohjaaja.puhelinnumero,
            "personal_data_removed_at": None,
        }
    return {
        "hoks_version": record.hoks_version,
        "oppija_oid": record.oppija_oid,
        "opiskeluoikeus_oid": record.opiskeluoikeus_oid,
        "koulutustoimija_oid": record.koulutustoimija_oid,
        "tunniste_puuttuu": payload.tunniste_puuttuu,
        "hankkimistapa": payload.hankkimistapa.value,
        "alku": payload.alku,
        "loppu": payload.loppu,
        "osa_aikaisuus": payload.osa_aikaisuus,
        "tyopaikan_nimi": payload.tyopaikan_nimi,
        "tyopaikan_ytunnus": payload.tyopaikan_ytunnus,
        "tyopaikka_normalisoitu": record.tyopaikka_normalisoitu,
        **personal,
        "ohjaaja_normalisoitu": record.ohjaaja_normalisoitu,
        "data": payload.model_dump(mode="json", exclude={"ohjaaja"}),
        "tila": record.tila,
        "syy": record.syy,
        "rule": record.rule,
        "niputuspvm": record.niputuspvm,
        "poistettu": record.poistettu,
    }


async def insert_jakso(session: AsyncSession, record: JaksoRecord, *, tunniste: str) -> int:
    """A new jakso row, keyed as J2 says: (hoks_id, tunniste, tunniste_puuttuu)."""
    jakso_id = await session.scalar(
        insert(jaksot)
        .values(hoks_id=record.hoks_id, tunniste=tunniste, **_jakso_values(record))
        .returning(jaksot.c.id)
    )
    assert jakso_id is not None
    return int(jakso_id)


async def update_jakso(session: AsyncSession, jakso_id: int, record: JaksoRecord) -> None:
    await session.execute(
        update(jaksot)
        .where(jaksot.c.id == jakso_id)
        .values(**_jakso_values(record), updated_at=func.now())
    )


async def set_hoks_version(
    session: AsyncSession, hoks_id: int, *, hoks_version: int, koulutustoimija_oid: str | None
) -> None:
    """Every jakso row of a HOKS names the HOKS version and provider last applied."""
    await session.execute(
        update(jaksot)
        .where(jaksot.c.hoks_id == hoks_id)
        .values(hoks_version=hoks_version, koulutustoimija_oid=koulutustoimija_oid)
    )


@dataclass(frozen=True)
class TransitionRecord:
    """E18: one recorded re-evaluation of a jakso (field names only, never values)."""

    jakso_id: int
    at: dt.datetime
    from_tila: str | None
    from_syy: str | None
    to_tila: str
    to_syy: str
    rule: str
    changed: Sequence[str]
    cause: str
    message_id: uuid.UUID
    applied: bool
    loppu_muutos: str | None


async def add_transitions(session: AsyncSession, records: Sequence[TransitionRecord]) -> None:
    """Many transitions in one statement from one array per column (unnested): a run
    records one per jakso it judged or bundled, tens of thousands."""
    if not records:
        return
    await session.execute(
        text(
            f"INSERT INTO {jakso_transitions.fullname} (jakso_id, at, from_tila, from_syy, "
            "to_tila, to_syy, rule, changed, cause, message_id, applied, loppu_muutos) "
            "SELECT v.jakso_id, v.at, v.from_tila, v.from_syy, v.to_tila, v.to_syy, v.rule, "
            "CAST(v.changed AS json), v.cause, v.message_id, v.applied, v.loppu_muutos "
            "FROM unnest(CAST(:jakso_ids AS bigint[]), CAST(:ats AS timestamptz[]), "
            "CAST(:from_tilat AS text[]), CAST(:from_syyt AS text[]), "
            "CAST(:to_tilat AS text[]), CAST(:to_syyt AS text[]), CAST(:rules AS text[]), "
            "CAST(:changed AS text[]), CAST(:causes AS text[]), CAST(:message_ids AS uuid[]), "
            "CAST(:applied AS boolean[]), CAST(:loppu_muutokset AS text[])) WITH ORDINALITY "
            "AS v(jakso_id, at, from_tila, from_syy, to_tila, to_syy, rule, changed, cause, "
            "message_id, applied, loppu_muutos, n) "
            "ORDER BY v.n"
        ),
        {
            "jakso_ids": [r.jakso_id for r in records],
            "ats": [r.at for r in records],
            "from_tilat": [r.from_tila for r in records],
            "from_syyt": [r.from_syy for r in records],
            "to_tilat": [r.to_tila for r in records],
            "to_syyt": [r.to_syy for r in records],
            "rules": [r.rule for r in records],
            "changed": [_json_list(r.changed) for r in records],
            "causes": [r.cause for r in records],
            "message_ids": [r.message_id for r in records],
            "applied": [r.applied for r in records],
            "loppu_muutokset": [r.loppu_muutos for r in records],
        },
    )


def _json_list(names: Sequence[str]) -> str:
    return "[]" if not names else json.dumps(list(names))


# --- Reads (api) ----------------------------------------------------------------------


@dataclass(frozen=True)
class JaksoView:
    """A jakso as `GET /api/v1/hoks/{hoks_id}/jaksot` shows it (api.md)."""

    jakso_id: int
    hoks_id: int
    yksiloiva_tunniste: str | None
    hankkimistapa: str
    alku: dt.date
    loppu: dt.date | None
    osa_aikaisuus: int | None
    kesto: int | None
    tila: str
    syy: str
    niputuspvm: dt.date | None
    nippu_id: uuid.UUID | None


async def hoks_koulutustoimija(session: AsyncSession, hoks_id: int) -> tuple[bool, str | None]:
    """Whether the HOKS is known, and the koulutustoimija of its study right (scoping)."""
    row = (
        await session.execute(
            select(opiskeluoikeudet.c.koulutustoimija_oid)
            .select_from(
                hoksit.outerjoin(
                    opiskeluoikeudet, opiskeluoikeudet.c.oid == hoksit.c.opiskeluoikeus_oid
                )
            )
            .where(hoksit.c.hoks_id == hoks_id)
        )
    ).first()
    return (False, None) if row is None else (True, row.koulutustoimija_oid)


async def jaksot_view(session: AsyncSession, hoks_id: int) -> list[JaksoView]:
    rows = await session.execute(
        select(jaksot).where(jaksot.c.hoks_id == hoks_id).order_by(jaksot.c.alku, jaksot.c.id)
    )
    return [
        JaksoView(
            jakso_id=row.id,
            hoks_id=row.hoks_id,
            yksiloiva_tunniste=None if row.tunniste_puuttuu else row.tunniste,
            hankkimistapa=row.hankkimistapa,
            alku=row.alku,
            loppu=row.loppu,
            osa_aikaisuus=row.osa_aikaisuus,
            kesto=row.kesto,
            tila=row.tila,
            syy=row.syy,
            niputuspvm=row.niputuspvm,
            nippu_id=row.nippu_id,
        )
        for row in rows
    ]


async def jakso_owner(session: AsyncSession, jakso_id: int) -> tuple[bool, str | None]:
    """Whether the jakso is known, and its koulutustoimija (scoping)."""
    row = (
        await session.execute(select(jaksot.c.koulutustoimija_oid).where(jaksot.c.id == jakso_id))
    ).first()
    return (False, None) if row is None else (True, row.koulutustoimija_oid)


async def transitions_of(session: AsyncSession, jakso_id: int) -> list[TransitionRecord]:
    rows = await session.execute(
        select(jakso_transitions)
        .where(jakso_transitions.c.jakso_id == jakso_id)
        .order_by(jakso_transitions.c.id)
    )
    return [
        TransitionRecord(
            jakso_id=row.jakso_id,
            at=row.at,
            from_tila=row.from_tila,
            from_syy=row.from_syy,
            to_tila=row.to_tila,
            to_syy=row.to_syy,
            rule=row.rule,
            changed=tuple(row.changed),
            cause=row.cause,
            message_id=row.message_id,
            applied=row.applied,
            loppu_muutos=row.loppu_muutos,
        )
        for row in rows
    ]
