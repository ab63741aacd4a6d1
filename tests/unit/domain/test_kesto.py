"""K1–K3 kesto (services.bundler.domain.kesto)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.bundler.domain.jakso import (
    Jakso,
    Keskeytymisajanjakso,
    Opiskeluoikeus,
)
from services.bundler.domain.kesto import (
    OppijanJakso,
    active_days,
    active_intervals,
    day_shares,
    interval_day_shares,
    kesto,
    round_half_up,
)
from tests.unit.domain.builders import d, jakso, opiskeluoikeus

KNOWN = opiskeluoikeus()


def oj(
    tunniste: str, alku: str, loppu: str | None, oo: Opiskeluoikeus | None = KNOWN, **kw: Any
) -> OppijanJakso:
    return OppijanJakso(jakso(alku, loppu, tunniste=tunniste, **kw), oo)


def kestot(*jaksot: OppijanJakso) -> dict[str, int]:
    return {jakso_id.tunniste: value for jakso_id, value in kesto(jaksot).items()}


PAUSED = opiskeluoikeus(
    opiskeluoikeusjaksot=(
        ("2020-08-01", "lasna", "1"),
        ("2024-01-04", "valiaikaisestikeskeytynyt", "1"),
        ("2024-01-08", "lasna", "1"),
    )
)

CASES: dict[str, tuple[list[OppijanJakso], dict[str, int]]] = {
    "K3-4-days-at-40": ([oj("a", "2024-01-01", "2024-01-04", osa_aikaisuus=40)], {"a": 2}),
    "K3-107-days-9-interrupted-at-80": (
        [
            oj(
                "a",
                "2024-01-01",
                "2024-04-16",
                osa_aikaisuus=80,
                keskeytykset=(("2024-02-01", "2024-02-09"),),
            )
        ],
        {"a": 78},
    ),
    "K3-10-days-1-interrupted-at-100": (
        [oj("a", "2024-01-01", "2024-01-10", keskeytykset=(("2024-01-05", "2024-01-05"),))],
        {"a": 9},
    ),
    "K1-three-active-share-a-third": (
        [oj(t, "2024-01-01", "2024-01-03") for t in "abc"],
        {"a": 1, "b": 1, "c": 1},
    ),
    "K1-partial-overlap-rounds-half-up": (
        [oj("a", "2024-01-01", "2024-01-10"), oj("b", "2024-01-06", "2024-01-15")],
        {"a": 8, "b": 8},
    ),
    "K1-across-hokses": (
        [
            oj("a", "2024-01-01", "2024-01-10", hoks_id=1),
            oj("b", "2024-01-01", "2024-01-10", hoks_id=2),
        ],
        {"a": 5, "b": 5},
    ),
    "K1-interrupted-jakso-leaves-the-day-to-others": (
        [
            oj("a", "2024-01-01", "2024-01-10", keskeytykset=(("2024-01-06", None),)),
            oj("b", "2024-01-06", "2024-01-10"),
        ],
        {"a": 5, "b": 5},
    ),
    "K1-valiaikaisesti-keskeytynyt-study-right": (
        [oj("a", "2024-01-01", "2024-01-10", oo=PAUSED)],
        {"a": 6},
    ),
    "K1-open-jakso-takes-its-share": (
        [oj("a", "2024-01-01", "2024-01-10"), oj("b", "2024-01-01", None)],
        {"a": 5},
    ),
    "K1-no-completed-jakso": ([oj("a", "2024-01-01", None)], {}),
    "K2-osa-aikaisuus-missing": (
        [oj("a", "2024-01-01", "2024-01-10", osa_aikaisuus=None)],
        {"a": 0},
    ),
    "K2-osa-aikaisuus-invalid": (
        [oj("a", "2024-01-01", "2024-01-10", osa_aikaisuus=120)],
        {"a": 0},
    ),
    "K2-unknown-study-right-still-shares-days": (
        [oj("a", "2024-01-01", "2024-01-10", oo=None), oj("b", "2024-01-01", "2024-01-10")],
        {"a": 0, "b": 5},
    ),
    "K2-end-before-start": ([oj("a", "2024-01-10", "2024-01-01")], {"a": 0}),
}


@pytest.mark.parametrize(("jaksot", "expected"), CASES.values(), ids=CASES.keys())
def test_kesto(jaksot: list[OppijanJakso], expected: dict[str, int]) -> None:
    assert kestot(*jaksot) == expected


def test_day_shares_are_exact_fractions() -> None:
    shares = day_shares([oj("a", "2024-01-01", "2024-01-01"), oj("b", "2024-01-01", "2024-01-02")])
    assert {k.tunniste: v for k, v in shares.items()} == {"a": Fraction(1, 2), "b": Fraction(3, 2)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Fraction(1, 2), 1), (Fraction(5, 2), 3), (Fraction(149, 100), 1), (Fraction(16, 10), 2)],
    ids=["K2-half", "K2-two-and-a-half", "K2-below-half", "K2-1.6"],
)
def test_round_half_up(value: Fraction, expected: int) -> None:
    assert round_half_up(value) == expected


START = date(2024, 1, 1)


@st.composite
def oppijan_jaksot(draw: st.DrawFn) -> list[OppijanJakso]:
    result = []
    for index in range(draw(st.integers(1, 4))):
        alku = START + timedelta(days=draw(st.integers(0, 60)))
        loppu = alku + timedelta(days=draw(st.integers(0, 60)))
        breaks = tuple(
            Keskeytymisajanjakso(
                alku + timedelta(days=offset),
                draw(st.one_of(st.none(), st.just(alku + timedelta(days=offset + length)))),
            )
            for offset, length in draw(
                st.lists(st.tuples(st.integers(0, 60), st.integers(0, 10)), max_size=2)
            )
        )
        base: Jakso = jakso(tunniste=str(index))
        j = replace(
            base,
            alku=alku,
            loppu=draw(st.one_of(st.just(loppu), st.none())) if index else loppu,
            osa_aikaisuus=draw(st.one_of(st.none(), st.integers(-5, 120))),
            keskeytymisajanjaksot=breaks,
        )
        result.append(OppijanJakso(j, draw(st.sampled_from([KNOWN, PAUSED, None]))))
    return result


@given(jaksot=oppijan_jaksot())
def test_kesto_never_exceeds_the_calendar_length(jaksot: list[OppijanJakso]) -> None:
    """K1/K2 property: 0 ≤ kesto ≤ the jakso's calendar days; the shares of a day add
    up to at most one."""
    result = kesto(jaksot)
    for oj_ in jaksot:
        j = oj_.jakso
        if j.loppu is None:
            assert j.id not in result
            continue
        assert 0 <= result[j.id] <= (j.loppu - j.alku).days + 1
    ended = [oj_.jakso.loppu for oj_ in jaksot if oj_.jakso.loppu is not None]
    span = (max(ended) - min(oj_.jakso.alku for oj_ in jaksot)).days + 1
    assert sum(day_shares(jaksot).values()) <= max(span, 0)


@settings(max_examples=500)
@given(jaksot=oppijan_jaksot())
def test_interval_shares_equal_the_day_by_day_reference(jaksot: list[OppijanJakso]) -> None:
    """K1: the range-based computation a niputus run uses gives exactly the shares of
    the day-by-day definition, for overlaps, open jaksot, interruptions and pauses."""
    assert interval_day_shares(jaksot) == day_shares(jaksot)


@given(jaksot=oppijan_jaksot())
def test_active_intervals_are_the_active_days(jaksot: list[OppijanJakso]) -> None:
    until = START + timedelta(days=200)
    for oj_ in jaksot:
        ranges = active_intervals(oj_, until)
        days = [
            first + timedelta(days=i)
            for first, last in ranges
            for i in range((last - first).days + 1)
        ]
        assert tuple(days) == active_days(oj_, until)
        assert all(
            earlier[1] + timedelta(days=1) < later[0]
            for earlier, later in itertools.pairwise(ranges)
        )


@pytest.mark.parametrize(
    ("keskeytykset", "expected"),
    [
        ((), ((d("2024-01-01"), d("2024-01-10")),)),
        (
            (("2024-01-03", "2024-01-04"),),
            ((d("2024-01-01"), d("2024-01-02")), (d("2024-01-05"), d("2024-01-10"))),
        ),
        ((("2023-12-01", None),), ()),
        ((("2024-01-10", None),), ((d("2024-01-01"), d("2024-01-09")),)),
        (
            (("2024-01-01", "2024-01-01"), ("2024-01-02", "2024-01-05")),
            ((d("2024-01-06"), d("2024-01-10")),),
        ),
        ((("2024-01-05", "2024-01-02"),), ((d("2024-01-01"), d("2024-01-10")),)),
    ],
)
def test_active_intervals_table(
    keskeytykset: tuple[tuple[str, str | None], ...], expected: tuple[tuple[date, date], ...]
) -> None:
    """K1: interruptions cut the jakso's range; an inverted one covers no day."""
    j = jakso("2024-01-01", "2024-01-10", keskeytykset=keskeytykset)
    assert active_intervals(OppijanJakso(j, KNOWN), d("2024-01-10")) == expected


@settings(max_examples=500)
@given(jaksot=oppijan_jaksot())
def test_kesto_in_integers_equals_rounding_the_exact_shares(jaksot: list[OppijanJakso]) -> None:
    """K2: the integer computation equals round_half_up(share × osa / 100) of the
    day-by-day shares (0 for an invalid osa-aikaisuus or an unknown study right)."""
    shares = day_shares(jaksot)
    expected = {
        oj_.jakso.id: (
            round_half_up(shares[oj_.jakso.id] * oj_.jakso.osa_aikaisuus / 100)
            if oj_.opiskeluoikeus is not None
            and type(oj_.jakso.osa_aikaisuus) is int
            and 1 <= oj_.jakso.osa_aikaisuus <= 100
            else 0
        )
        for oj_ in jaksot
        if oj_.jakso.id in shares
    }
    assert kesto(jaksot) == expected
