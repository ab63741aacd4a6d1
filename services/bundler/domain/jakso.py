"""Input types of the bundler's rules: jakso, HOKS and study right (opiskeluoikeus).

Frozen dataclasses with the names of the event payloads (`shared.events`, the contract);
`from_events` fills them from `hoks.changed` and `opiskeluoikeus.changed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeGuard

from shared.domain.koodisto import Hankkimistapa
from shared.events import TutkinnonOsaKind


def is_present(text: str | None) -> TypeGuard[str]:
    """A value is present unless None, empty or only whitespace (E12)."""
    return text is not None and bool(text.strip())


def normalize_ytunnus(y_tunnus: str) -> str:
    """N1, J4, T3: a y-tunnus compares without surrounding whitespace."""
    return y_tunnus.strip()


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
class Ohjaaja:
    """The vastuullinen työpaikkaohjaaja; any field may be missing (E12, C3)."""

    nimi: str | None = None
    sahkoposti: str | None = None
    puhelinnumero: str | None = None


@dataclass(frozen=True)
class TutkinnonOsa:
    """The tutkinnon osa a jakso belongs to (J3, J4), as `hoks.changed` names it.

    `koodi_uri` is the tutkinnon osa's (or TUVA koulutuksen osa's) koodi-uri, `koodi` the
    code after `tutkinnonosat_`, `nimi` the name of a paikallinen tutkinnon osa, and
    `osa_alue_koodi_uri` the osa-alue of a yhteinen tutkinnon osa.
    """

    kind: TutkinnonOsaKind
    koodi_uri: str | None = None
    koodi: str | None = None
    nimi: str | None = None
    osa_alue_koodi_uri: str | None = None


@dataclass(frozen=True)
class Jakso:
    """A työpaikkajakso: one oppisopimus or koulutussopimus of a HOKS (J1).

    Field names are those of `shared.events.JaksoPayload` (the contract). Without
    `yksiloiva_tunniste` the jakso is known by `path`, its place in the HOKS document
    (J2). `loppu` is the herätepäivä. `poistettu`: the jakso was removed from its HOKS
    (E14), which a payload says by leaving it out.
    """

    hoks_id: int
    yksiloiva_tunniste: str | None
    hankkimistapa: Hankkimistapa
    alku: date
    loppu: date | None
    osa_aikaisuus: int | None
    tyopaikan_nimi: str | None
    tyopaikan_ytunnus: str | None
    ohjaaja: Ohjaaja
    tutkinnon_osa: TutkinnonOsa
    keskeytymisajanjaksot: tuple[Keskeytymisajanjakso, ...] = ()
    oppisopimuksen_perusta: str | None = None
    """The code after `oppisopimuksenperusta_` ("02": an entrepreneur's own, T2)."""
    path: str = ""
    poistettu: bool = False

    @property
    def id(self) -> JaksoId:
        """J2: the identity used everywhere (bundles, states, reports)."""
        if self.yksiloiva_tunniste is not None:
            return JaksoId(self.hoks_id, self.yksiloiva_tunniste)
        return JaksoId(self.hoks_id, self.path, is_path=True)

    @property
    def tunniste_puuttuu(self) -> bool:
        """J2: such a jakso is still surveyed but flagged in the contact-data report."""
        return self.yksiloiva_tunniste is None

    def is_interrupted_on(self, day: date) -> bool:
        """E9, K1: one of the jakso's keskeytymisajanjaksot covers `day`."""
        return any(k.covers(day) for k in self.keskeytymisajanjaksot)


@dataclass(frozen=True)
class Hoks:
    """The HOKS-level facts the rules read (names as in `shared.events.HoksChanged`)."""

    hoks_id: int
    oppija_oid: str
    opiskeluoikeus_oid: str
    is_tuva: bool = False
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

    tyyppi: str | None
    tutkinto: str | None
    osaamisalat: tuple[str, ...] = ()
    tutkintonimikkeet: tuple[str, ...] = ()
    toimipiste_oid: str | None = None
    suorituskieli: str | None = None


@dataclass(frozen=True)
class Opiskeluoikeusjakso:
    """A study-right state from `alku` until the next state's `alku` − 1."""

    alku: date
    tila: str | None
    opintojen_rahoitus: str | None = None


@dataclass(frozen=True)
class Opiskeluoikeus:
    """The study right (Koski) of a HOKS: what E3–E10, N1 and K1 read.

    Field names are those of `shared.events.OpiskeluoikeusChanged` (the contract).
    """

    oid: str
    koulutustoimija_oid: str | None
    oppilaitos_oid: str | None
    tyyppi: str | None
    opiskeluoikeusjaksot: tuple[Opiskeluoikeusjakso, ...] = ()
    sisaltyy_opiskeluoikeuteen: str | None = None
    """E6: the oid of the study right this one is contained in."""
    suoritukset: tuple[Suoritus, ...] = ()
    oppisopimuksen_purkamispaiva: date | None = None
    """E10: oppisopimuksenPurkaminen.päivä, the day the apprenticeship contract ended."""

    @property
    def jaksot_in_order(self) -> tuple[Opiskeluoikeusjakso, ...]:
        """The states by `alku` (a payload already sorts them; a stored row may not)."""
        return tuple(sorted(self.opiskeluoikeusjaksot, key=lambda t: t.alku))

    def tila_on(self, day: date) -> Opiskeluoikeusjakso | None:
        """The state in force on `day`, or None before the first state."""
        in_force = [t for t in self.jaksot_in_order if t.alku <= day]
        return in_force[-1] if in_force else None

    def periods_in(self, tila: str) -> tuple[tuple[date, date | None], ...]:
        """(alku, loppu) of each period in `tila`; the last state never ends (K1)."""
        ordered = self.jaksot_in_order
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
    def is_tuva_tai_telma(self) -> bool:
        """E4: a TUVA study right, or one with a TELMA suoritus."""
        return self.tyyppi in TUVA_TAI_TELMA_TYYPIT or any(
            s.tyyppi in TUVA_TAI_TELMA_TYYPIT for s in self.suoritukset
        )
