"""J4: jaksot recorded separately for one interruption are one jatkumo, surveyed once
(services.bundler.domain.jatkumo).

Each case is one HOKS's jaksot, the stored states and the day; the expected result is
the table `evaluate_hoks` prints: (jakso, rule, tila, syy, niputuspvm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.bundler.domain.eligibility import JaksoState, Syy, Tila, evaluate
from services.bundler.domain.jakso import Jakso, JaksoId, TutkinnonOsa
from services.bundler.domain.jatkumo import (
    Jatkumo,
    evaluate_hoks,
    jatkumo_key,
    jatkumot,
    tutkinnon_osa_key,
)
from services.bundler.domain.niputus import candidate, niputa
from tests.unit.domain.builders import d, hoks, jakso, opiskeluoikeus

Row = tuple[str, str, str, str, str | None]

#: The seed's example: 1.1.–31.1. and 1.3.–31.5., same osa, workplace and instructor.
A: dict[str, Any] = {"tunniste": "a", "alku": "2024-01-01", "loppu": "2024-01-31"}
B: dict[str, Any] = {"tunniste": "b", "alku": "2024-03-01", "loppu": "2024-05-31"}
NIPPU_OF_B = "2024-06-01"


@dataclass(frozen=True)
class Case:
    jaksot: list[dict[str, Any]]
    today: str
    expected: list[Row]
    states: dict[str, JaksoState] = field(default_factory=dict)
    hoks: dict[str, Any] = field(default_factory=dict)
    oo: bool = True


def waits(tunniste: str, pvm: str = NIPPU_OF_B) -> Row:
    return (tunniste, "J4", "odottaa", "jatkuu_myohemmin", pvm)


def joins(tunniste: str, pvm: str = NIPPU_OF_B) -> Row:
    return (tunniste, "J4", "odottaa", "odottaa_niputusta", pvm)


def e15(tunniste: str, pvm: str) -> Row:
    return (tunniste, "E15", "odottaa", "odottaa_niputusta", pvm)


def kesken(tunniste: str) -> Row:
    return (tunniste, "E1", "odottaa", "jakso_kesken", None)


def closed(tunniste: str, pvm: str) -> Row:
    return (tunniste, "E13", "ei_laheteta", "vastausaika_umpeutunut", pvm)


NIPUTETTU = JaksoState(Tila.NIPUTETTU)

CASES: dict[str, Case] = {
    "J4-earlier-waits-while-latest-unfinished": Case(
        [A, B], "2024-02-01", [waits("a"), kesken("b")]
    ),
    "J4-earlier-waits-past-its-own-window": Case([A, B], "2024-05-01", [waits("a"), kesken("b")]),
    "J4-latest-eligible-earlier-joins-its-niputuspvm": Case(
        [A, B], "2024-06-01", [joins("a"), e15("b", NIPPU_OF_B)]
    ),
    "J4-three-jaksot-one-jatkumo": Case(
        [
            A,
            {**B, "tunniste": "b", "alku": "2024-02-15", "loppu": "2024-03-15"},
            {**B, "tunniste": "c", "alku": "2024-04-01"},
        ],
        "2024-03-20",
        [waits("a"), waits("b"), kesken("c")],
    ),
    "J4-instructor-spelling-normalised": Case(
        [A, {**B, "ohjaaja": "OLLI  ohjaaja"}], "2024-02-01", [waits("a"), kesken("b")]
    ),
    "J4-koodi-uri-version-ignored": Case(
        [A, {**B, "tutkinnon_osa": "tutkinnonosat_106945#2"}],
        "2024-02-01",
        [waits("a"), kesken("b")],
    ),
    "J4-yhteinen-same-osa-alue": Case(
        [
            {**A, "osa_alue": "ammatillisenoppiaineet_ku"},
            {**B, "osa_alue": "ammatillisenoppiaineet_ku#1"},
        ],
        "2024-02-01",
        [waits("a"), kesken("b")],
    ),
    "J3-other-workplace-own-survey": Case(
        [A, {**B, "y_tunnus": "7654321-0"}], "2024-02-01", [e15("a", "2024-02-01"), kesken("b")]
    ),
    "J4-other-instructor": Case(
        [A, {**B, "ohjaaja": "Maija Ohjaaja"}], "2024-02-01", [e15("a", "2024-02-01"), kesken("b")]
    ),
    "J4-other-tutkinnon-osa": Case(
        [A, {**B, "tutkinnon_osa": "tutkinnonosat_100001"}],
        "2024-02-01",
        [e15("a", "2024-02-01"), kesken("b")],
    ),
    "J4-yhteinen-other-osa-alue": Case(
        [
            {**A, "osa_alue": "ammatillisenoppiaineet_ku"},
            {**B, "osa_alue": "ammatillisenoppiaineet_ma"},
        ],
        "2024-02-01",
        [e15("a", "2024-02-01"), kesken("b")],
    ),
    "J4-T1-other-tiedonkeruukausi": Case(
        [
            {**A, "alku": "2024-05-01", "loppu": "2024-06-20"},
            {**B, "alku": "2024-08-01", "loppu": "2024-09-30"},
        ],
        "2024-07-01",
        [e15("a", "2024-07-01"), kesken("b")],
    ),
    "J4-overlapping-is-not-earlier": Case(
        [{**A, "loppu": "2024-03-10"}, B], "2024-03-16", [e15("a", "2024-03-16"), kesken("b")]
    ),
    "J4-later-without-loppu-holds-nothing": Case(
        [A, {**B, "loppu": None}], "2024-02-01", [e15("a", "2024-02-01"), kesken("b")]
    ),
    "J4-later-removed-earlier-judged-alone": Case(
        [A, {**B, "poistettu": True}], "2024-02-10", [e15("a", "2024-02-01"), kesken("b")]
    ),
    "J4-later-ei-laheteta-earlier-late-jakso-D3": Case(
        [
            A,
            {
                **B,
                "alku": "2024-02-05",
                "loppu": "2024-02-20",
                "keskeytykset": (("2024-02-19", None),),
            },
        ],
        "2024-02-25",
        [e15("a", "2024-02-01"), ("b", "E9", "ei_laheteta", "keskeytynyt", "2024-03-01")],
    ),
    "J4-later-ei-laheteta-earlier-window-closed-W3": Case(
        [A, {**B, "keskeytykset": (("2024-05-30", None),)}],
        "2024-06-01",
        [closed("a", "2024-02-01"), ("b", "E9", "ei_laheteta", "keskeytynyt", NIPPU_OF_B)],
    ),
    "E18-earlier-already-bundled-later-alone": Case(
        [A, B],
        "2024-06-01",
        [closed("a", "2024-02-01"), e15("b", NIPPU_OF_B)],
        states={"a": NIPUTETTU},
    ),
    "E18-latest-already-bundled-earlier-alone": Case(
        [A, B], "2024-02-10", [e15("a", "2024-02-01"), kesken("b")], states={"b": NIPUTETTU}
    ),
    "E3-jatkumo-waits-for-the-study-right": Case(
        [A, B],
        "2024-06-01",
        [
            ("a", "E3", "odottaa", "opiskeluoikeus_puuttuu", "2024-02-01"),
            ("b", "E3", "odottaa", "opiskeluoikeus_puuttuu", NIPPU_OF_B),
        ],
        oo=False,
    ),
    "E14-deleted-hoks-has-no-jatkumo": Case(
        [A, B],
        "2024-02-01",
        [("a", "E14", "ei_laheteta", "hoks_poistettu", "2024-02-01"), kesken("b")],
        hoks={"poistettu": True},
    ),
}


def table(case: Case) -> list[Row]:
    jaksot = [jakso(**fields) for fields in case.jaksot]
    states = {JaksoId(1, t): s for t, s in case.states.items()}
    study_right = opiskeluoikeus() if case.oo else None
    result = evaluate_hoks(hoks(**case.hoks), jaksot, study_right, d(case.today), states)
    return sorted(
        (
            jakso_id.tunniste,
            e.rule,
            e.tila.value,
            e.syy.value,
            e.niputuspvm.isoformat() if e.niputuspvm else None,
        )
        for jakso_id, e in result.items()
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES)
def test_jatkumo_table(case: Case) -> None:
    assert table(case) == case.expected


def survey(jaksot: list[Jakso], run: date) -> list[tuple[date, tuple[str, ...]]]:
    """The bundles a TEP run on `run` forms from one HOKS's eligible jaksot."""
    result = evaluate_hoks(hoks(), jaksot, opiskeluoikeus(), run)
    by_id = {j.id: j for j in jaksot}
    candidates = [
        candidate(by_id[i], opiskeluoikeus(), e.niputuspvm)
        for i, e in result.items()
        if e.syy.value == "odottaa_niputusta" and e.niputuspvm is not None
    ]
    return [
        (n.key.niputuspvm, tuple(j.tunniste for j in n.jaksot))
        for n in niputa(candidates, run).niput
    ]


def test_j4_seed_is_one_survey_on_31_5_recorded_either_way() -> None:
    """J4 seed: two jaksot 1.1–31.1 and 1.3–31.5, or one jakso 1.1–31.5 with a
    keskeytymisajanjakso 1.2–28.2: one bundle with niputuspvm 1.6 either way; nothing is
    sent on 1.2."""
    separately = [jakso(**A), jakso(**B)]
    as_one = [
        jakso(
            tunniste="ab",
            alku="2024-01-01",
            loppu="2024-05-31",
            keskeytykset=(("2024-02-01", "2024-02-29"),),
        )
    ]
    assert survey(separately, d("2024-02-01")) == survey(as_one, d("2024-02-01")) == []
    assert survey(separately, d(NIPPU_OF_B)) == [(d(NIPPU_OF_B), ("a", "b"))]
    assert survey(as_one, d(NIPPU_OF_B)) == [(d(NIPPU_OF_B), ("ab",))]


def test_j4_other_workplace_gives_each_instructor_a_survey() -> None:
    """J4 seed: "jos työpaikka on eri, molemmille työpaikkaohjaajille lähtee oma kysely"."""
    jaksot = [jakso(**A), jakso(**{**B, "y_tunnus": "7654321-0"})]
    assert survey(jaksot, d("2024-02-01")) == [(d("2024-02-01"), ("a",))]
    assert survey(jaksot, d(NIPPU_OF_B)) == [(d(NIPPU_OF_B), ("b",))]


def test_jatkumot_lists_latest_and_earlier() -> None:
    jaksot = [jakso(**A), jakso(**B)]
    own = evaluate_hoks(hoks(), jaksot, opiskeluoikeus(), d("2024-02-01"))
    key = jatkumo_key(jaksot[1])
    assert key is not None and key == jatkumo_key(jaksot[0])
    assert jatkumot(jaksot, own, {}) == (Jatkumo(key, JaksoId(1, "b"), (JaksoId(1, "a"),)),)


@pytest.mark.parametrize(
    ("osa", "expected"),
    [
        (
            TutkinnonOsa("ammatillinen", "tutkinnonosat_1#3"),
            ("ammatillinen", "tutkinnonosat_1", ""),
        ),
        (TutkinnonOsa("paikallinen", nimi="Lasten Leikit"), ("paikallinen", "lasten_leikit", "")),
        (TutkinnonOsa("paikallinen", nimi=" ?? "), None),
        (TutkinnonOsa("paikallinen"), None),
        (TutkinnonOsa("yhteinen", "tutkinnonosat_2"), None),
        (TutkinnonOsa("ammatillinen"), None),
    ],
    ids=[
        "J4-koodi-uri-without-version",
        "J4-paikallinen-by-name",
        "J4-paikallinen-blank-name",
        "J4-paikallinen-unnamed",
        "J4-yhteinen-without-osa-alue",
        "J4-no-koodi-uri",
    ],
)
def test_tutkinnon_osa_key(osa: TutkinnonOsa, expected: tuple[str, str, str] | None) -> None:
    assert tutkinnon_osa_key(osa) == expected


@pytest.mark.parametrize(
    "fields",
    [{"ohjaaja": None}, {"y_tunnus": " "}, {"tutkinnon_osa": None}],
    ids=["E12-no-instructor", "E12-no-y-tunnus", "J3-unknown-osa"],
)
def test_unkeyed_jaksot_are_judged_alone(fields: dict[str, Any]) -> None:
    assert jatkumo_key(jakso(**{**B, **fields})) is None


# --- properties -------------------------------------------------------------------------

DAY0 = date(2024, 1, 1)


@st.composite
def hoks_jaksot(draw: st.DrawFn) -> list[Jakso]:
    count = draw(st.integers(1, 6))
    jaksot = []
    for index in range(count):
        alku = DAY0 + timedelta(days=draw(st.integers(0, 300)))
        length = draw(st.integers(0, 90))
        jaksot.append(
            jakso(
                alku.isoformat(),
                draw(st.sampled_from([None, (alku + timedelta(days=length)).isoformat()])),
                tunniste=f"j{index}",
                y_tunnus=draw(st.sampled_from(["1234567-8", "7654321-0"])),
                ohjaaja=draw(st.sampled_from(["Olli Ohjaaja", "olli ohjaaja", "Maija"])),
                tutkinnon_osa=draw(st.sampled_from(["tutkinnonosat_1", "tutkinnonosat_2"])),
                poistettu=draw(st.booleans()),
            )
        )
    return jaksot


@settings(max_examples=200, deadline=None)
@given(jaksot=hoks_jaksot(), day=st.integers(0, 420), data=st.data())
def test_evaluation_is_independent_of_jakso_order(
    jaksot: list[Jakso], day: int, data: st.DataObject
) -> None:
    today = DAY0 + timedelta(days=day)
    shuffled = data.draw(st.permutations(jaksot))
    assert evaluate_hoks(hoks(), shuffled, opiskeluoikeus(), today) == evaluate_hoks(
        hoks(), jaksot, opiskeluoikeus(), today
    )


@settings(max_examples=200, deadline=None)
@given(jaksot=hoks_jaksot(), day=st.integers(0, 420))
def test_each_jatkumo_is_at_most_one_bundle(jaksot: list[Jakso], day: int) -> None:
    """J4, N1: while the latest jakso is undecided its earlier ones wait; once it is
    eligible, it and every earlier jakso that joined it are in one bundle of the run on
    its niputuspvm, whatever else the HOKS holds."""
    today = DAY0 + timedelta(days=day)
    study_right = opiskeluoikeus()
    own = {j.id: evaluate(j, hoks(), study_right, today) for j in jaksot}
    result = evaluate_hoks(hoks(), jaksot, study_right, today)
    by_id = {j.id: j for j in jaksot}
    for jatkumo in jatkumot(jaksot, own, {}):
        latest = result[jatkumo.latest]
        joined = {i for i in jatkumo.earlier if result[i].rule == "J4"}
        if latest.rule != "E15":
            assert all(result[i].syy is Syy.JATKUU_MYOHEMMIN for i in joined)
            continue
        assert latest.niputuspvm is not None
        due = [
            candidate(by_id[i], study_right, e.niputuspvm)
            for i, e in result.items()
            if e.syy is Syy.ODOTTAA_NIPUTUSTA and e.niputuspvm == latest.niputuspvm
        ]
        members = {jatkumo.latest, *joined}
        holding = [n for n in niputa(due, latest.niputuspvm).niput if members & set(n.jaksot)]
        assert len(holding) == 1
        assert members <= set(holding[0].jaksot)
