"""Reading the arvo_adapter's survey status leniently (services.sender.delivery.survey_status)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.sender.delivery.survey_status import SurveyStatus, parse_status


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"vastattu": True, "voimassa_loppupvm": "2025-04-15"}, (True, dt.date(2025, 4, 15))),
        ({"vastattu": False}, (False, None)),
        ({"vastattu": "false", "voimassa_loppupvm": None}, (False, None)),
        (
            {"vastattu": "TRUE", "voimassa_loppupvm": "2025-04-15T00:00:00"},
            (True, dt.date(2025, 4, 15)),
        ),
        ({"vastattu": False, "voimassa_loppupvm": "", "tila": "lahetetty"}, (False, None)),
    ],
)
def test_tolerated_answers(body: dict[str, Any], expected: tuple[bool, dt.date | None]) -> None:
    assert parse_status(body) == SurveyStatus(*expected)


@pytest.mark.parametrize(
    "body",
    [None, [], {}, {"vastattu": None}, {"vastattu": 1}, {"vastattu": "yes"}, {"answered": True}],
)
def test_answers_without_vastattu_are_refused(body: Any) -> None:
    with pytest.raises(ValueError):
        parse_status(body)


def test_a_malformed_date_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_status({"vastattu": False, "voimassa_loppupvm": "15.4.2025"})
