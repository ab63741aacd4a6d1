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


@dataclass(frozen=True)
class Cutoff:
    """The limits of the clean-up run of `date` (P1), each "more than the retention ago".

    - A bundle: its last answer day (`voimassa_loppupvm`) is before
      `bundle_closed_before` (= date − retention).
    - A jakso never bundled, still `odottaa` or `ei_laheteta`: even the latest last
      answer day W2 allows it (niputuspvm + 59) is before date − retention, so no run
      could send it any more (E13); or it ended before the system started (E2, no
      niputuspvm); or it was removed from its HOKS or the HOKS deleted (E14) and has not
      changed since before `unchanged_since` (midnight starting date − retention; a
      later HOKS version bringing it back carries its instructor again).
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
        """E2: jaksot ending before the system started were never to be surveyed."""
        return min(KAYTTOONOTTO, self.bundle_closed_before)

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
