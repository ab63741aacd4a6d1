"""Request and response bodies of Arvo's work-life feedback API (arvo-api.md), typed.

Requests forbid unknown fields so a typo fails here, not as an Arvo 400; responses ignore
fields the contract does not name. Dates travel as ``YYYY-MM-DD``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Sopimustyyppi = Literal["koulutussopimus", "oppisopimus"]
NippuTila = Literal[
    "odottaa_lahetysta",
    "lahetetty",
    "lahetys_epaonnistunut",
    "bounced",
    "ei_kelvollisia_yhteystietoja",
    "vastausaika_loppunut_ennen_lahetysta",
    "vastausaika_loppunut_ennen_muistutusta",
    "vastattu",
]
TUNNISTE_PATTERN = r"^[a-z0-9_-]+$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Metatiedot(BaseModel):
    """``ei_kuulu_lahetettavien_perusjoukkoon``: counted for funding, never sent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ei_kuulu_lahetettavien_perusjoukkoon: bool = False


class VastaajatunnusRequest(_Request):
    """``POST vastaajatunnus``: one per eligible workplace period (jakso)."""

    request_id: uuid.UUID
    koulutustoimija_oid: str
    oppilaitos_oid: str
    toimipiste_oid: str | None = None
    tyonantaja: str
    tyopaikka: str
    tyopaikka_normalisoitu: str
    tutkintotunnus: str
    tutkinnon_osa: str | None = None
    paikallinen_tutkinnon_osa: str | None = None
    tutkintonimike: list[str]
    osaamisala: list[str]
    tyopaikkajakson_alkupvm: date
    tyopaikkajakson_loppupvm: date
    rahoituskausi_pvm: date
    osa_aikaisuus: int | None = Field(default=None, ge=1, le=100)
    sopimustyyppi: Sopimustyyppi
    oppisopimuksen_perusta: Literal["01", "02"] | None = None
    vastaamisajan_alkupvm: date
    vastaamisajan_loppupvm: date
    metatiedot: Metatiedot = Field(default_factory=Metatiedot)
    # The period's length in days (K4); sent only when known, updated later by PATCH.
    kesto: int | None = Field(default=None, ge=0)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"kesto"} if self.kesto is None else None)


class VastaajatunnusPatch(_Request):
    """``PATCH vastaajatunnus/{tunnus}``: only the fields given are sent (e.g. ``kesto``)."""

    koulutustoimija_oid: str | None = None
    oppilaitos_oid: str | None = None
    toimipiste_oid: str | None = None
    tyonantaja: str | None = None
    tyopaikka: str | None = None
    tyopaikka_normalisoitu: str | None = None
    tutkintotunnus: str | None = None
    tutkinnon_osa: str | None = None
    paikallinen_tutkinnon_osa: str | None = None
    tutkintonimike: list[str] | None = None
    osaamisala: list[str] | None = None
    tyopaikkajakson_alkupvm: date | None = None
    tyopaikkajakson_loppupvm: date | None = None
    rahoituskausi_pvm: date | None = None
    osa_aikaisuus: int | None = Field(default=None, ge=1, le=100)
    sopimustyyppi: Sopimustyyppi | None = None
    oppisopimuksen_perusta: Literal["01", "02"] | None = None
    vastaamisajan_alkupvm: date | None = None
    vastaamisajan_loppupvm: date | None = None
    metatiedot: Metatiedot | None = None
    kesto: int | None = Field(default=None, ge=0)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class VastaajatunnusCreated(_Response):
    tunnus: str = Field(min_length=1)


class NippuTunnus(_Request):
    tunnus: str
    tyopaikkajakson_loppupvm: date


class NippuRequest(_Request):
    """``POST nippu``: one per bundle; ``tunniste`` is the bundle's own id, reused on retry."""

    tunniste: str = Field(pattern=TUNNISTE_PATTERN)
    koulutustoimija_oid: str
    tutkintotunnus: str
    tyonantaja: str
    tyopaikka: str
    tunnukset: list[NippuTunnus] = Field(min_length=1)
    voimassa_alkupvm: date
    request_id: uuid.UUID


class NippuCreated(_Response):
    nippulinkki: str = Field(min_length=1)
    voimassa_loppupvm: date


class NippuPatch(_Request):
    """``PATCH nippu/{tunniste}``: sending status, and validity when it changes (W2)."""

    tila: NippuTila
    voimassa_loppupvm: date | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class NippuStatus(_Response):
    """``GET status/{tunniste}``: read before a reminder."""

    vastattu: bool
    voimassa_loppupvm: date


class TyopaikkakyselyRequest(_Request):
    """``POST tyopaikkakysely-tunnus``: one per TPK bundle (workplace, half-year)."""

    koulutustoimija_oid: str
    tyonantaja: str
    tyopaikka: str
    tyopaikka_normalisoitu: str
    tiedonkeruu_alkupvm: date
    tiedonkeruu_loppupvm: date
    vastaamisajan_alkupvm: date
    vastaamisajan_loppupvm: date
    request_id: uuid.UUID


class TyopaikkakyselyCreated(_Response):
    tunnus: str = Field(min_length=1)
    kysely_linkki: str = Field(min_length=1)
    voimassa_loppupvm: date
