"""P1 (services.bundler.domain.retention): when instructors' data is no longer needed,
and what a jakso without it keeps."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.bundler.domain.eligibility import JaksoState, Syy, Tila
from services.bundler.domain.retention import Cutoff, keeps_removed, without_instructor
from shared.domain.dates import (
    DEFAULT_POLICIES,
    POLICIES_WITH_2025_AMENDMENT,
    last_answer_day,
    niputuspvm,
)
from shared.events import JaksoPayload, OhjaajaPayload, TutkinnonOsaPayload

d = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("date", "days", "closed_before", "niputuspvm_before", "loppu_before"),
    [
        # W2's example bundle: last answer day 2022-04-14; 30 days later is 2022-05-14,
        # the first run after that (2022-05-15) removes it.
        ("2022-05-15", 30, "2022-04-15", "2022-02-15", "2022-01-15"),
        ("2022-05-14", 30, "2022-04-14", "2022-02-14", "2022-01-14"),
        # Soon after the start (1.7.2021) only E2's jaksot, ending before it.
        ("2021-07-20", 30, "2021-06-20", "2021-04-22", "2021-06-20"),
        ("2025-01-01", 0, "2025-01-01", "2024-11-03", "2024-10-03"),
    ],
)
def test_cutoff_dates(
    date: str, days: int, closed_before: str, niputuspvm_before: str, loppu_before: str
) -> None:
    cutoff = Cutoff(d(date), days)
    assert cutoff.bundle_closed_before == d(closed_before)
    assert cutoff.niputuspvm_before == d(niputuspvm_before)
    assert cutoff.loppu_before == d(loppu_before)
    assert cutoff.unchanged_since == d(closed_before)


def test_a_negative_retention_is_refused() -> None:
    with pytest.raises(ValueError, match="retention_days"):
        Cutoff(d("2025-01-01"), -1)


@given(
    niputuspvm=st.dates(d("2021-07-01"), d("2030-12-31")),
    days=st.integers(0, 400),
    offset=st.integers(-5, 5),
)
def test_a_never_bundled_jakso_goes_only_when_no_window_could_still_be_open(
    niputuspvm: dt.date, days: int, offset: int
) -> None:
    """niputuspvm < niputuspvm_before ⇔ even the latest last answer day W2 allows (sent on
    the last day that still leaves one) is more than the retention before the run."""
    latest_last_day = last_answer_day(niputuspvm, niputuspvm + dt.timedelta(days=59))
    run = latest_last_day + dt.timedelta(days=days + 1 + offset)
    cutoff = Cutoff(run, days)
    assert (niputuspvm < cutoff.niputuspvm_before) == (
        latest_last_day + dt.timedelta(days=days) < run
    )


@given(
    loppu=st.dates(d("2021-07-01"), d("2030-12-31")),
    date=st.dates(d("2021-07-01"), d("2031-12-31")),
    days=st.integers(0, 400),
    amended=st.booleans(),
)
def test_a_jakso_without_niputuspvm_goes_by_loppu_only_when_its_niputuspvm_would_go(
    loppu: dt.date, date: dt.date, days: int, amended: bool
) -> None:
    """E1 stored before `loppu` passed: its niputuspvm (D1, or D2 after the amendment)
    would be before `niputuspvm_before` whenever `loppu` is before `loppu_before`."""
    cutoff = Cutoff(date, days)
    policies = POLICIES_WITH_2025_AMENDMENT if amended else DEFAULT_POLICIES
    if loppu < cutoff.loppu_before:
        assert niputuspvm(loppu, policies) < cutoff.niputuspvm_before


E15 = JaksoState(Tila.ODOTTAA, Syy.ODOTTAA_NIPUTUSTA)
UMPEUTUNUT = JaksoState(Tila.EI_LAHETETA, Syy.VASTAUSAIKA_UMPEUTUNUT)
LAHETETTY = JaksoState(Tila.LAHETETTY)
YHTEYSTIETO_PUUTTUU = JaksoState(Tila.EI_LAHETETA, Syy.YHTEYSTIETO_PUUTTUU)


@pytest.mark.parametrize(
    ("state", "stored_loppu", "new_loppu", "kept"),
    [
        (UMPEUTUNUT, "2024-01-10", "2024-01-10", True),
        (UMPEUTUNUT, "2024-01-10", "2025-06-30", False),
        (E15, "2024-01-10", None, False),
        (LAHETETTY, "2024-01-10", "2025-06-30", True),
        (YHTEYSTIETO_PUUTTUU, "2024-01-10", "2024-02-01", True),
    ],
)
def test_removed_data_stays_removed_unless_loppu_moved_for_a_jakso_not_bundled(
    state: JaksoState, stored_loppu: str, new_loppu: str | None, kept: bool
) -> None:
    assert (
        keeps_removed(
            state,
            stored_loppu=d(stored_loppu),
            new_loppu=None if new_loppu is None else d(new_loppu),
        )
        is kept
    )


def _payload(ohjaaja: OhjaajaPayload | None) -> JaksoPayload:
    return JaksoPayload(
        yksiloiva_tunniste="a",
        path="p",
        tunniste_puuttuu=False,
        hankkimistapa="koulutussopimus",  # type: ignore[arg-type]
        alku=d("2024-01-01"),
        loppu=d("2024-02-01"),
        tyopaikan_nimi="Perhosen Päiväkoti",
        ohjaaja=ohjaaja,
        tutkinnon_osa=TutkinnonOsaPayload(kind="ammatillinen", koodi_uri="tutkinnonosat_1"),
    )


def test_without_instructor_keeps_the_normalised_name_only() -> None:
    full = _payload(
        OhjaajaPayload(nimi="Olli Öhjaaja", sahkoposti="olli@example.fi", puhelinnumero="040")
    )
    stripped = without_instructor(full)
    assert stripped.ohjaaja == OhjaajaPayload(nimi="olli_ohjaaja")
    assert stripped.model_dump(exclude={"ohjaaja"}) == full.model_dump(exclude={"ohjaaja"})
    # The stored row of a cleaned jakso holds the normalised name: stripping is stable.
    assert without_instructor(stripped) == stripped


@pytest.mark.parametrize("ohjaaja", [None, OhjaajaPayload(nimi="  ", sahkoposti="x@y.fi")])
def test_without_instructor_of_a_nameless_one_has_no_name(ohjaaja: OhjaajaPayload | None) -> None:
    assert without_instructor(_payload(ohjaaja)).ohjaaja == OhjaajaPayload()
