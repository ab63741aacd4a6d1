"""E1–E18 and W4 (services.bundler.domain.eligibility), in the table's order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.bundler.domain.eligibility import (
    Eligibility,
    JaksoState,
    LoppuMuutos,
    Syy,
    Tila,
    classify_loppu_change,
    evaluate,
    is_bundled_or_later,
    is_valid_osa_aikaisuus,
    reevaluate,
)
from shared.domain.dates import POLICIES_WITH_2025_AMENDMENT, answer_window
from shared.domain.koodisto import Hankkimistapa
from tests.unit.domain.builders import d, hoks, jakso, opiskeluoikeus

OPPISOPIMUS = Hankkimistapa.OPPISOPIMUS


@dataclass(frozen=True)
class Case:
    expected: str  # rule id that must decide
    syy: Syy
    jakso: dict[str, Any] = field(default_factory=dict)
    hoks: dict[str, Any] = field(default_factory=dict)
    oo: dict[str, Any] | None = field(default_factory=dict)
    today: str = "2024-03-20"


def lasna_then(*tilat: tuple[str, str]) -> tuple[tuple[str, str, str | None], ...]:
    return (("2020-08-01", "lasna", "1"), *((a, tila, "1") for a, tila in tilat))


CASES: dict[str, Case] = {
    "E1-no-loppu": Case("E1", Syy.JAKSO_KESKEN, jakso={"loppu": None}),
    "E1-loppu-after-today": Case("E1", Syy.JAKSO_KESKEN, jakso={"loppu": "2024-03-21"}),
    "E1-loppu-today-is-completed": Case(
        "E15", Syy.ODOTTAA_NIPUTUSTA, jakso={"loppu": "2024-03-20"}
    ),
    "E1-before-E14-table-order": Case(
        "E1", Syy.JAKSO_KESKEN, jakso={"loppu": None}, hoks={"poistettu": True}
    ),
    "E2-before-start": Case(
        "E2", Syy.ENNEN_KAYTTOONOTTOA, jakso={"alku": "2021-05-01", "loppu": "2021-06-30"}
    ),
    "E2-start-day": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        jakso={"alku": "2021-05-01", "loppu": "2021-07-01"},
        today="2021-07-10",
    ),
    "E3-no-study-right": Case("E3", Syy.OPISKELUOIKEUS_PUUTTUU, oo=None),
    "E3-before-E4": Case("E3", Syy.OPISKELUOIKEUS_PUUTTUU, oo=None, hoks={"is_tuva": True}),
    "E4-tuva-hoks": Case("E4", Syy.EI_TUTKINTOKOULUTUS, hoks={"is_tuva": True}),
    "E4-tuva-study-right": Case("E4", Syy.EI_TUTKINTOKOULUTUS, oo={"tyyppi": "tuva"}),
    "E4-telma-suoritus": Case("E4", Syy.EI_TUTKINTOKOULUTUS, oo={"suoritustyyppi": "telma"}),
    "E5-no-vocational-degree": Case(
        "E5", Syy.EI_AMMATILLINEN_TUTKINTO, oo={"suoritustyyppi": "muukuinsaanneltykoulutus"}
    ),
    "E5-osittainen-is-vocational": Case(
        "E15", Syy.ODOTTAA_NIPUTUSTA, oo={"suoritustyyppi": "ammatillinentutkintoosittainen"}
    ),
    "E5-useasta-tutkinnosta-is-vocational": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        oo={"suoritustyyppi": "ammatillinentutkintoosittainenuseastatutkinnosta"},
    ),
    "E6-contained-in-another": Case(
        "E6",
        Syy.SISALTYY_TOISEEN_OPISKELUOIKEUTEEN,
        oo={"sisaltyy_opiskeluoikeuteen": "1.2.246.562.15.10000000001"},
    ),
    "E7-eronnut-before-loppu": Case(
        "E7",
        Syy.OPISKELUOIKEUS_PAATTYNYT,
        oo={"opiskeluoikeusjaksot": lasna_then(("2024-03-01", "eronnut"))},
    ),
    "E7-mitatoity": Case(
        "E7",
        Syy.OPISKELUOIKEUS_PAATTYNYT,
        oo={"opiskeluoikeusjaksot": lasna_then(("2024-03-14", "mitatoity"))},
    ),
    "E7-peruutettu": Case(
        "E7",
        Syy.OPISKELUOIKEUS_PAATTYNYT,
        oo={"opiskeluoikeusjaksot": lasna_then(("2024-01-01", "peruutettu"))},
    ),
    "E7-valiaikaisesti-keskeytynyt-on-loppu": Case(
        "E7",
        Syy.OPISKELUOIKEUS_PAATTYNYT,
        oo={"opiskeluoikeusjaksot": lasna_then(("2024-03-01", "valiaikaisestikeskeytynyt"))},
    ),
    "E7-state-beginning-on-loppu-does-not-count": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        oo={"opiskeluoikeusjaksot": lasna_then(("2024-03-15", "eronnut"))},
    ),
    "E7-state-after-loppu-does-not-count": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        oo={"opiskeluoikeusjaksot": lasna_then(("2024-03-18", "eronnut"))},
    ),
    "E7-back-to-lasna-before-loppu": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        oo={
            "opiskeluoikeusjaksot": lasna_then(
                ("2024-02-01", "valiaikaisestikeskeytynyt"), ("2024-03-01", "lasna")
            )
        },
    ),
    "E7-keskeytynyt-then-eronnut-on-loppu": Case(
        "E7",
        Syy.OPISKELUOIKEUS_PAATTYNYT,
        oo={
            "opiskeluoikeusjaksot": lasna_then(
                ("2024-03-01", "valiaikaisestikeskeytynyt"), ("2024-03-15", "eronnut")
            )
        },
    ),
    "E17-katsotaaneronneeksi-on-loppu": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        jakso={"alku": "2025-01-07", "loppu": "2025-03-07"},
        oo={"opiskeluoikeusjaksot": lasna_then(("2025-03-07", "katsotaaneronneeksi"))},
        today="2025-03-10",
    ),
    "E17-katsotaaneronneeksi-day-before-loppu": Case(
        "E7",
        Syy.OPISKELUOIKEUS_PAATTYNYT,
        jakso={"alku": "2025-01-07", "loppu": "2025-03-07"},
        oo={"opiskeluoikeusjaksot": lasna_then(("2025-03-06", "katsotaaneronneeksi"))},
        today="2025-03-10",
    ),
    "E8-muu-rahoitus-14": Case(
        "E8", Syy.MUU_RAHOITUS, oo={"opiskeluoikeusjaksot": (("2020-08-01", "lasna", "14"),)}
    ),
    "E8-muu-rahoitus-6": Case(
        "E8", Syy.MUU_RAHOITUS, oo={"opiskeluoikeusjaksot": (("2020-08-01", "lasna", "6"),)}
    ),
    "E8-muu-rahoitus-15": Case(
        "E8", Syy.MUU_RAHOITUS, oo={"opiskeluoikeusjaksot": (("2020-08-01", "lasna", "15"),)}
    ),
    "E8-funding-changed-before-loppu": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        oo={"opiskeluoikeusjaksot": (("2020-08-01", "lasna", "14"), ("2024-03-01", "lasna", "1"))},
    ),
    "E8-funding-changed-after-loppu": Case(
        "E8",
        Syy.MUU_RAHOITUS,
        oo={"opiskeluoikeusjaksot": (("2020-08-01", "lasna", "14"), ("2024-03-16", "lasna", "1"))},
    ),
    "E9-open-interruption-covers-loppu": Case(
        "E9", Syy.KESKEYTYNYT, jakso={"keskeytykset": (("2024-03-01", None),)}
    ),
    "E9-interruption-ends-on-loppu": Case(
        "E9", Syy.KESKEYTYNYT, jakso={"keskeytykset": (("2024-03-01", "2024-03-15"),)}
    ),
    "E9-interruption-starts-on-loppu": Case(
        "E9", Syy.KESKEYTYNYT, jakso={"keskeytykset": (("2024-03-15", None),)}
    ),
    "E9-interruption-ended-before-loppu": Case(
        "E15", Syy.ODOTTAA_NIPUTUSTA, jakso={"keskeytykset": (("2024-02-01", "2024-02-10"),)}
    ),
    "E10-contract-terminated-before-loppu": Case(
        "E10",
        Syy.SOPIMUS_PURETTU,
        jakso={"hankkimistapa": OPPISOPIMUS},
        oo={"oppisopimuksen_purkamispaiva": "2024-03-14"},
    ),
    "E16-completed-on-termination-day": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        jakso={"hankkimistapa": OPPISOPIMUS},
        oo={"oppisopimuksen_purkamispaiva": "2024-03-15"},
    ),
    "E16-completed-before-termination": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        jakso={"hankkimistapa": OPPISOPIMUS},
        oo={"oppisopimuksen_purkamispaiva": "2024-03-19"},
    ),
    "E16-interruption-from-termination": Case(
        "E9",
        Syy.KESKEYTYNYT,
        jakso={"hankkimistapa": OPPISOPIMUS, "keskeytykset": (("2024-03-10", None),)},
        oo={"oppisopimuksen_purkamispaiva": "2024-03-10"},
    ),
    "E10-koulutussopimus-not-under-apprenticeship": Case(
        "E15", Syy.ODOTTAA_NIPUTUSTA, oo={"oppisopimuksen_purkamispaiva": "2024-03-14"}
    ),
    "E10-new-contract-after-termination": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        jakso={"hankkimistapa": OPPISOPIMUS, "alku": "2024-02-01"},
        oo={"oppisopimuksen_purkamispaiva": "2024-01-15"},
    ),
    "E11-osa-aikaisuus-missing": Case(
        "E11", Syy.OSA_AIKAISUUS_PUUTTUU, jakso={"osa_aikaisuus": None}
    ),
    "E11-osa-aikaisuus-zero": Case("E11", Syy.OSA_AIKAISUUS_PUUTTUU, jakso={"osa_aikaisuus": 0}),
    "E11-osa-aikaisuus-over-100": Case(
        "E11", Syy.OSA_AIKAISUUS_PUUTTUU, jakso={"osa_aikaisuus": 101}
    ),
    "E11-boundary-day-after": Case(
        "E11",
        Syy.OSA_AIKAISUUS_PUUTTUU,
        jakso={"alku": "2023-05-01", "loppu": "2023-07-01", "osa_aikaisuus": None},
        today="2023-07-05",
    ),
    "E11-not-required-until-2023-06-30": Case(
        "E15",
        Syy.ODOTTAA_NIPUTUSTA,
        jakso={"alku": "2023-05-01", "loppu": "2023-06-30", "osa_aikaisuus": None},
        today="2023-07-05",
    ),
    "E12-instructor-name-missing": Case("E12", Syy.TYOPAIKKATIETO_PUUTTUU, jakso={"ohjaaja": None}),
    "E12-workplace-name-blank": Case("E12", Syy.TYOPAIKKATIETO_PUUTTUU, jakso={"tyopaikka": " "}),
    "E12-y-tunnus-missing": Case("E12", Syy.TYOPAIKKATIETO_PUUTTUU, jakso={"y_tunnus": None}),
    "E13-window-closed": Case("E13", Syy.VASTAUSAIKA_UMPEUTUNUT, today="2024-05-15"),
    "E13-last-day-still-open": Case("E15", Syy.ODOTTAA_NIPUTUSTA, today="2024-05-14"),
    "E14-jakso-removed": Case("E14", Syy.JAKSO_POISTETTU, jakso={"poistettu": True}),
    "E14-hoks-deleted": Case("E14", Syy.HOKS_POISTETTU, hoks={"poistettu": True}),
    "E15-eligible": Case("E15", Syy.ODOTTAA_NIPUTUSTA),
}


def run(case: Case) -> Eligibility:
    study_right = None if case.oo is None else opiskeluoikeus(**case.oo)
    return evaluate(jakso(**case.jakso), hoks(**case.hoks), study_right, d(case.today))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_evaluate(case: Case) -> None:
    result = run(case)
    assert (result.rule, result.syy) == (case.expected, case.syy)
    expected_tila = Tila.ODOTTAA if case.expected in {"E1", "E3", "E15"} else Tila.EI_LAHETETA
    assert result.tila is expected_tila


def test_niputuspvm_is_given_once_herätepäivä_is_known() -> None:
    assert run(Case("E1", Syy.JAKSO_KESKEN, jakso={"loppu": None})).niputuspvm is None
    assert run(CASES["E2-before-start"]).niputuspvm is None
    assert run(CASES["E3-no-study-right"]).niputuspvm == d("2024-03-16")
    assert run(CASES["E15-eligible"]).niputuspvm == d("2024-03-16")


def test_evaluate_follows_the_configured_policy() -> None:
    """D2: under the amendment a jakso ending 2025-07-10 waits for 2025-08-01."""
    result = evaluate(
        jakso(alku="2025-06-01", loppu="2025-07-10"),
        hoks(),
        opiskeluoikeus(),
        d("2025-07-11"),
        POLICIES_WITH_2025_AMENDMENT,
    )
    assert (result.rule, result.niputuspvm) == ("E15", d("2025-08-01"))


@pytest.mark.parametrize(
    ("value", "valid"),
    [(1, True), (100, True), (0, False), (101, False), (None, False), (True, False), (50.0, False)],
    ids=["E11-1", "E11-100", "E11-0", "E11-101", "E11-none", "E11-bool", "E11-float"],
)
def test_valid_osa_aikaisuus(value: object, valid: bool) -> None:
    assert is_valid_osa_aikaisuus(value) is valid


# W4: end date changes. Old loppu, new loppu, today → classification, and what the
# re-evaluation with the new date gives.
@pytest.mark.parametrize(
    ("old", "new", "today", "muutos", "rule", "niputus"),
    [
        ("2024-03-25", "2024-04-10", "2024-03-20", LoppuMuutos.LATER, "E1", None),
        ("2024-04-10", "2024-03-25", "2024-03-20", LoppuMuutos.EARLIER_FUTURE, "E1", None),
        ("2024-04-10", "2024-03-01", "2024-03-20", LoppuMuutos.EARLIER_PAST, "E15", "2024-03-16"),
        ("2024-04-10", "2024-01-10", "2024-03-20", LoppuMuutos.EARLIER_PAST, "E13", "2024-01-16"),
        ("2024-04-10", "2024-03-20", "2024-03-20", LoppuMuutos.EARLIER_PAST, "E15", "2024-04-01"),
        (None, "2024-03-15", "2024-03-20", LoppuMuutos.SET, "E15", "2024-03-16"),
        ("2024-03-15", None, "2024-03-20", LoppuMuutos.REMOVED, "E1", None),
        ("2024-03-15", "2024-03-15", "2024-03-20", LoppuMuutos.UNCHANGED, "E15", "2024-03-16"),
    ],
    ids=[
        "W4-later-before-old-date",
        "W4-earlier-still-future",
        "W4-earlier-into-past-window-open",
        "W4-earlier-into-past-window-closed",
        "W4-earlier-to-today",
        "W4-loppu-set",
        "W4-loppu-removed",
        "W4-unchanged",
    ],
)
def test_end_date_change(
    old: str | None,
    new: str | None,
    today: str,
    muutos: LoppuMuutos,
    rule: str,
    niputus: str | None,
) -> None:
    old_loppu = d(old) if old else None
    new_loppu = d(new) if new else None
    assert classify_loppu_change(old_loppu, new_loppu, d(today)) is muutos
    result = evaluate(jakso(loppu=new), hoks(), opiskeluoikeus(), d(today))
    assert result.rule == rule
    assert result.niputuspvm == (d(niputus) if niputus else None)


def test_w4_moved_later_takes_the_new_herätepäivä_when_it_comes() -> None:
    result = evaluate(jakso(loppu="2024-04-10"), hoks(), opiskeluoikeus(), d("2024-04-10"))
    assert (result.rule, result.niputuspvm) == ("E15", d("2024-04-16"))


JAKSO_ID = jakso().id
ELIGIBLE = Eligibility("E15", Tila.ODOTTAA, Syy.ODOTTAA_NIPUTUSTA, d("2024-03-16"))
REMOVED = Eligibility("E14", Tila.EI_LAHETETA, Syy.JAKSO_POISTETTU, d("2024-03-16"))


@pytest.mark.parametrize(
    ("current", "evaluated", "applied"),
    [
        (None, ELIGIBLE, True),
        (JaksoState(Tila.ODOTTAA, Syy.JAKSO_KESKEN), ELIGIBLE, True),
        (JaksoState(Tila.ODOTTAA, Syy.ODOTTAA_NIPUTUSTA), REMOVED, True),
        (JaksoState(Tila.EI_LAHETETA, Syy.KESKEYTYNYT), ELIGIBLE, True),
        (JaksoState(Tila.NIPUTETTU), REMOVED, False),
        (JaksoState(Tila.LAHETETTY), REMOVED, False),
        (JaksoState(Tila.VASTATTU), ELIGIBLE, False),
        (JaksoState(Tila.VASTAUSAIKA_LOPPUNUT), ELIGIBLE, False),
        (JaksoState(Tila.EI_LAHETETA, Syy.YHTEYSTIETO_PUUTTUU), ELIGIBLE, False),
        (JaksoState(Tila.EI_LAHETETA, Syy.ARVO_EI_KYSELYA), ELIGIBLE, False),
    ],
    ids=[
        "E18-new-jakso",
        "E18-completed",
        "E18-removed-before-bundling",
        "E18-corrected",
        "E18-niputettu-not-rebundled",
        "E18-lahetetty-recorded-only",
        "E18-vastattu-recorded-only",
        "E18-vastausaika-loppunut-recorded-only",
        "E18-contact-outcome-kept",
        "E18-arvo-outcome-kept",
    ],
)
def test_reevaluate_records_every_transition(
    current: JaksoState | None, evaluated: Eligibility, applied: bool
) -> None:
    transition = reevaluate(JAKSO_ID, current, evaluated, ["loppu"])
    assert transition.old == current
    assert transition.new == evaluated.state
    assert transition.rule == evaluated.rule
    assert transition.changed == ("loppu",)
    assert transition.applied is applied
    assert transition.resulting == (evaluated.state if applied else current)
    if current is not None:
        assert is_bundled_or_later(current) is not applied


eligible_loppu = st.dates(min_value=date(2021, 7, 1), max_value=date(2030, 12, 31))


@given(loppu=eligible_loppu, days_after=st.integers(min_value=0, max_value=120))
def test_eligible_jakso_always_has_an_open_answer_window(loppu: date, days_after: int) -> None:
    """W1–W3 property: when `evaluate` says E15, sending on that day leaves a non-empty
    window of at most 60 days from niputuspvm; otherwise it is E13."""
    today = loppu + timedelta(days=days_after)
    result = evaluate(
        jakso(alku="2021-01-01", loppu=loppu.isoformat()), hoks(), opiskeluoikeus(), today
    )
    assert result.niputuspvm is not None
    assert result.rule in {"E13", "E15"}
    if result.rule == "E15":
        window = answer_window(result.niputuspvm, today)
        assert window.alku <= window.loppu <= result.niputuspvm + timedelta(days=59)
