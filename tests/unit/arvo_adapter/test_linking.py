"""The adapter's decisions: a bundle's outcome, the answer window, the code's data and
the backoff of failed work (issue 13)."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.arvo_adapter.arvo.models import VastaajatunnusRequest
from services.arvo_adapter.domain.linking import (
    JaksoView,
    code_data,
    outcome,
    retry_delay,
    window_passed,
)
from shared.events import NippuJaksoPayload, NippuReady

d = dt.date.fromisoformat


def views(*states: str, cancelled: tuple[int, ...] = ()) -> list[JaksoView]:
    return [
        JaksoView(i, state, i in cancelled, "T" if state == "created" else None)
        for i, state in enumerate(states)
    ]


@pytest.mark.parametrize(
    ("states", "cancelled", "passed", "expected"),
    [
        (("created", "created"), (), False, "linked"),
        (("created", "no_survey"), (), False, "linked"),
        (("no_survey", "no_survey"), (), False, "arvo_ei_kyselya"),
        (("no_survey",), (), True, "arvo_ei_kyselya"),
        (("created", "created"), (), True, "vastausaika_umpeutunut"),
        (("created", "no_survey"), (0,), False, "arvo_ei_kyselya"),
        (("created", "created"), (0, 1), False, "nothing_to_link"),
        (("pending", "created"), (0,), False, "linked"),
    ],
    ids=[
        "all-codes",
        "some-without-survey",
        "no-survey",
        "no-survey-wins-over-window",
        "window-passed",
        "cancelled-ignored",
        "all-cancelled",
        "pending-but-cancelled",
    ],
)
def test_outcome(
    states: tuple[str, ...], cancelled: tuple[int, ...], passed: bool, expected: str
) -> None:
    assert outcome(views(*states, cancelled=cancelled), passed=passed) == expected


def test_outcome_needs_an_answer_for_every_live_jakso() -> None:
    with pytest.raises(ValueError, match="no answer"):
        outcome(views("created", "pending"), passed=False)


@pytest.mark.parametrize(
    ("today", "loppu", "passed"),
    [("2025-04-14", "2025-04-14", False), ("2025-04-15", "2025-04-14", True)],
    ids=["W2-last-day-still-open", "W2-day-after-closed"],
)
def test_window_passed(today: str, loppu: str, passed: bool) -> None:
    assert window_passed(d(today), d(loppu)) is passed


def test_code_data_is_the_jakso_with_its_bundle_window_and_makes_a_valid_request() -> None:
    jakso = NippuJaksoPayload(
        jakso_id=7,
        koulutustoimija_oid="1.2.246.562.10.1",
        oppilaitos_oid="1.2.246.562.10.2",
        tyonantaja="1234567-8",
        tyopaikka="Perhosen Päiväkoti",
        tyopaikka_normalisoitu="perhosen_paivakoti",
        tutkintotunnus="351407",
        tyopaikkajakson_alkupvm=d("2022-01-10"),
        tyopaikkajakson_loppupvm=d("2022-03-15"),
        rahoituskausi_pvm=d("2022-03-15"),
        sopimustyyppi="koulutussopimus",
        kesto=40,
    )
    nippu = NippuReady(
        nippu_id=uuid.uuid4(),
        tunniste="perhosen_paivakoti_2022-03-16_abc123",
        koulutustoimija_oid="1.2.246.562.10.1",
        tutkintotunnus="351407",
        tyonantaja="1234567-8",
        tyopaikka="Perhosen Päiväkoti",
        niputuspvm=d("2022-03-16"),
        voimassa_alkupvm=d("2022-03-16"),
        voimassa_loppupvm=d("2022-04-14"),
        jaksot=[jakso],
    )
    data = code_data(nippu, jakso)
    assert "jakso_id" not in data and "kesto" not in data
    assert (data["vastaamisajan_alkupvm"], data["vastaamisajan_loppupvm"]) == (
        "2022-03-16",
        "2022-04-14",
    )
    request = VastaajatunnusRequest(request_id=uuid.uuid4(), kesto=jakso.kesto, **data)
    assert request.body()["kesto"] == 40
    assert request.body()["tyopaikka_normalisoitu"] == "perhosen_paivakoti"


@given(attempts=st.integers(min_value=1, max_value=60), seed=st.integers())
def test_retry_delay_grows_and_stays_within_its_cap(attempts: int, seed: int) -> None:
    delay = retry_delay(attempts, initial=1.0, maximum=60.0, rng=random.Random(seed))
    base = min(60.0, 2.0 ** (attempts - 1))
    assert base / 2 <= delay <= base


@pytest.mark.parametrize(
    ("concurrency", "pool", "used"), [(8, 20, 8), (18, 20, 18), (19, 20, 18), (8, 5, 3), (8, 2, 1)]
)
def test_concurrency_leaves_room_in_the_pool(concurrency: int, pool: int, used: int) -> None:
    from services.arvo_adapter.settings import ArvoAdapterSettings

    settings = ArvoAdapterSettings(arvo_concurrency=concurrency, db_pool_size=pool)
    assert settings.worker_concurrency == used
