"""Payloads of the events the ingest publishes (api.md "Events").

One pydantic model per event type, carried in the envelope's `payload` (the envelope is
`shared.messaging`). They live in `shared/` because the bundler consumes them: producer
and consumers validate against the same model. `TYPE` is the envelope `type` and the
routing key. Payloads are complete snapshots, not diffs: a consumer that sees
`hoks.changed` version 3 can replace everything it derived from version 2 (E14, E18:
a jakso missing from the new version was removed from the HOKS).

Field names are snake_case (our own JSON); dates are ISO `YYYY-MM-DD`. Unknown fields are
ignored on reading, so adding a field is backward compatible; renaming or removing one
needs a new `SCHEMA_VERSION`.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from shared.domain.koodisto import Hankkimistapa


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# --- hoks.changed -------------------------------------------------------------------


class KeskeytymisajanjaksoPayload(_Part):
    """An interruption of a jakso; `loppu` None = still interrupted (E9, K1)."""

    alku: dt.date
    loppu: dt.date | None = None


class OhjaajaPayload(_Part):
    """The responsible workplace instructor as eHOKS has it, unnormalised (C1, C2 later).

    Personal data: consumers keep it only as long as P1 allows.
    """

    nimi: str | None = None
    sahkoposti: str | None = None
    puhelinnumero: str | None = None


TutkinnonOsaKind = Literal["ammatillinen", "paikallinen", "yhteinen", "koulutuksen_osa"]


class TutkinnonOsaPayload(_Part):
    """The tutkinnon osa a jakso belongs to (J3, J4).

    `koodi_uri`: `tutkinnon-osa-koodi-uri` (or `koulutuksen-osa-koodi-uri` for a TUVA
    koulutuksen osa); `koodi`: the code after `tutkinnonosat_`; `nimi`: name of a local
    tutkinnon osa; `osa_alue_koodi_uri`: the osa-alue of a yhteinen tutkinnon osa.
    """

    kind: TutkinnonOsaKind
    koodi_uri: str | None = None
    koodi: str | None = None
    nimi: str | None = None
    osa_alue_koodi_uri: str | None = None


class JaksoPayload(_Part):
    """One workplace period (J1) with everything the bundler's rules read.

    Identity (J2): (hoks_id, yksiloiva_tunniste), or (hoks_id, path) when
    `tunniste_puuttuu`; `path` is always given, e.g.
    `hankittavat-ammat-tutkinnon-osat[0].osaamisen-hankkimistavat[1]`.
    `osa_aikaisuus` is passed as given (any integer): E11 and K2 judge it.
    `oppisopimuksen_perusta` is the code after `oppisopimuksenperusta_` ("02" = the
    entrepreneur's own apprenticeship, excluded from TPK by T2).
    """

    yksiloiva_tunniste: str | None
    path: str
    tunniste_puuttuu: bool
    hankkimistapa: Hankkimistapa
    alku: dt.date
    loppu: dt.date | None = None
    osa_aikaisuus: int | None = None
    keskeytymisajanjaksot: list[KeskeytymisajanjaksoPayload] = []
    oppisopimuksen_perusta: str | None = None
    tyopaikan_nimi: str | None = None
    tyopaikan_ytunnus: str | None = None
    ohjaaja: OhjaajaPayload | None = None
    tutkinnon_osa: TutkinnonOsaPayload


class HoksChanged(_Payload):
    """A new version of a HOKS was stored: its full list of jaksot (J1, J2).

    `is_tuva`: the HOKS has hankittavat koulutuksen osat (TUVA/TELMA), so E4 applies.
    `version` grows by one per changed content of this HOKS; consumers ignore a version
    lower than one they have already applied (messages may be redelivered or reordered).
    """

    TYPE: ClassVar[str] = "hoks.changed"

    hoks_id: int
    oppija_oid: str
    opiskeluoikeus_oid: str
    version: int
    is_tuva: bool
    jaksot: list[JaksoPayload]


class HoksDeleted(_Payload):
    """The HOKS was deleted: pending surveys of its jaksot are cancelled (E14)."""

    TYPE: ClassVar[str] = "hoks.deleted"

    hoks_id: int
    version: int


# --- opiskeluoikeus.changed -----------------------------------------------------------


class OpiskeluoikeusjaksoPayload(_Part):
    """A state of the study right from `alku` until the next jakso's `alku` (E7, E8, K1)."""

    alku: dt.date
    tila: str | None = None
    opintojen_rahoitus: str | None = None


class SuoritusPayload(_Part):
    """A suoritus of the study right: its type (E5), tutkinto (N1) and context.

    Codes are Koodisto `koodiarvo`s; `osaamisalat` and `tutkintonimikkeet` are lists of
    them.
    """

    tyyppi: str | None = None
    tutkinto: str | None = None
    osaamisalat: list[str] = []
    tutkintonimikkeet: list[str] = []
    toimipiste_oid: str | None = None
    suorituskieli: str | None = None


class OpiskeluoikeusChanged(_Payload):
    """A new version of a Koski study right: what the E rules read from it.

    `koulutustoimija_oid` is `koulutustoimija.oid`, else the oppilaitos' parent when the
    document names it, else None. `opiskeluoikeusjaksot` are sorted by `alku`.
    `sisaltyy_opiskeluoikeuteen` is the containing study right's oid (E6).
    `oppisopimuksen_purkamispaiva` is the earliest contract termination date (E10, E16).
    """

    TYPE: ClassVar[str] = "opiskeluoikeus.changed"

    oid: str
    version: int
    koulutustoimija_oid: str | None = None
    oppilaitos_oid: str | None = None
    tyyppi: str | None = None
    sisaltyy_opiskeluoikeuteen: str | None = None
    opiskeluoikeusjaksot: list[OpiskeluoikeusjaksoPayload] = []
    suoritukset: list[SuoritusPayload] = []
    oppisopimuksen_purkamispaiva: dt.date | None = None
