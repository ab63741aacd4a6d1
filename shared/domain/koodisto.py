"""Koodisto codes as eHOKS writes them, and which hankkimistavat are jaksot (J1).

A koodi-uri is `<koodisto>_<koodiarvo>`, optionally with `#<version>`:
`osaamisenhankkimistapa_oppisopimus#1`, `tutkinnonosat_106233`.
"""

from __future__ import annotations

from enum import StrEnum

#: The koodisto of osaamisen hankkimistavat (J1).
OSAAMISENHANKKIMISTAPA = "osaamisenhankkimistapa"


class Hankkimistapa(StrEnum):
    """The osaamisen hankkimistapa types that make a jakso (J1)."""

    KOULUTUSSOPIMUS = "koulutussopimus"
    OPPISOPIMUS = "oppisopimus"


_HANKKIMISTAVAT = {tapa.value: tapa for tapa in Hankkimistapa}


def koodiarvo(koodi_uri: str, koodisto: str) -> str | None:
    """The code of `koodi_uri` in `koodisto`, without its version; None when the uri
    belongs to another koodisto or has no code.

    ("tutkinnonosat_106233#2", "tutkinnonosat") → "106233".
    """
    prefix = f"{koodisto}_"
    base = koodi_uri.split("#", 1)[0]
    if base.startswith(prefix) and len(base) > len(prefix):
        return base[len(prefix) :]
    return None


def without_version(koodi_uri: str) -> str:
    """J4: `tutkinnonosat_106233#2` and `tutkinnonosat_106233` name the same code."""
    return koodi_uri.split("#", 1)[0]


def jakso_hankkimistapa(koodi_uri: str) -> Hankkimistapa | None:
    """J1: an osaamisen hankkimistapa of type oppisopimus or koulutussopimus is a jakso;
    any other type (`oppilaitosmuotoinenkoulutus`, `muu`...) is not (None)."""
    arvo = koodiarvo(koodi_uri, OSAAMISENHANKKIMISTAPA)
    return _HANKKIMISTAVAT.get(arvo) if arvo is not None else None
