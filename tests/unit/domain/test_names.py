"""N4 name normalisation and N2 bundle identifiers (shared.domain.names)."""

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.names import nippu_tunniste, normalize_name, suffix_from_bytes


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Perhosen Päiväkoti", "perhosen_paivakoti"),
        ("  Ääkkös-Åbo Oy, (Turku)  ", "aakkos_abo_oy_turku"),
        ("Café Crème", "cafe_creme"),
        ("K-Market 24/7", "k_market_24_7"),
        ("Øresund ß", "resund"),
        ("---", ""),
    ],
    ids=["N4-example", "N4-runs-and-trim", "N4-accents", "N4-digits", "N4-non-ascii", "N4-empty"],
)
def test_normalize_name(name: str, expected: str) -> None:
    assert normalize_name(name) == expected


def test_nippu_tunniste_joins_name_date_and_suffix() -> None:
    tunniste = nippu_tunniste("Perhosen Päiväkoti", date(2022, 3, 16), "1a2b")
    assert tunniste == "perhosen_paivakoti_2022-03-16_1a2b"


def test_nippu_tunniste_of_unnamed_workplace_still_has_a_name_part() -> None:
    assert nippu_tunniste("???", date(2022, 3, 16), "ff") == "tyopaikka_2022-03-16_ff"


@pytest.mark.parametrize(
    "suffix", ["", "AB", "a b", "ä1"], ids=["N2-empty", "N2-upper", "N2-space", "N2-accent"]
)
def test_nippu_tunniste_rejects_a_bad_suffix(suffix: str) -> None:
    with pytest.raises(ValueError, match="suffix"):
        nippu_tunniste("Työpaikka", date(2022, 3, 16), suffix)


def test_suffix_from_bytes_is_hex_and_needs_randomness() -> None:
    assert suffix_from_bytes(b"\x01\xab") == "01ab"
    with pytest.raises(ValueError, match="random byte"):
        suffix_from_bytes(b"")


@given(name=st.text(), random_bytes=st.binary(min_size=1, max_size=16), day=st.dates())
def test_nippu_tunniste_uses_only_arvo_characters(
    name: str, random_bytes: bytes, day: date
) -> None:
    """N2 property: whatever the name, the identifier is `[a-z0-9_-]` only."""
    tunniste = nippu_tunniste(name, day, suffix_from_bytes(random_bytes))
    assert re.fullmatch(r"[a-z0-9_-]+", tunniste)


@given(name=st.text())
def test_normalize_name_is_idempotent(name: str) -> None:
    """N4 property: normalising twice changes nothing (keys stay stable)."""
    assert normalize_name(normalize_name(name)) == normalize_name(name)
