"""What a bundle's codes and link are, and what the adapter reports back (issue 13).

Pure functions over the events' payloads and the states of a bundle's jaksot, so the
decisions print as rows of a test table (tests/unit/arvo_adapter/test_linking.py).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.events import NippuJaksoPayload, NippuReady

JaksoState = Literal["pending", "created", "no_survey"]
Outcome = Literal["linked", "arvo_ei_kyselya", "vastausaika_umpeutunut", "nothing_to_link"]

# NippuJaksoPayload's fields that are not background data of the code.
_NOT_SENT = frozenset({"jakso_id", "kesto"})


def window_passed(today: dt.date, voimassa_loppupvm: dt.date) -> bool:
    """The bundle's last answer day (W2) is behind us: codes are still made, for
    funding, but marked `ei_kuulu_lahetettavien_perusjoukkoon`, and no link is made."""
    return today > voimassa_loppupvm


def code_data(nippu: NippuReady, jakso: NippuJaksoPayload) -> dict[str, Any]:
    """The background data of a jakso's `POST vastaajatunnus` without `request_id`,
    `kesto` and `metatiedot` (those change between attempts or later): the jakso's own
    fields as the bundler sent them, and the answer window of its bundle (W1, W2)."""
    data = jakso.model_dump(mode="json", exclude=set(_NOT_SENT))
    data["vastaamisajan_alkupvm"] = nippu.voimassa_alkupvm.isoformat()
    data["vastaamisajan_loppupvm"] = nippu.voimassa_loppupvm.isoformat()
    return data


@dataclass(frozen=True)
class JaksoView:
    """A jakso of a bundle as the link step sees it."""

    jakso_id: int
    state: str  # JaksoState
    cancelled: bool
    tunnus: str | None


def outcome(jaksot: Sequence[JaksoView], *, passed: bool) -> Outcome:
    """What becomes of a bundle once every live jakso has an answer from Arvo.

    - no survey for any of its live jaksot (404): `arvo_ei_kyselya`, no link;
    - the window has passed: `vastausaika_umpeutunut`, codes marked, no link;
    - else `linked` with the codes there are (a jakso Arvo had no survey for is reported
      without a code);
    - every jakso cancelled before Arvo was reached: `nothing_to_link` (nothing reported:
      the bundler cancelled them itself).
    """
    live = [j for j in jaksot if not j.cancelled]
    if any(j.state == "pending" for j in live):
        raise ValueError("a live jakso has no answer from Arvo yet")
    if not live:
        return "nothing_to_link"
    if all(j.state == "no_survey" for j in live):
        return "arvo_ei_kyselya"
    if passed:
        return "vastausaika_umpeutunut"
    return "linked"


def retry_delay(
    attempts: int, *, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds before a failed piece of work is tried again: exponential in `attempts`
    (1 after the first failure), capped at `maximum`, with equal jitter (half fixed, half
    random) so a backlog does not come back all at once."""
    base: float = min(maximum, initial * 2 ** max(0, attempts - 1))
    draw: float = (rng or random).random()
    return base / 2 + draw * base / 2
