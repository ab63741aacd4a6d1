"""Kesto, the effective length of a jakso in days (K1–K3)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from services.bundler.domain.eligibility import is_valid_osa_aikaisuus
from services.bundler.domain.jakso import Jakso, JaksoId, Opiskeluoikeus

#: K1: a study right in this state pauses all its jaksot.
VALIAIKAISESTI_KESKEYTYNYT = "valiaikaisestikeskeytynyt"


@dataclass(frozen=True)
class OppijanJakso:
    """One of an oppija's jaksot (from any of their HOKSes) with its study right,
    None when the study right is not known."""

    jakso: Jakso
    opiskeluoikeus: Opiskeluoikeus | None


def _days(alku: date, loppu: date) -> Iterable[date]:
    for offset in range((loppu - alku).days + 1):
        yield alku + timedelta(days=offset)


def _in_period(day: date, period: tuple[date, date | None]) -> bool:
    alku, loppu = period
    return alku <= day and (loppu is None or day <= loppu)


def active_days(oj: OppijanJakso, until: date) -> tuple[date, ...]:
    """K1: the days from the jakso's `alku` to its `loppu` (or `until` while it is
    still open) when it is neither interrupted nor in a valiaikaisestikeskeytynyt
    period of its study right."""
    jakso = oj.jakso
    last = jakso.loppu if jakso.loppu is not None else until
    paused = oj.opiskeluoikeus.periods_in(VALIAIKAISESTI_KESKEYTYNYT) if oj.opiskeluoikeus else ()
    return tuple(
        day
        for day in _days(jakso.alku, last)
        if not jakso.is_interrupted_on(day) and not any(_in_period(day, p) for p in paused)
    )


def day_shares(jaksot: Sequence[OppijanJakso]) -> dict[JaksoId, Fraction]:
    """K1: each day an oppija is at work is split equally between their active jaksot
    (three active → 1/3 each). Only jaksot with a `loppu` get a share; an open jakso
    still takes its part of the days it overlaps."""
    ended = [oj.jakso.loppu for oj in jaksot if oj.jakso.loppu is not None]
    if not ended:
        return {}
    until = max(ended)
    active = {oj.jakso.id: active_days(oj, until) for oj in jaksot}
    active_count = Counter(day for days in active.values() for day in days)
    return {
        oj.jakso.id: sum(
            (Fraction(1, active_count[day]) for day in active[oj.jakso.id]), Fraction(0)
        )
        for oj in jaksot
        if oj.jakso.loppu is not None
    }


Interval = tuple[date, date]
"""An inclusive range of days (first, last)."""


def active_intervals(oj: OppijanJakso, until: date) -> tuple[Interval, ...]:
    """K1 as disjoint day ranges: the days of `active_days`, without listing each day.

    The jakso's range minus its keskeytymisajanjaksot and its study right's
    valiaikaisestikeskeytynyt periods; sorted, non-empty, not touching each other's days.
    """
    jakso = oj.jakso
    last = jakso.loppu if jakso.loppu is not None else until
    if last < jakso.alku:
        return ()
    paused = oj.opiskeluoikeus.periods_in(VALIAIKAISESTI_KESKEYTYNYT) if oj.opiskeluoikeus else ()
    excluded = sorted(
        [(k.alku, k.loppu or date.max) for k in jakso.keskeytymisajanjaksot]
        + [(alku, loppu or date.max) for alku, loppu in paused]
    )
    result: list[Interval] = []
    start = jakso.alku
    for ex_alku, ex_loppu in excluded:
        if ex_loppu < start or ex_loppu < ex_alku:
            continue
        if ex_alku > last:
            break
        if ex_alku > start:
            result.append((start, ex_alku - timedelta(days=1)))
        if ex_loppu >= last:
            return tuple(result)
        start = max(start, ex_loppu + timedelta(days=1))
    result.append((start, last))
    return tuple(result)


def interval_day_shares(jaksot: Sequence[OppijanJakso]) -> dict[JaksoId, Fraction]:
    """K1, the same result as `day_shares` in time that grows with the number of jaksot
    and interruptions, not of days: a sweep over the ranges' boundaries keeps the set of
    active jaksot, constant between two boundaries, so each active one gets (days in
    the segment) / (active). Days are counted per number of active jaksot as integers;
    fractions are made once per jakso at the end.

    A niputus run computes kesto for every student of its bundles (`day_shares`, one
    Fraction per day, is the reference the tests compare this with)."""
    ended = [oj.jakso.loppu for oj in jaksot if oj.jakso.loppu is not None]
    if not ended:
        return {}
    until = max(ended)
    ranges = [active_intervals(oj, until) for oj in jaksot]
    if len(jaksot) == 1:
        (rs,) = ranges
        return {jaksot[0].jakso.id: Fraction(sum((last - first).days + 1 for first, last in rs))}
    # (day, +1 starts / -1 ends the day before, index); ends sort before starts.
    events = sorted(
        (day, delta, index)
        for index, rs in enumerate(ranges)
        for first, last in rs
        for day, delta in ((first.toordinal(), 1), (last.toordinal() + 1, -1))
    )
    days_by_count: list[Counter[int]] = [Counter() for _ in jaksot]
    active: set[int] = set()
    previous = None
    for day, delta, index in events:
        if previous is not None and day > previous and active:
            length, count = day - previous, len(active)
            for i in active:
                days_by_count[i][count] += length
        previous = day
        if delta > 0:
            active.add(index)
        else:
            active.discard(index)
    return {
        oj.jakso.id: sum(
            (Fraction(days, count) for count, days in days_by_count[i].items()), Fraction(0)
        )
        for i, oj in enumerate(jaksot)
        if oj.jakso.loppu is not None
    }


def round_half_up(value: Fraction) -> int:
    """K2: 0.5 rounds up (Python's round() would round half to even)."""
    return math.floor(value + Fraction(1, 2))


def kesto(jaksot: Sequence[OppijanJakso]) -> dict[JaksoId, int]:
    """K2: kesto = round(sum of day shares × osa-aikaisuus / 100), half up; 0 when the
    osa-aikaisuus is not an integer 1–100 or the study right is unknown.

    `jaksot` are all jaksot of one oppija, over all their HOKSes (K1).
    """
    shares = interval_day_shares(jaksot)
    result: dict[JaksoId, int] = {}
    for oj in jaksot:
        jakso_id = oj.jakso.id
        if jakso_id not in shares:
            continue
        osa_aikaisuus = oj.jakso.osa_aikaisuus
        if oj.opiskeluoikeus is None or not is_valid_osa_aikaisuus(osa_aikaisuus):
            result[jakso_id] = 0
        else:
            result[jakso_id] = round_half_up(shares[jakso_id] * osa_aikaisuus / 100)
    return result
