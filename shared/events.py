"""Payloads of every event (api.md "Events").

One pydantic model per event type, carried in the envelope's `payload` (the envelope is
`shared.messaging`). They live in `shared/` because producer and consumers are different
services: both validate against the same model. `TYPE` is the envelope `type` and the
routing key. Payloads are complete snapshots, not diffs: a consumer that sees
`hoks.changed` version 3 can replace everything it derived from version 2 (E14, E18:
a jakso missing from the new version was removed from the HOKS).

Field names are snake_case (our own JSON); dates are ISO `YYYY-MM-DD`. Unknown fields are
ignored on reading, so adding a field is backward compatible; renaming or removing one
needs a new `SCHEMA_VERSION`.
"""

from __future__ import annotations

import datetime as dt
import uuid
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
    `oppilaitos_nimi` is `oppilaitos.nimi` (fi, else sv, else en): messages name the
    oppilaitos (S5).
    """

    TYPE: ClassVar[str] = "opiskeluoikeus.changed"

    oid: str
    version: int
    koulutustoimija_oid: str | None = None
    oppilaitos_oid: str | None = None
    oppilaitos_nimi: str | None = None
    tyyppi: str | None = None
    sisaltyy_opiskeluoikeuteen: str | None = None
    opiskeluoikeusjaksot: list[OpiskeluoikeusjaksoPayload] = []
    suoritukset: list[SuoritusPayload] = []
    oppisopimuksen_purkamispaiva: dt.date | None = None


# --- The survey flow: bundler ⇄ arvo_adapter, bundler ⇄ sender ----------------------
#
# Ids: `jakso_id` is the bundler's integer id of a jakso row (stable for its life);
# `nippu_id` and `tpk_nippu_id` are the bundler's UUIDs of a bundle; `tunniste` is the
# bundle's identifier in Arvo (N2). Dates are calendar dates in Europe/Helsinki.

ArvoNippuTila = Literal[
    "odottaa_lahetysta",
    "lahetetty",
    "lahetys_epaonnistunut",
    "bounced",
    "ei_kelvollisia_yhteystietoja",
    "vastausaika_loppunut_ennen_lahetysta",
    "vastausaika_loppunut_ennen_muistutusta",
    "vastattu",
]
"""The bundle statuses Arvo knows (arvo-api.md, PATCH nippu)."""


class NippuJaksoPayload(_Part):
    """One jakso of a TEP bundle: the background data of its answer code (arvo-api.md,
    POST vastaajatunnus), kesto (K1–K3) included. Field names are Arvo's."""

    jakso_id: int
    koulutustoimija_oid: str
    oppilaitos_oid: str | None = None
    toimipiste_oid: str | None = None
    tyonantaja: str
    tyopaikka: str
    tyopaikka_normalisoitu: str
    tutkintotunnus: str
    tutkinnon_osa: str | None = None
    paikallinen_tutkinnon_osa: str | None = None
    tutkintonimike: list[str] = []
    osaamisala: list[str] = []
    tyopaikkajakson_alkupvm: dt.date
    tyopaikkajakson_loppupvm: dt.date
    rahoituskausi_pvm: dt.date
    osa_aikaisuus: int | None = None
    sopimustyyppi: Literal["koulutussopimus", "oppisopimus"]
    oppisopimuksen_perusta: str | None = None
    kesto: int


class NippuReady(_Payload):
    """A TEP bundle was formed (N1) on a run: make an answer code per jakso, then the
    bundle link. `voimassa_alkupvm` is the sending date (W1), `voimassa_loppupvm` the last
    answer day (W2); when it has passed by the time Arvo is reached, the codes are made
    with `ei_kuulu_lahetettavien_perusjoukkoon` and no link."""

    TYPE: ClassVar[str] = "nippu.ready"

    nippu_id: uuid.UUID
    tunniste: str
    koulutustoimija_oid: str
    tutkintotunnus: str
    tyonantaja: str
    tyopaikka: str
    niputuspvm: dt.date
    voimassa_alkupvm: dt.date
    voimassa_loppupvm: dt.date
    jaksot: list[NippuJaksoPayload]


class NippuLinkedJaksoPayload(_Part):
    """A jakso's answer code, or None when Arvo had no survey for it (404)."""

    jakso_id: int
    tunnus: str | None = None


class NippuLinked(_Payload):
    """Arvo's answer to a bundle. `outcome`: `linked` (link and validity set),
    `arvo_ei_kyselya` (Arvo 404: the jaksot get that reason, nothing is sent) or
    `vastausaika_umpeutunut` (the window passed before Arvo was reached: codes made with
    `ei_kuulu_lahetettavien_perusjoukkoon`, no link)."""

    TYPE: ClassVar[str] = "nippu.linked"

    nippu_id: uuid.UUID
    tunniste: str
    outcome: Literal["linked", "arvo_ei_kyselya", "vastausaika_umpeutunut"]
    linkki: str | None = None
    voimassa_loppupvm: dt.date | None = None
    jaksot: list[NippuLinkedJaksoPayload] = []


class TpkNippuReady(_Payload):
    """A TPK bundle (T3) of a kausi (T1, T4): make its workplace-survey link (T5)."""

    TYPE: ClassVar[str] = "tpk_nippu.ready"

    tpk_nippu_id: uuid.UUID
    koulutustoimija_oid: str
    tyonantaja: str
    tyopaikka: str
    tyopaikka_normalisoitu: str
    tiedonkeruu_alkupvm: dt.date
    tiedonkeruu_loppupvm: dt.date
    vastaamisajan_alkupvm: dt.date
    vastaamisajan_loppupvm: dt.date


class TpkNippuLinked(_Payload):
    """The TPK link Arvo made; the provider fetches it from the bundler (T5)."""

    TYPE: ClassVar[str] = "tpk_nippu.linked"

    tpk_nippu_id: uuid.UUID
    tunnus: str
    kysely_linkki: str
    voimassa_loppupvm: dt.date


class ArvoStatusUpdate(_Payload):
    """Tell Arvo a bundle's sending status and validity (S2): a PATCH of the nippu."""

    TYPE: ClassVar[str] = "arvo.status_update"

    nippu_id: uuid.UUID
    tunniste: str
    tila: ArvoNippuTila
    voimassa_loppupvm: dt.date | None = None


class JaksoKestoChanged(_Payload):
    """K4: a bundled jakso's kesto changed (an overlapping jakso of the same student in the
    same rahoituskausi changed): PATCH its answer code's background data."""

    TYPE: ClassVar[str] = "jakso.kesto_changed"

    jakso_id: int
    nippu_id: uuid.UUID
    kesto: int


class JaksoCancelled(_Payload):
    """A bundled jakso was cancelled before its bundle was sent (E14): DELETE its code."""

    TYPE: ClassVar[str] = "jakso.cancelled"

    jakso_id: int
    nippu_id: uuid.UUID


class SurveyStatus(_Payload):
    """What Arvo says of a bundle's survey, seen by the arvo_adapter (read-through of the
    status, or an answer noticed later): the bundler records `vastattu`."""

    TYPE: ClassVar[str] = "survey.status"

    tunniste: str
    vastattu: bool
    voimassa_loppupvm: dt.date | None = None


# --- bundler ⇄ sender -----------------------------------------------------------------


class SendRequested(_Payload):
    """Send a bundle's link (S1) or resend it (S4). The bundler chose the channels (C3,
    C4): an address is given for each channel to use. `resend_number` is 0 for the first
    send and grows by one per resend; the sender's reminder (S3) is its own job.

    `oppilaitokset` are the names of the jaksot's oppilaitokset (S5), an OID where the
    name is not known. Personal data: the sender keeps the addresses only as long as P1
    allows.
    """

    TYPE: ClassVar[str] = "send.requested"

    nippu_id: uuid.UUID
    tunniste: str
    kind: Literal["initial", "resend"]
    resend_number: int = 0
    linkki: str
    niputuspvm: dt.date
    voimassa_loppupvm: dt.date
    koulutustoimija_oid: str
    oppilaitokset: list[str]
    sahkoposti: str | None = None
    puhelinnumero: str | None = None


class SendStatus(_Payload):
    """A message's state changed (accepted, sent, failed with a reason, bounced,
    delivered), or the reminder run decided the bundle's fate (`nippu_tila`: `vastattu`,
    `vastausaika_loppunut_ennen_muistutusta`)."""

    TYPE: ClassVar[str] = "send.status"

    nippu_id: uuid.UUID
    message_key: str
    kind: Literal["initial", "reminder", "resend"]
    kanava: Literal["email", "sms"] | None = None
    tila: Literal["accepted", "sent", "failed", "bounced", "delivered"] | None = None
    reason: str | None = None
    at: dt.datetime
    nippu_tila: Literal["vastattu", "vastausaika_loppunut_ennen_muistutusta"] | None = None
