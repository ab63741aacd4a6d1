"""The one clock: Helsinki's calendar date, or the date CLOCK_TODAY freezes."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from shared.clock import HELSINKI, Clock
from shared.settings import ServiceSettings


def test_frozen_clock_gives_the_frozen_date_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(dt.date(2025, 7, 1))
    with caplog.at_level(logging.WARNING):
        clock.warn_if_frozen()
    assert clock.today() == dt.date(2025, 7, 1)
    assert clock.now().date() == dt.date(2025, 7, 1)
    assert clock.now().tzinfo == HELSINKI
    assert "CLOCK_TODAY" in caplog.text


def test_running_clock_is_helsinki_today(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    with caplog.at_level(logging.WARNING):
        clock.warn_if_frozen()
    assert caplog.text == ""
    assert clock.today() in {
        (dt.datetime.now(HELSINKI) + dt.timedelta(seconds=s)).date() for s in (-1, 0, 1)
    }


def test_clock_today_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOCK_TODAY", "2024-02-29")
    assert ServiceSettings().clock_today == dt.date(2024, 2, 29)
