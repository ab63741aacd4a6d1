"""Plain builders of domain inputs for the unit tests (no fixtures, no I/O)."""

from __future__ import annotations

from datetime import date

from services.bundler.domain.jakso import (
    Hoks,
    Jakso,
    Keskeytymisajanjakso,
    Ohjaaja,
    Opiskeluoikeus,
    Opiskeluoikeusjakso,
    Suoritus,
    TutkinnonOsa,
)
from shared.domain.koodisto import Hankkimistapa

d = date.fromisoformat

KOULUTUSTOIMIJA = "1.2.246.562.10.346830761110"
OPPILAITOS = "1.2.246.562.10.52251087186"


def jakso(
    alku: str = "2024-01-08",
    loppu: str | None = "2024-03-15",
    *,
    hoks_id: int = 1,
    tunniste: str | None = "jakso-1",
    hankkimistapa: Hankkimistapa = Hankkimistapa.KOULUTUSSOPIMUS,
    osa_aikaisuus: int | None = 100,
    tyopaikka: str | None = "Perhosen Päiväkoti",
    y_tunnus: str | None = "1234567-8",
    ohjaaja: str | None = "Olli Ohjaaja",
    sahkoposti: str | None = "olli@perhonen.fi",
    puhelinnumero: str | None = "0401234567",
    keskeytykset: tuple[tuple[str, str | None], ...] = (),
    oppisopimuksen_perusta: str | None = None,
    tutkinnon_osa: str | None = "tutkinnonosat_106945",
    osa_alue: str | None = None,
    path: str = "hankittavat-ammat-tutkinnon-osat[0].osaamisen-hankkimistavat[0]",
    poistettu: bool = False,
) -> Jakso:
    return Jakso(
        hoks_id=hoks_id,
        yksiloiva_tunniste=tunniste,
        hankkimistapa=hankkimistapa,
        alku=d(alku),
        loppu=d(loppu) if loppu else None,
        osa_aikaisuus=osa_aikaisuus,
        tyopaikan_nimi=tyopaikka,
        tyopaikan_ytunnus=y_tunnus,
        ohjaaja=Ohjaaja(ohjaaja, sahkoposti, puhelinnumero),
        tutkinnon_osa=TutkinnonOsa(
            "yhteinen" if osa_alue else "ammatillinen",
            koodi_uri=tutkinnon_osa,
            osa_alue_koodi_uri=osa_alue,
        ),
        keskeytymisajanjaksot=tuple(
            Keskeytymisajanjakso(d(a), d(b) if b else None) for a, b in keskeytykset
        ),
        oppisopimuksen_perusta=oppisopimuksen_perusta,
        path=path,
        poistettu=poistettu,
    )


def hoks(*, hoks_id: int = 1, is_tuva: bool = False, poistettu: bool = False) -> Hoks:
    return Hoks(
        hoks_id=hoks_id,
        oppija_oid="1.2.246.562.24.44651722625",
        opiskeluoikeus_oid="1.2.246.562.15.76811932037",
        is_tuva=is_tuva,
        poistettu=poistettu,
    )


def opiskeluoikeus(
    *,
    opiskeluoikeusjaksot: tuple[tuple[str, str, str | None], ...] = (("2020-08-01", "lasna", "1"),),
    tyyppi: str = "ammatillinenkoulutus",
    suoritustyyppi: str = "ammatillinentutkinto",
    tutkinto: str = "351301",
    sisaltyy_opiskeluoikeuteen: str | None = None,
    oppisopimuksen_purkamispaiva: str | None = None,
    koulutustoimija: str = KOULUTUSTOIMIJA,
) -> Opiskeluoikeus:
    return Opiskeluoikeus(
        oid="1.2.246.562.15.76811932037",
        koulutustoimija_oid=koulutustoimija,
        oppilaitos_oid=OPPILAITOS,
        tyyppi=tyyppi,
        opiskeluoikeusjaksot=tuple(
            Opiskeluoikeusjakso(d(a), tila, rahoitus) for a, tila, rahoitus in opiskeluoikeusjaksot
        ),
        sisaltyy_opiskeluoikeuteen=sisaltyy_opiskeluoikeuteen,
        suoritukset=(Suoritus(suoritustyyppi, tutkinto, ("1525",), ("10024",), OPPILAITOS, "FI"),),
        oppisopimuksen_purkamispaiva=(
            d(oppisopimuksen_purkamispaiva) if oppisopimuksen_purkamispaiva else None
        ),
    )
