"""J1 and koodi-uri codes (shared.domain.koodisto)."""

import pytest

from shared.domain.koodisto import Hankkimistapa, jakso_hankkimistapa, koodiarvo, without_version


@pytest.mark.parametrize(
    ("koodi_uri", "expected"),
    [
        ("osaamisenhankkimistapa_oppisopimus", Hankkimistapa.OPPISOPIMUS),
        ("osaamisenhankkimistapa_koulutussopimus#1", Hankkimistapa.KOULUTUSSOPIMUS),
        ("osaamisenhankkimistapa_oppilaitosmuotoinenkoulutus", None),
        ("osaamisenhankkimistapa_muu", None),
        ("muukoodisto_oppisopimus", None),
        ("oppisopimus", None),
    ],
    ids=[
        "J1-oppisopimus",
        "J1-koulutussopimus-versioned",
        "J1-oppilaitos-not-jakso",
        "J1-muu",
        "J1-other-koodisto",
        "J1-bare-code",
    ],
)
def test_which_hankkimistavat_are_jaksot(koodi_uri: str, expected: Hankkimistapa | None) -> None:
    assert jakso_hankkimistapa(koodi_uri) is expected


@pytest.mark.parametrize(
    ("koodi_uri", "koodisto", "expected"),
    [
        ("tutkinnonosat_106233#2", "tutkinnonosat", "106233"),
        ("oppisopimuksenperusta_02", "oppisopimuksenperusta", "02"),
        ("tutkinnonosat_", "tutkinnonosat", None),
        ("tutkinnonosat106233", "tutkinnonosat", None),
        ("ammatillisenoppiaineet_ku", "tutkinnonosat", None),
    ],
    ids=["versioned", "leading-zero-kept", "no-code", "no-separator", "other-koodisto"],
)
def test_koodiarvo(koodi_uri: str, koodisto: str, expected: str | None) -> None:
    assert koodiarvo(koodi_uri, koodisto) == expected


def test_without_version() -> None:
    assert without_version("tutkinnonosat_106233#2") == without_version("tutkinnonosat_106233")
