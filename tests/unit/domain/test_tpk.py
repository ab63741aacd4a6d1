"""T1–T5 and E16 for TPK (services.bundler.domain.tpk)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.bundler.domain.eligibility import JaksoState, Syy, Tila
from services.bundler.domain.tpk import (
    TPK_TILAT,
    TpkCandidate,
    is_tep_eligible_state,
    is_tpk_jakso,
    is_tpk_run_date,
    niputa_tpk,
    tpk_kausi_for_run,
    tpk_key,
)
from shared.domain.dates import Tiedonkeruukausi
from shared.domain.koodisto import Hankkimistapa
from tests.unit.domain.builders import d, jakso

SPRING = Tiedonkeruukausi(d("2024-01-01"))
ODOTTAA_NIPUTUSTA = JaksoState(Tila.ODOTTAA, Syy.ODOTTAA_NIPUTUSTA)
KT = "1.2.246.562.10.1"


@pytest.mark.parametrize(
    ("state", "included"),
    [
        (ODOTTAA_NIPUTUSTA, True),
        (JaksoState(Tila.ODOTTAA, Syy.JATKUU_MYOHEMMIN), True),
        (JaksoState(Tila.NIPUTETTU), True),
        (JaksoState(Tila.LAHETETTY), True),
        (JaksoState(Tila.VASTATTU), True),
        (JaksoState(Tila.VASTAUSAIKA_LOPPUNUT), True),
        (JaksoState(Tila.EI_LAHETETA, Syy.YHTEYSTIETO_PUUTTUU), True),
        (JaksoState(Tila.ODOTTAA, Syy.JAKSO_KESKEN), False),
        (JaksoState(Tila.ODOTTAA, Syy.OPISKELUOIKEUS_PUUTTUU), False),
        (JaksoState(Tila.EI_LAHETETA, Syy.KESKEYTYNYT), False),
        (JaksoState(Tila.EI_LAHETETA, Syy.VASTAUSAIKA_UMPEUTUNUT), False),
        (JaksoState(Tila.EI_LAHETETA, Syy.ARVO_EI_KYSELYA), False),
    ],
    ids=[
        "T2-E15",
        "T2-J4-jatkuu-myohemmin",
        "T2-niputettu",
        "T2-lahetetty",
        "T2-vastattu",
        "T2-vastausaika-loppunut",
        "T2-C3-contact-missing",
        "T2-jakso-kesken",
        "T2-study-right-unknown",
        "T2-ei-laheteta",
        "T2-E13-window-closed",
        "T2-arvo-no-survey",
    ],
)
def test_tep_eligible_states(state: JaksoState, included: bool) -> None:
    assert is_tep_eligible_state(state) is included


@pytest.mark.parametrize(
    ("fields", "included"),
    [
        ({"loppu": "2024-06-30"}, True),
        ({"loppu": "2024-07-01"}, False),
        ({"alku": "2023-11-01", "loppu": "2023-12-31"}, False),
        ({"loppu": None}, False),
        (
            {
                "hankkimistapa": Hankkimistapa.OPPISOPIMUS,
                "oppisopimuksen_perusta": "02",
            },
            False,
        ),
        (
            {
                "hankkimistapa": Hankkimistapa.OPPISOPIMUS,
                "oppisopimuksen_perusta": "01",
            },
            True,
        ),
    ],
    ids=[
        "T2-last-day-of-kausi",
        "T2-next-kausi",
        "T2-previous-kausi",
        "T2-no-loppu",
        "T2-entrepreneur-excluded",
        "T2-employment-apprenticeship",
    ],
)
def test_tpk_jakso(fields: dict[str, Any], included: bool) -> None:
    assert is_tpk_jakso(jakso(**fields), ODOTTAA_NIPUTUSTA, SPRING) is included


def tpk(*candidates: tuple[str, dict[str, Any]]) -> list[list[str]]:
    built = []
    for tunniste, fields in candidates:
        jakso_fields = dict(fields)
        koulutustoimija = jakso_fields.pop("koulutustoimija", KT)
        built.append(
            TpkCandidate(
                jakso(tunniste=tunniste, **jakso_fields), ODOTTAA_NIPUTUSTA, koulutustoimija
            )
        )
    return [[j.tunniste for j in n.jaksot] for n in niputa_tpk(built, SPRING)]


@pytest.mark.parametrize(
    ("second", "together"),
    [
        ({"tyopaikka": "perhosen  PAIVAKOTI"}, True),
        ({"ohjaaja": "Toinen Ohjaaja"}, True),
        ({"tyopaikka": "Päiväkoti Perhonen"}, False),
        ({"y_tunnus": "7654321-0"}, False),
        ({"koulutustoimija": "1.2.246.562.10.2"}, False),
    ],
    ids=[
        "T3-same-normalised-name",
        "T3-any-instructor",
        "T3-other-spelling-other-bundle",
        "T3-other-y-tunnus",
        "T3-other-koulutustoimija",
    ],
)
def test_tpk_bundles(second: dict[str, Any], together: bool) -> None:
    first: dict[str, Any] = {"tyopaikka": "Perhosen Päiväkoti"}
    result = tpk(("a", first), ("b", second))
    assert sorted(result) == ([["a", "b"]] if together else [["a"], ["b"]])


def test_tpk_run_leaves_out_jaksot_that_do_not_count() -> None:
    """T2, E16: only counted jaksot make bundles; the first jakso's name is shown."""
    counted = TpkCandidate(
        jakso(tunniste="b", tyopaikka="Perhosen Päiväkoti "), ODOTTAA_NIPUTUSTA, KT
    )
    also = TpkCandidate(jakso(tunniste="a", tyopaikka="PERHOSEN päiväkoti"), ODOTTAA_NIPUTUSTA, KT)
    ended = TpkCandidate(jakso(tunniste="c"), JaksoState(Tila.EI_LAHETETA, Syy.SOPIMUS_PURETTU), KT)
    (nippu,) = niputa_tpk([counted, ended, also], SPRING)
    assert [j.tunniste for j in nippu.jaksot] == ["a", "b"]
    assert nippu.tyopaikka == "PERHOSEN päiväkoti"
    assert nippu.key == tpk_key(counted.jakso, KT, SPRING)
    assert (nippu.answer_window.alku, nippu.answer_window.loppu) == (
        d("2024-07-01"),
        d("2024-08-31"),
    )


@pytest.mark.parametrize(
    "broken", [{"tyopaikka": None}, {"y_tunnus": " "}], ids=["E12-name", "E12-y-tunnus"]
)
def test_tpk_key_needs_a_workplace(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="E12"):
        tpk_key(jakso(**broken), KT, SPRING)


@pytest.mark.parametrize(
    ("run", "kausi"),
    [
        ("2024-07-01", "2024-01-01"),
        ("2024-08-31", "2024-01-01"),
        ("2024-09-01", None),
        ("2025-01-01", "2024-07-01"),
        ("2025-02-28", "2024-07-01"),
        ("2024-02-29", "2023-07-01"),
        ("2024-03-01", None),
        ("2024-06-30", None),
    ],
    ids=[
        "T4-run-1.7-forms-spring",
        "T4-spring-repeat-last-day",
        "T4-spring-window-ended",
        "T4-run-1.1-forms-autumn",
        "T4-autumn-repeat-end-of-february",
        "T4-autumn-leap-day",
        "T4-autumn-window-ended",
        "T4-spring-not-yet",
    ],
)
def test_tpk_kausi_for_run(run: str, kausi: str | None) -> None:
    expected = Tiedonkeruukausi(d(kausi)) if kausi else None
    assert tpk_kausi_for_run(d(run)) == expected


def test_tiedonkeruukausi_is_by_loppu() -> None:
    """T1 (for TPK): a jakso ending 30.6. belongs to spring, 1.7. to autumn."""
    assert SPRING.contains(date(2024, 6, 30)) and not SPRING.contains(date(2024, 7, 1))


@pytest.mark.parametrize(
    ("day", "due"),
    [
        ("2025-07-01", True),
        ("2026-01-01", True),
        ("2025-07-02", False),
        ("2025-08-01", False),
        ("2025-06-30", False),
        ("2025-12-01", False),
    ],
)
def test_tpk_run_is_due_on_1_1_and_1_7(day: str, due: bool) -> None:
    """T4: the scheduler runs TPK niputus on 1.1 and 1.7 only (repeats go by the API)."""
    assert is_tpk_run_date(d(day)) is due


@pytest.mark.parametrize("tila", list(Tila))
@pytest.mark.parametrize("syy", [*Syy, None])
def test_tpk_tilat_hold_every_tep_eligible_state(tila: Tila, syy: Syy | None) -> None:
    """T2: a store filtering by TPK_TILAT first loses no state that counts."""
    if is_tep_eligible_state(JaksoState(tila, syy)):
        assert tila in TPK_TILAT
