"""The ingest's events → the bundler's domain values: the one place where a payload
(`shared.events`, pydantic, the contract) becomes the frozen dataclasses the rules read.

Field names are the same on both sides; what changes is shape: lists become tuples, a
missing `ohjaaja` becomes an `Ohjaaja` with no fields (E12 then decides), and J2's
identity is settled here: a jakso flagged `tunniste_puuttuu` is known by its `path`
even if the payload also carries a (blank) tunniste.
"""

from __future__ import annotations

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
from shared.events import HoksChanged, JaksoPayload, OpiskeluoikeusChanged


def hoks(payload: HoksChanged) -> Hoks:
    """The HOKS-level facts of `hoks.changed` (E4 reads `is_tuva`)."""
    return Hoks(
        hoks_id=payload.hoks_id,
        oppija_oid=payload.oppija_oid,
        opiskeluoikeus_oid=payload.opiskeluoikeus_oid,
        is_tuva=payload.is_tuva,
    )


def jaksot(payload: HoksChanged) -> tuple[Jakso, ...]:
    """Every jakso of the HOKS version (J1); one missing from it was removed (E14)."""
    return tuple(jakso(payload.hoks_id, j) for j in payload.jaksot)


def jakso(hoks_id: int, payload: JaksoPayload) -> Jakso:
    """One jakso of HOKS `hoks_id`; identified by yksiloiva-tunniste, else path (J2)."""
    ohjaaja = payload.ohjaaja
    osa = payload.tutkinnon_osa
    return Jakso(
        hoks_id=hoks_id,
        yksiloiva_tunniste=None if payload.tunniste_puuttuu else payload.yksiloiva_tunniste,
        path=payload.path,
        hankkimistapa=payload.hankkimistapa,
        alku=payload.alku,
        loppu=payload.loppu,
        osa_aikaisuus=payload.osa_aikaisuus,
        keskeytymisajanjaksot=tuple(
            Keskeytymisajanjakso(k.alku, k.loppu) for k in payload.keskeytymisajanjaksot
        ),
        oppisopimuksen_perusta=payload.oppisopimuksen_perusta,
        tyopaikan_nimi=payload.tyopaikan_nimi,
        tyopaikan_ytunnus=payload.tyopaikan_ytunnus,
        ohjaaja=(
            Ohjaaja()
            if ohjaaja is None
            else Ohjaaja(ohjaaja.nimi, ohjaaja.sahkoposti, ohjaaja.puhelinnumero)
        ),
        tutkinnon_osa=TutkinnonOsa(
            kind=osa.kind,
            koodi_uri=osa.koodi_uri,
            koodi=osa.koodi,
            nimi=osa.nimi,
            osa_alue_koodi_uri=osa.osa_alue_koodi_uri,
        ),
    )


def opiskeluoikeus(payload: OpiskeluoikeusChanged) -> Opiskeluoikeus:
    """The study right as E3–E10, N1 and K1 read it."""
    return Opiskeluoikeus(
        oid=payload.oid,
        koulutustoimija_oid=payload.koulutustoimija_oid,
        oppilaitos_oid=payload.oppilaitos_oid,
        tyyppi=payload.tyyppi,
        opiskeluoikeusjaksot=tuple(
            Opiskeluoikeusjakso(j.alku, j.tila, j.opintojen_rahoitus)
            for j in payload.opiskeluoikeusjaksot
        ),
        sisaltyy_opiskeluoikeuteen=payload.sisaltyy_opiskeluoikeuteen,
        suoritukset=tuple(
            Suoritus(
                tyyppi=s.tyyppi,
                tutkinto=s.tutkinto,
                osaamisalat=tuple(s.osaamisalat),
                tutkintonimikkeet=tuple(s.tutkintonimikkeet),
                toimipiste_oid=s.toimipiste_oid,
                suorituskieli=s.suorituskieli,
            )
            for s in payload.suoritukset
        ),
        oppisopimuksen_purkamispaiva=payload.oppisopimuksen_purkamispaiva,
    )
