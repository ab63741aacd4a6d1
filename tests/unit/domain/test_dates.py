"""D1, D2, W1–W3, T1, T4 and rahoituskausi (shared.domain.dates)."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.dates import (
    DEFAULT_POLICIES,
    POLICIES_WITH_2025_AMENDMENT,
    AnswerWindow,
    NiputusPolicy,
    PolicyPeriod,
    Tiedonkeruukausi,
    answer_window,
    is_answer_window_closed,
    last_answer_day,
    niputuspvm,
    policy_on,
    rahoituskausi,
    sending_date,
    tiedonkeruukausi,
)

d = date.fromisoformat


@pytest.mark.parametrize(
    ("heratepvm", "expected"),
    [
        ("2022-03-15", "2022-03-16"),
        ("2022-03-16", "2022-04-01"),
        ("2022-12-31", "2023-01-01"),
        ("2024-02-29", "2024-03-01"),
        ("2022-03-01", "2022-03-16"),
        ("2025-07-10", "2025-07-16"),
    ],
    ids=[
        "D1-day15",
        "D1-day16",
        "D1-year-end",
        "D1-leap-day",
        "D1-day1",
        "D1-default-after-2025-07-01",
    ],
)
def test_half_monthly_policy_is_the_default(heratepvm: str, expected: str) -> None:
    assert niputuspvm(d(heratepvm)) == d(expected)


@pytest.mark.parametrize(
    ("heratepvm", "expected"),
    [
        ("2025-06-30", "2025-07-01"),
        ("2025-06-10", "2025-06-16"),
        ("2025-07-01", "2025-08-01"),
        ("2025-07-10", "2025-08-01"),
        ("2025-12-31", "2026-01-01"),
    ],
    ids=[
        "D2-before-amendment-D1",
        "D2-before-amendment-D1-first-half",
        "D2-amendment-first-day",
        "D2-monthly",
        "D2-year-end",
    ],
)
def test_amendment_switches_to_monthly_on_heratepvm(heratepvm: str, expected: str) -> None:
    assert niputuspvm(d(heratepvm), POLICIES_WITH_2025_AMENDMENT) == d(expected)


def test_policy_in_force_is_the_latest_started_regardless_of_order() -> None:
    schedule = tuple(reversed(POLICIES_WITH_2025_AMENDMENT))
    assert policy_on(d("2025-07-01"), schedule) is NiputusPolicy.MONTHLY
    assert policy_on(d("2025-06-30"), schedule) is NiputusPolicy.HALF_MONTHLY


def test_policy_schedule_must_cover_the_heratepvm() -> None:
    late_start = (PolicyPeriod(d("2021-07-01"), NiputusPolicy.HALF_MONTHLY),)
    with pytest.raises(ValueError, match="no niputus policy"):
        niputuspvm(d("2021-06-30"), late_start)


@pytest.mark.parametrize(
    ("niputus", "sent", "expected"),
    [
        ("2022-03-16", "2022-03-16", "2022-04-14"),
        ("2022-03-16", "2022-05-01", "2022-05-14"),
        ("2022-03-16", "2022-04-15", "2022-05-14"),
        ("2022-03-16", "2022-04-14", "2022-05-13"),
    ],
    ids=["W2-sent-on-niputuspvm", "W2-capped-at-60-days", "W2-both-limits", "W2-30-days"],
)
def test_last_answer_day(niputus: str, sent: str, expected: str) -> None:
    assert last_answer_day(d(niputus), d(sent)) == d(expected)


@pytest.mark.parametrize(
    ("niputus", "run", "expected"),
    [
        ("2022-03-16", "2022-03-16", ("2022-03-16", "2022-04-14")),
        ("2022-03-16", "2022-03-01", ("2022-03-16", "2022-04-14")),
        ("2022-03-16", "2022-05-01", ("2022-05-01", "2022-05-14")),
        ("2022-03-16", "2022-05-14", ("2022-05-14", "2022-05-14")),
    ],
    ids=["W1-run-on-niputuspvm", "W1-never-before-niputuspvm", "W1-late-run", "W1-last-day"],
)
def test_answer_window(niputus: str, run: str, expected: tuple[str, str]) -> None:
    window = answer_window(d(niputus), d(run))
    assert (window.alku, window.loppu) == (d(expected[0]), d(expected[1]))


@pytest.mark.parametrize(
    ("niputus", "run", "closed"),
    [("2022-03-16", "2022-05-14", False), ("2022-03-16", "2022-05-15", True)],
    ids=["W3-open-on-day-60", "W3-closed-on-day-61"],
)
def test_window_closed_before_run_is_not_sent(niputus: str, run: str, closed: bool) -> None:
    assert is_answer_window_closed(d(niputus), d(run)) is closed


def test_answer_window_refuses_a_closed_window() -> None:
    with pytest.raises(ValueError, match="W3"):
        answer_window(d("2022-03-16"), d("2022-05-15"))


def test_answer_window_cannot_be_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        AnswerWindow(d("2022-03-16"), d("2022-03-15"))


def test_sending_date_is_run_date_but_not_before_niputuspvm() -> None:
    assert sending_date(d("2022-03-16"), d("2022-03-01")) == d("2022-03-16")
    assert sending_date(d("2022-03-16"), d("2022-04-01")) == d("2022-04-01")


@pytest.mark.parametrize(
    ("day", "name"),
    [("2024-07-01", "2024-2025"), ("2025-06-30", "2024-2025"), ("2024-06-30", "2023-2024")],
    ids=["rahoituskausi-start", "rahoituskausi-end", "rahoituskausi-previous"],
)
def test_rahoituskausi(day: str, name: str) -> None:
    kausi = rahoituskausi(d(day))
    assert str(kausi) == name
    assert kausi.alku <= d(day) <= kausi.loppu


@pytest.mark.parametrize(
    ("loppu", "alku", "kausi_loppu"),
    [
        ("2024-01-01", "2024-01-01", "2024-06-30"),
        ("2024-06-30", "2024-01-01", "2024-06-30"),
        ("2024-07-01", "2024-07-01", "2024-12-31"),
        ("2024-12-31", "2024-07-01", "2024-12-31"),
    ],
    ids=["T1-spring-start", "T1-spring-end", "T1-autumn-start", "T1-autumn-end"],
)
def test_tiedonkeruukausi(loppu: str, alku: str, kausi_loppu: str) -> None:
    kausi = tiedonkeruukausi(d(loppu))
    assert (kausi.alku, kausi.loppu) == (d(alku), d(kausi_loppu))
    assert kausi.contains(d(loppu))


@pytest.mark.parametrize(
    ("kausi", "window"),
    [
        ("2024-01-01", ("2024-07-01", "2024-08-31")),
        ("2023-07-01", ("2024-01-01", "2024-02-29")),
        ("2024-07-01", ("2025-01-01", "2025-02-28")),
    ],
    ids=["T4-spring", "T4-autumn-leap-year", "T4-autumn"],
)
def test_tpk_answer_window(kausi: str, window: tuple[str, str]) -> None:
    answer = Tiedonkeruukausi(d(kausi)).answer_window
    assert (answer.alku, answer.loppu) == (d(window[0]), d(window[1]))


def test_tiedonkeruukausi_starts_on_a_half_year() -> None:
    with pytest.raises(ValueError, match="starts on"):
        Tiedonkeruukausi(d("2024-03-01"))


heratepaivat = st.dates(min_value=date(2021, 7, 1), max_value=date(2035, 12, 31))
schedules = st.sampled_from([DEFAULT_POLICIES, POLICIES_WITH_2025_AMENDMENT])


@given(heratepvm=heratepaivat, policies=schedules)
def test_niputuspvm_is_1st_or_16th_after_heratepvm(
    heratepvm: date, policies: tuple[PolicyPeriod, ...]
) -> None:
    """D1/D2 property: the 1st or the 16th (the 1st under D2), always after herätepäivä."""
    result = niputuspvm(heratepvm, policies)
    assert heratepvm < result <= heratepvm + timedelta(days=31)
    allowed_days = {1} if policy_on(heratepvm, policies) is NiputusPolicy.MONTHLY else {1, 16}
    assert result.day in allowed_days


@given(heratepvm=heratepaivat, delay=st.integers(min_value=-40, max_value=120))
def test_answer_window_within_60_days_and_never_empty(heratepvm: date, delay: int) -> None:
    """W1–W3 property: an open window is non-empty and ends within 60 days of niputuspvm."""
    niputus = niputuspvm(heratepvm)
    run = niputus + timedelta(days=delay)
    if is_answer_window_closed(niputus, run):
        assert run > niputus + timedelta(days=59)
        return
    window = answer_window(niputus, run)
    assert window.alku <= window.loppu <= niputus + timedelta(days=59)
    assert window.alku >= niputus
    assert window.contains(max(run, niputus))
    assert (window.loppu - window.alku).days <= 29
