"""Dates of työelämäpalaute: niputuspvm (D1, D2), answer windows (W1, W2, T4),
rahoituskausi and tiedonkeruukausi (T1).

All dates are calendar dates in Europe/Helsinki; ranges are inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class NiputusPolicy(StrEnum):
    """How a herätepäivä maps to its niputuspvm."""

    HALF_MONTHLY = "D1"
    MONTHLY = "D2"


@dataclass(frozen=True)
class PolicyPeriod:
    """A niputus policy in force from `start` until the next period's start (D2)."""

    start: date
    policy: NiputusPolicy


PolicySchedule = tuple[PolicyPeriod, ...]

#: D1 always: decree 1244/2020 as it started on 1.7.2021. The default (D2).
DEFAULT_POLICIES: PolicySchedule = (PolicyPeriod(date.min, NiputusPolicy.HALF_MONTHLY),)

#: The decree amendment: monthly niputus for herätepäivät from 2025-07-01 on (D2).
#: Pass this instead of DEFAULT_POLICIES to switch the amendment on.
POLICIES_WITH_2025_AMENDMENT: PolicySchedule = (
    *DEFAULT_POLICIES,
    PolicyPeriod(date(2025, 7, 1), NiputusPolicy.MONTHLY),
)

#: W2: 30 days from sending, counted inclusively.
ANSWER_DAYS_FROM_SENDING = 30
#: W2: at most 60 days from the niputuspvm, counted inclusively.
ANSWER_DAYS_FROM_NIPUTUSPVM = 60


def first_of_next_month(day: date) -> date:
    """The 1st of the month after `day`'s month."""
    if day.month == 12:
        return date(day.year + 1, 1, 1)
    return date(day.year, day.month + 1, 1)


def half_monthly_niputuspvm(heratepvm: date) -> date:
    """D1: days 1–15 → the 16th of that month; days 16– → the 1st of the next month."""
    if heratepvm.day <= 15:
        return heratepvm.replace(day=16)
    return first_of_next_month(heratepvm)


def monthly_niputuspvm(heratepvm: date) -> date:
    """D2: any day of month M → the 1st of M+1."""
    return first_of_next_month(heratepvm)


def policy_on(heratepvm: date, policies: PolicySchedule = DEFAULT_POLICIES) -> NiputusPolicy:
    """D2: a jakso follows the policy in force on its herätepäivä.

    The schedule may be given in any order; its earliest period must start on or
    before `heratepvm`.
    """
    in_force = [period for period in policies if period.start <= heratepvm]
    if not in_force:
        raise ValueError(f"no niputus policy in force on {heratepvm.isoformat()}")
    return max(in_force, key=lambda period: period.start).policy


def niputuspvm(heratepvm: date, policies: PolicySchedule = DEFAULT_POLICIES) -> date:
    """The bundling and statutory sending date of a jakso ending on `heratepvm` (D1, D2)."""
    if policy_on(heratepvm, policies) is NiputusPolicy.MONTHLY:
        return monthly_niputuspvm(heratepvm)
    return half_monthly_niputuspvm(heratepvm)


def sending_date(niputuspvm: date, run_date: date) -> date:
    """W1: a bundle is sent on its run date, never before its niputuspvm."""
    return max(run_date, niputuspvm)


def last_answer_day(niputuspvm: date, sent_on: date) -> date:
    """W2: min(sending + 29, niputuspvm + 59): 30 days from sending, at most 60 from
    the statutory sending date, both counted inclusively."""
    return min(
        sent_on + timedelta(days=ANSWER_DAYS_FROM_SENDING - 1),
        niputuspvm + timedelta(days=ANSWER_DAYS_FROM_NIPUTUSPVM - 1),
    )


@dataclass(frozen=True)
class AnswerWindow:
    """An inclusive answer window: first and last answer day."""

    alku: date
    loppu: date

    def __post_init__(self) -> None:
        if self.loppu < self.alku:
            raise ValueError(f"empty answer window {self.alku} – {self.loppu}")

    def contains(self, day: date) -> bool:
        return self.alku <= day <= self.loppu


def is_answer_window_closed(niputuspvm: date, run_date: date) -> bool:
    """W3/E13: sending on `run_date` would leave no answer day (W2 before run date)."""
    sent_on = sending_date(niputuspvm, run_date)
    return last_answer_day(niputuspvm, sent_on) < run_date


def answer_window(niputuspvm: date, run_date: date) -> AnswerWindow:
    """W1 + W2: the answer window of a bundle sent by the run of `run_date`.

    Raises ValueError when the window has already closed (W3): such a jakso is not sent.
    """
    if is_answer_window_closed(niputuspvm, run_date):
        raise ValueError(
            f"answer window of niputuspvm {niputuspvm} closed before run {run_date} (W3)"
        )
    sent_on = sending_date(niputuspvm, run_date)
    return AnswerWindow(sent_on, last_answer_day(niputuspvm, sent_on))


@dataclass(frozen=True, order=True)
class Rahoituskausi:
    """Funding year 1.7.–30.6., named "2024-2025" after the years it spans."""

    alkuvuosi: int

    @property
    def alku(self) -> date:
        return date(self.alkuvuosi, 7, 1)

    @property
    def loppu(self) -> date:
        return date(self.alkuvuosi + 1, 6, 30)

    def __str__(self) -> str:
        return f"{self.alkuvuosi}-{self.alkuvuosi + 1}"


def rahoituskausi(day: date) -> Rahoituskausi:
    """The funding year that `day` belongs to (terms; K4 recomputes within one)."""
    return Rahoituskausi(day.year if day.month >= 7 else day.year - 1)


@dataclass(frozen=True, order=True)
class Tiedonkeruukausi:
    """TPK half-year: 1.1.–30.6. (spring) or 1.7.–31.12. (autumn) (T1)."""

    alku: date

    def __post_init__(self) -> None:
        if self.alku.day != 1 or self.alku.month not in (1, 7):
            raise ValueError(f"a tiedonkeruukausi starts on 1.1. or 1.7., not {self.alku}")

    @property
    def loppu(self) -> date:
        if self.alku.month == 1:
            return date(self.alku.year, 6, 30)
        return date(self.alku.year, 12, 31)

    def contains(self, day: date) -> bool:
        return self.alku <= day <= self.loppu

    @property
    def answer_window(self) -> AnswerWindow:
        """T4: spring → 1.7.–31.8.; autumn → 1.1.–end of February of the next year."""
        if self.alku.month == 1:
            return AnswerWindow(date(self.alku.year, 7, 1), date(self.alku.year, 8, 31))
        next_year = self.alku.year + 1
        return AnswerWindow(date(next_year, 1, 1), date(next_year, 3, 1) - timedelta(days=1))


def tiedonkeruukausi(loppu: date) -> Tiedonkeruukausi:
    """T1: the half-year of a jakso's `loppu`."""
    return Tiedonkeruukausi(date(loppu.year, 1 if loppu.month <= 6 else 7, 1))
