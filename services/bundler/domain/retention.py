"""P1: when an instructor's name, e-mail and phone are no longer needed.

They serve one purpose: reaching the instructor for the TEP survey of a jakso. That
purpose has ended for a bundle whose answer window closed, and for a jakso never bundled
that can no longer be surveyed; P1 keeps the data a retention period (default 30 days)
beyond that, for corrections and questions, then removes it everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.bundler.domain.eligibility import KAYTTOONOTTO, JaksoState, is_bundled_or_later
from services.bundler.domain.jakso import is_present
from shared.domain.dates import ANSWER_DAYS_FROM_NIPUTUSPVM
from shared.domain.names import normalize_name
from shared.events import JaksoPayload, OhjaajaPayload

DEFAULT_RETENTION_DAYS = 30
#: D1 and D2: the niputuspvm is at most this many days after `loppu`.
MAX_DAYS_TO_NIPUTUSPVM = 31


@dataclass(frozen=True)
class Cutoff:
    """The limits of the clean-up run of `date` (P1), each "more than the retention ago".

    - A bundle: its last answer day (`voimassa_loppupvm`) is before
      `bundle_closed_before` (= date − retention).
    - A jakso never bundled, still `odottaa` or `ei_laheteta`: even the latest last
      answer day W2 allows it (niputuspvm + 59) is before date − retention, so no run
      could send it any more (E13). One stored without a niputuspvm (E1 before its
      `loppu` passed, E2) is judged by its `loppu` (`loppu_before`).
    - A jakso removed from its HOKS (E14) whose history has had no new row since
      `unchanged_since` (midnight starting date − retention), and every jakso of a HOKS
      deleted before then. A later HOKS version bringing one back carries its
      instructor again.
    """

    date: dt.date
    retention_days: int = DEFAULT_RETENTION_DAYS

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise ValueError("retention_days must not be negative")

    @property
    def bundle_closed_before(self) -> dt.date:
        return self.date - dt.timedelta(days=self.retention_days)

    @property
    def niputuspvm_before(self) -> dt.date:
        """niputuspvm + 59 < date − retention ⇔ niputuspvm < this day."""
        return self.bundle_closed_before - dt.timedelta(days=ANSWER_DAYS_FROM_NIPUTUSPVM - 1)

    @property
    def loppu_before(self) -> dt.date:
        """For a jakso without a niputuspvm: its niputuspvm would come at most 31 days
        after `loppu` (D1: the 16th or the 1st after; D2: the 1st after), so a `loppu`
        before this day means a niputuspvm before `niputuspvm_before`. A jakso ending
        before the system started (E2) was never to be surveyed: the retention after it."""
        by_niputuspvm = self.niputuspvm_before - dt.timedelta(days=MAX_DAYS_TO_NIPUTUSPVM)
        return max(by_niputuspvm, min(KAYTTOONOTTO, self.bundle_closed_before))

    @property
    def unchanged_since(self) -> dt.date:
        return self.bundle_closed_before


def keeps_removed(
    state: JaksoState, *, stored_loppu: dt.date | None, new_loppu: dt.date | None
) -> bool:
    """Whether a jakso whose instructor data was removed stays without it when a new
    HOKS version carries it again: yes when bundled (never bundled again, E18) and when
    its `loppu` did not move (its window stays closed, E13); no when `loppu` moved (W4
    may make it surveyable again, and then it needs its instructor)."""
    return is_bundled_or_later(state) or stored_loppu == new_loppu


def without_instructor(payload: JaksoPayload) -> JaksoPayload:
    """A jakso's facts with its instructor as a removed row keeps it: the normalised name
    only (N4; bundles, J4 and E12 read it), no e-mail or phone."""
    nimi = payload.ohjaaja.nimi if payload.ohjaaja is not None else None
    kept = OhjaajaPayload(nimi=normalize_name(nimi) if is_present(nimi) else None)
    return payload.model_copy(update={"ohjaaja": kept})
