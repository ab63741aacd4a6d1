"""Plain builders of domain inputs for the unit tests (no fixtures, no I/O)."""

from __future__ import annotations

from datetime import date

from services.bundler.domain.jakso import (
    Hankkimistapa,
    Hoks,
    Jakso,
    Keskeytymisajanjakso,
    Ohjaaja,
    Opiskeluoikeus,
    Opiskeluoikeusjakso,
    Suoritus,
    Tyopaikka,
)

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
    poistettu: bool = False,
) -> Jakso:
    return Jakso(
        hoks_id=hoks_id,
        yksiloiva_tunniste=tunniste,
        hankkimistapa=hankkimistapa,
        alku=d(alku),
        loppu=d(loppu) if loppu else None,
        osa_aikaisuus=osa_aikaisuus,
        tyopaikka=Tyopaikka(tyopaikka, y_tunnus),
        ohjaaja=Ohjaaja(ohjaaja, sahkoposti, puhelinnumero),
        tutkinnon_osa=tutkinnon_osa,
        keskeytymisajanjaksot=tuple(
            Keskeytymisajanjakso(d(a), d(b) if b else None) for a, b in keskeytykset
        ),
        oppisopimuksen_perusta=oppisopimuksen_perusta,
        polku="hankittavat-ammat-tutkinnon-osat/0/osaamisen-hankkimistavat/0",
        poistettu=poistettu,
    )


def hoks(*, hoks_id: int = 1, tuva_tai_telma: bool = False, poistettu: bool = False) -> Hoks:
    return Hoks(
        id=hoks_id,
        oppija_oid="1.2.246.562.24.44651722625",
        opiskeluoikeus_oid="1.2.246.562.15.76811932037",
        tuva_tai_telma=tuva_tai_telma,
        poistettu=poistettu,
    )


def opiskeluoikeus(
    *,
    tilat: tuple[tuple[str, str, str | None], ...] = (("2020-08-01", "lasna", "1"),),
    tyyppi: str = "ammatillinenkoulutus",
    suoritustyyppi: str = "ammatillinentutkinto",
    tutkinto: str = "351301",
    sisaltyy_toiseen: bool = False,
    sopimus_purettu: str | None = None,
    koulutustoimija: str = KOULUTUSTOIMIJA,
) -> Opiskeluoikeus:
    return Opiskeluoikeus(
        oid="1.2.246.562.15.76811932037",
        koulutustoimija_oid=koulutustoimija,
        oppilaitos_oid=OPPILAITOS,
        tyyppi=tyyppi,
        tilat=tuple(Opiskeluoikeusjakso(d(a), tila, rahoitus) for a, tila, rahoitus in tilat),
        sisaltyy_toiseen=sisaltyy_toiseen,
        suoritukset=(Suoritus(suoritustyyppi, tutkinto, ("1525",), ("10024",), OPPILAITOS, "FI"),),
        sopimus_purettu_pvm=d(sopimus_purettu) if sopimus_purettu else None,
    )
