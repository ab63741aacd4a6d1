"""P1: removing instructors' names, e-mails and phones once they are no longer needed.

What stays: every jakso's and bundle's identity, dates, states, reasons, kesto, links and
the normalised keys (N4: `ohjaaja_normalisoitu`, `tyopaikka_normalisoitu`) that bundles,
J4 and reports compare. What goes: `jaksot.ohjaaja_nimi`, `ohjaaja_sahkoposti`,
`ohjaaja_puhelinnumero` (and an `ohjaaja` in `jaksot.data`, which never holds one by
construction but is stripped all the same), and `niput.sahkoposti`, `puhelinnumero`.

A row is cleaned when its purpose has ended (`domain.retention.Cutoff`) and it still
holds any of that data or was never marked: so a second run finds nothing, and data that
came back (a HOKS version moving a finished jakso's `loppu`, `usecases._still_removed`)
goes again on the next daily run once that jakso is finished again. Updates go in
batches ordered by id, each its own transaction, so no run holds many row locks for long
and the consumers' per-HOKS transactions (which lock jaksot in id order too) never
deadlock with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Text,
    and_,
    cast,
    exists,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.bundler.store.tables import hoksit, jakso_transitions, jaksot, niput
from shared.clock import HELSINKI


@dataclass(frozen=True)
class Limits:
    """One run's limits, as the domain's `retention.Cutoff` gives them."""

    bundle_closed_before: dt.date
    niputuspvm_before: dt.date
    loppu_before: dt.date
    unchanged_since: dt.date

    @property
    def unchanged_since_at(self) -> dt.datetime:
        return dt.datetime.combine(self.unchanged_since, dt.time(), HELSINKI)


def niput_done(limits: Limits) -> ColumnElement[bool]:
    """Bundles whose answer window closed more than the retention ago."""
    return niput.c.voimassa_loppupvm < limits.bundle_closed_before


def jaksot_done(limits: Limits) -> ColumnElement[bool]:
    """Jaksot whose instructor data is no longer needed (`retention.Cutoff`)."""
    bundled = jaksot.c.nippu_id.in_(select(niput.c.id).where(niput_done(limits)))
    never_bundled = and_(
        jaksot.c.nippu_id.is_(None),
        jaksot.c.tila.in_(("odottaa", "ei_laheteta")),
        or_(
            jaksot.c.niputuspvm < limits.niputuspvm_before,
            and_(jaksot.c.niputuspvm.is_(None), jaksot.c.loppu < limits.loppu_before),
            and_(
                or_(
                    jaksot.c.poistettu,
                    jaksot.c.syy.in_(("jakso_poistettu", "hoks_poistettu")),
                ),
                ~exists().where(
                    jakso_transitions.c.jakso_id == jaksot.c.id,
                    jakso_transitions.c.at >= limits.unchanged_since_at,
                ),
            ),
            jaksot.c.hoks_id.in_(
                select(hoksit.c.hoks_id).where(
                    hoksit.c.deleted, hoksit.c.updated_at < limits.unchanged_since_at
                )
            ),
        ),
    )
    return or_(bundled, never_bundled)


_JAKSO_PERSONAL = (
    jaksot.c.ohjaaja_nimi,
    jaksot.c.ohjaaja_sahkoposti,
    jaksot.c.ohjaaja_puhelinnumero,
)
_NIPPU_PERSONAL = (niput.c.sahkoposti, niput.c.puhelinnumero)


@dataclass(frozen=True)
class Batch:
    """What one batch cleaned: how many rows, and the last id (the next batch's start)."""

    cleaned: int
    last_id: Any


async def remove_from_jaksot(
    session: AsyncSession, limits: Limits, *, after: Any, batch_size: int, now: dt.datetime
) -> Batch:
    """One batch of jaksot cleaned: at most `batch_size`, with ids after `after` (None:
    from the start), so a run reads the table once however many batches it takes."""
    pending = or_(
        jaksot.c.personal_data_removed_at.is_(None),
        *(column.is_not(None) for column in _JAKSO_PERSONAL),
    )
    batch = (
        select(jaksot.c.id)
        .where(jaksot_done(limits), pending, *_after(jaksot.c.id, after))
        .order_by(jaksot.c.id)
        .limit(batch_size)
        .with_for_update()
        .scalar_subquery()
    )
    result = await session.execute(
        update(jaksot)
        .where(jaksot.c.id.in_(batch))
        .values(
            ohjaaja_nimi=None,
            ohjaaja_sahkoposti=None,
            ohjaaja_puhelinnumero=None,
            data=cast(cast(jaksot.c.data, JSONB).op("-")(literal("ohjaaja", Text)), JSON),
            personal_data_removed_at=now,
        )
        .returning(jaksot.c.id)
    )
    return _batch(result.scalars().all())


async def remove_from_niput(
    session: AsyncSession, limits: Limits, *, after: Any, batch_size: int, now: dt.datetime
) -> Batch:
    """One batch of bundles cleaned, as `remove_from_jaksot`."""
    pending = or_(
        niput.c.personal_data_removed_at.is_(None),
        *(column.is_not(None) for column in _NIPPU_PERSONAL),
    )
    batch = (
        select(niput.c.id)
        .where(niput_done(limits), pending, *_after(niput.c.id, after))
        .order_by(niput.c.id)
        .limit(batch_size)
        .with_for_update()
        .scalar_subquery()
    )
    result = await session.execute(
        update(niput)
        .where(niput.c.id.in_(batch))
        .values(sahkoposti=None, puhelinnumero=None, personal_data_removed_at=now)
        .returning(niput.c.id)
    )
    return _batch(result.scalars().all())


def _after(column: ColumnElement[Any], after: Any) -> tuple[ColumnElement[bool], ...]:
    return () if after is None else (column > after,)


def _batch(ids: Sequence[Any]) -> Batch:
    return Batch(len(ids), max(ids) if ids else None)
