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


def days_by_active_count(jaksot: Sequence[OppijanJakso]) -> list[Counter[int]]:
    """K1 as integers: for each jakso (by position), how many of its active days it
    shared with how many active jaksot in all ({1: 20, 2: 10}: 20 days alone, 10 days
    with one other), so its share is the sum of days / count.

    A sweep over the active ranges' boundaries (`active_intervals`) keeps the set of
    active jaksot, constant between two boundaries: time grows with the number of
    jaksot and interruptions, not of days. Jaksot without a `loppu` take part (they
    take their part of the days) but get no days themselves."""
    ended = [oj.jakso.loppu for oj in jaksot if oj.jakso.loppu is not None]
    if not ended:
        return [Counter() for _ in jaksot]
    until = max(ended)
    ranges = [active_intervals(oj, until) for oj in jaksot]
    result: list[Counter[int]] = [Counter() for _ in jaksot]
    if len(jaksot) == 1:
        result[0][1] = sum((last - first).days + 1 for first, last in ranges[0])
    else:
        # (day, +1 starts / -1 ends the day before, index)
        events = sorted(
            (day, delta, index)
            for index, rs in enumerate(ranges)
            for first, last in rs
            for day, delta in ((first.toordinal(), 1), (last.toordinal() + 1, -1))
        )
        active: set[int] = set()
        previous = None
        for day, delta, index in events:
            if previous is not None and day > previous and active:
                length, count = day - previous, len(active)
                for i in active:
                    result[i][count] += length
            previous = day
            if delta > 0:
                active.add(index)
            else:
                active.discard(index)
    for i, oj in enumerate(jaksot):
        if oj.jakso.loppu is None:
            result[i].clear()
    return result


def interval_day_shares(jaksot: Sequence[OppijanJakso]) -> dict[JaksoId, Fraction]:
    """K1 from `days_by_active_count`: the same result as `day_shares` (the day-by-day
    reference the tests compare it with), for jaksot with a `loppu`."""
    if not any(oj.jakso.loppu is not None for oj in jaksot):
        return {}
    return {
        oj.jakso.id: sum((Fraction(days, count) for count, days in counts.items()), Fraction(0))
        for oj, counts in zip(jaksot, days_by_active_count(jaksot), strict=True)
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
    result: dict[JaksoId, int] = {}
    for oj, counts in zip(jaksot, days_by_active_count(jaksot), strict=True):
        if oj.jakso.loppu is None:
            continue
        osa_aikaisuus = oj.jakso.osa_aikaisuus
        if oj.opiskeluoikeus is None or not is_valid_osa_aikaisuus(osa_aikaisuus):
            result[oj.jakso.id] = 0
        else:
            result[oj.jakso.id] = _round_share(counts, osa_aikaisuus)
    return result


def _round_share(counts: Counter[int], osa_aikaisuus: int) -> int:
    """K2 in integers: round_half_up(Σ days/count × osa/100) with the shares over their
    least common denominator L: floor((2 × Σ days·L/count × osa + 100·L) / (200·L))."""
    lcm = math.lcm(*counts) if counts else 1
    numerator = sum(days * (lcm // count) for count, days in counts.items())
    return (2 * numerator * osa_aikaisuus + 100 * lcm) // (200 * lcm)
