"""Input types of the bundler's rules: jakso, HOKS and study right (opiskeluoikeus).

Frozen dataclasses filled by the bundler from the stored eHOKS and Koski documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import TypeGuard


class Hankkimistapa(StrEnum):
    """The osaamisen hankkimistapa types that make a jakso (J1)."""

    KOULUTUSSOPIMUS = "koulutussopimus"
    OPPISOPIMUS = "oppisopimus"


def koodiarvo(koodi_uri: str) -> str:
    """The value after the koodisto prefix, without a version.

    "osaamisenhankkimistapa_oppisopimus#1" → "oppisopimus".
    """
    return koodi_uri.split("#", 1)[0].rsplit("_", 1)[-1]


def hankkimistapa(koodi_uri: str) -> Hankkimistapa | None:
    """J1: oppisopimus and koulutussopimus are jaksot; every other type (None) is not."""
    try:
        return Hankkimistapa(koodiarvo(koodi_uri))
    except ValueError:
        return None


def is_present(text: str | None) -> TypeGuard[str]:
    """A value is present unless None, empty or only whitespace (E12)."""
    return text is not None and bool(text.strip())


@dataclass(frozen=True, order=True)
class JaksoId:
    """J2: (HOKS id, yksiloiva-tunniste), or (HOKS id, path in the document) without one."""

    hoks_id: int
    tunniste: str
    is_path: bool = False


@dataclass(frozen=True)
class Keskeytymisajanjakso:
    """An interruption of a jakso; open-ended when `loppu` is None."""

    alku: date
    loppu: date | None = None

    def covers(self, day: date) -> bool:
        """E9, K1: the interruption includes `day` (both ends inclusive)."""
        return self.alku <= day and (self.loppu is None or day <= self.loppu)


@dataclass(frozen=True)
class Tyopaikka:
    nimi: str | None
    y_tunnus: str | None


@dataclass(frozen=True)
class Ohjaaja:
    """The vastuullinen työpaikkaohjaaja."""

    nimi: str | None
    sahkoposti: str | None = None
    puhelinnumero: str | None = None


@dataclass(frozen=True)
class Jakso:
    """A työpaikkajakso: one oppisopimus or koulutussopimus of a HOKS (J1).

    `yksiloiva_tunniste` is None when eHOKS has none; `polku` (the path in the HOKS
    document) then identifies the jakso (J2). `loppu` is the herätepäivä.
    """

    hoks_id: int
    yksiloiva_tunniste: str | None
    hankkimistapa: Hankkimistapa
    alku: date
    loppu: date | None
    osa_aikaisuus: int | None
    tyopaikka: Tyopaikka
    ohjaaja: Ohjaaja
    tutkinnon_osa: str | None = None
    keskeytymisajanjaksot: tuple[Keskeytymisajanjakso, ...] = ()
    oppisopimuksen_perusta: str | None = None
    polku: str = ""
    poistettu: bool = False

    @property
    def id(self) -> JaksoId:
        """J2: the identity used everywhere (bundles, states, reports)."""
        if self.yksiloiva_tunniste is not None:
            return JaksoId(self.hoks_id, self.yksiloiva_tunniste)
        return JaksoId(self.hoks_id, self.polku, is_path=True)

    @property
    def lacks_yksiloiva_tunniste(self) -> bool:
        """J2: such a jakso is still surveyed but flagged in the contact-data report."""
        return self.yksiloiva_tunniste is None

    def is_interrupted_on(self, day: date) -> bool:
        """E9, K1: one of the jakso's keskeytymisajanjaksot covers `day`."""
        return any(k.covers(day) for k in self.keskeytymisajanjaksot)


@dataclass(frozen=True)
class Hoks:
    """The HOKS-level facts the rules read."""

    id: int
    oppija_oid: str
    opiskeluoikeus_oid: str
    tuva_tai_telma: bool = False
    """E4: the HOKS has hankittavat-koulutuksen-osat (TUVA/TELMA)."""
    poistettu: bool = False


#: Koski suoritus types of vocational degree education (E5).
AMMATILLISET_SUORITUSTYYPIT = frozenset(
    {
        "ammatillinentutkinto",
        "ammatillinentutkintoosittainen",
        "ammatillinentutkintoosittainenuseastatutkinnosta",
    }
)
#: Koski opiskeluoikeus and suoritus types of TUVA and TELMA (E4).
TUVA_TAI_TELMA_TYYPIT = frozenset({"tuva", "telma", "tuvakoulutuksensuoritus"})


@dataclass(frozen=True)
class Suoritus:
    """One Koski suoritus: `tutkinto` is koulutusmoduuli.tunniste.koodiarvo."""

    tyyppi: str
    tutkinto: str
    osaamisalat: tuple[str, ...] = ()
    tutkintonimikkeet: tuple[str, ...] = ()
    toimipiste_oid: str | None = None
    suorituskieli: str | None = None


@dataclass(frozen=True)
class Opiskeluoikeusjakso:
    """A study-right state from `alku` until the next state's `alku` − 1."""

    alku: date
    tila: str
    opintojen_rahoitus: str | None = None


@dataclass(frozen=True)
class Opiskeluoikeus:
    """The study right (Koski) of a HOKS: what E3–E10 and K1 read."""

    oid: str
    koulutustoimija_oid: str
    oppilaitos_oid: str
    tyyppi: str
    tilat: tuple[Opiskeluoikeusjakso, ...] = ()
    sisaltyy_toiseen: bool = False
    suoritukset: tuple[Suoritus, ...] = ()
    sopimus_purettu_pvm: date | None = None
    """E10: oppisopimuksenPurkaminen.päivä, the day the apprenticeship contract ended."""

    @property
    def tilat_in_order(self) -> tuple[Opiskeluoikeusjakso, ...]:
        return tuple(sorted(self.tilat, key=lambda t: t.alku))

    def tila_on(self, day: date) -> Opiskeluoikeusjakso | None:
        """The state in force on `day`, or None before the first state."""
        in_force = [t for t in self.tilat_in_order if t.alku <= day]
        return in_force[-1] if in_force else None

    def periods_in(self, tila: str) -> tuple[tuple[date, date | None], ...]:
        """(alku, loppu) of each period in `tila`; the last state never ends (K1)."""
        ordered = self.tilat_in_order
        ends: list[date | None] = [t.alku - timedelta(days=1) for t in ordered[1:]]
        ends.append(None)
        return tuple(
            (state.alku, end)
            for state, end in zip(ordered, ends, strict=True)
            if state.tila == tila
        )

    @property
    def ammatillinen_suoritus(self) -> Suoritus | None:
        """E5, N1: the vocational degree suoritus whose tutkinto the bundle key uses."""
        return next((s for s in self.suoritukset if s.tyyppi in AMMATILLISET_SUORITUSTYYPIT), None)

    @property
    def tuva_tai_telma(self) -> bool:
        """E4: a TUVA study right, or one with a TELMA suoritus."""
        return self.tyyppi in TUVA_TAI_TELMA_TYYPIT or any(
            s.tyyppi in TUVA_TAI_TELMA_TYYPIT for s in self.suoritukset
        )
