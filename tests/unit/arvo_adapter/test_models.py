"""Arvo request bodies: what is sent, what is left out, what is refused before sending."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from pydantic import ValidationError

from services.arvo_adapter.arvo.client import _retry_after
from services.arvo_adapter.arvo.models import (
    NippuPatch,
    NippuRequest,
    VastaajatunnusPatch,
)


def test_code_patch_sends_only_the_fields_given() -> None:
    assert VastaajatunnusPatch(kesto=12).body() == {"kesto": 12}
    assert VastaajatunnusPatch(tutkinnon_osa=None).body() == {"tutkinnon_osa": None}


def test_nippu_patch_leaves_out_an_unchanged_validity() -> None:
    assert NippuPatch(tila="bounced").body() == {"tila": "bounced"}
    assert NippuPatch(tila="lahetetty", voimassa_loppupvm=date(2022, 4, 1)).body() == {
        "tila": "lahetetty",
        "voimassa_loppupvm": "2022-04-01",
    }
    with pytest.raises(ValidationError):
        NippuPatch(tila="sent")  # type: ignore[arg-type]


@pytest.mark.parametrize("tunniste", ["Perhosen_2022", "a b", ""])
def test_nippu_tunniste_only_lowercase_digits_dash_underscore(tunniste: str) -> None:
    with pytest.raises(ValidationError):
        NippuRequest(
            tunniste=tunniste,
            koulutustoimija_oid="1.2.3",
            tutkintotunnus="1",
            tyonantaja="1234567-8",
            tyopaikka="x",
            tunnukset=[{"tunnus": "A", "tyopaikkajakson_loppupvm": "2022-01-01"}],  # type: ignore[list-item]
            voimassa_alkupvm=date(2022, 1, 1),
            request_id=uuid.uuid4(),
        )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert _retry_after(header) == seconds
