"""A Koski study right (opiskeluoikeus) → the fields the eligibility rules read.

E3–E10 and K1 read the provider, the states with their funding over time, whether the
study right is contained in another, its suoritukset (type, tutkinto) and an
apprenticeship contract's termination. api.md lists the fields exactly; everything else
is kept by the caller (in the raw document) and ignored here. Koski often sends `{}` for
organisations, `tila` or `tyyppi` it does not disclose: those become None or empty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.ingest.domain.validation import (
    OID_FORMATS,
    DocumentInvalid,
    FieldError,
    Loc,
    Reader,
    is_oid,
    koodiarvo,
)
from shared.events import (
    OpiskeluoikeusChanged,
    OpiskeluoikeusjaksoPayload,
    SuoritusPayload,
)

__all__ = [
    "DocumentInvalid",
    "FieldError",
    "Opiskeluoikeusjakso",
    "ParsedOpiskeluoikeus",
    "Suoritus",
    "opiskeluoikeus_changed",
    "parse_opiskeluoikeus",
]


@dataclass(frozen=True, slots=True)
class Opiskeluoikeusjakso:
    """A state from `alku` until the next jakso's `alku` (E7 tila, E8 opintojen rahoitus)."""

    alku: dt.date
    tila: str | None
    opintojen_rahoitus: str | None


@dataclass(frozen=True, slots=True)
class Suoritus:
    """A suoritus: `tyyppi` for E4/E5, `tutkinto` (koulutusmoduuli.tunniste) for N1."""

    tyyppi: str | None
    tutkinto: str | None
    osaamisalat: tuple[str, ...]
    tutkintonimikkeet: tuple[str, ...]
    toimipiste_oid: str | None
    suorituskieli: str | None


@dataclass(frozen=True, slots=True)
class ParsedOpiskeluoikeus:
    """What the rules read from one study right.

    `opiskeluoikeusjaksot` are sorted by `alku`; `oppisopimuksen_purkamispaiva` is the
    earliest `oppisopimuksenPurkaminen.päivä` of any suoritus (E10, E16).
    """

    oid: str
    koulutustoimija_oid: str | None
    oppilaitos_oid: str | None
    tyyppi: str | None
    sisaltyy_opiskeluoikeuteen: str | None
    opiskeluoikeusjaksot: tuple[Opiskeluoikeusjakso, ...]
    suoritukset: tuple[Suoritus, ...]
    oppisopimuksen_purkamispaiva: dt.date | None
    oppilaitos_nimi: str | None = None


def parse_opiskeluoikeus(oid: str, document: object) -> ParsedOpiskeluoikeus:
    """Validate a Koski opiskeluoikeus document and extract what the rules read.

    Raises DocumentInvalid listing every bad field we read: a request's `oid` that is not
    a Koski opiskeluoikeus OID (the queue's is not checked elsewhere), an `oid` other
    than the request's, dates that are not real `YYYY-MM-DD` dates, a state without `alku`, and
    values of the wrong JSON type.
    """
    if not isinstance(document, dict):
        raise DocumentInvalid([FieldError((), "expected a JSON object")])
    reader = Reader()
    root: Loc = ()
    body_oid = document.get("oid")
    if not is_oid(oid, "opiskeluoikeus"):
        reader.error(("oid",), f"expected a Koski OID {OID_FORMATS['opiskeluoikeus'][1]}")
    elif body_oid is not None and body_oid != oid:
        reader.error(("oid",), f"must equal the oid of the request ({oid})")

    oppilaitos = reader.obj(document, "oppilaitos", root)
    oppilaitos_oid = None
    parent_oid = None
    oppilaitos_nimi = None
    if oppilaitos is not None:
        oppilaitos_oid = reader.string(oppilaitos, "oid", ("oppilaitos",))
        parent_oid = reader.string(oppilaitos, "parentOid", ("oppilaitos",))
        oppilaitos_nimi = localized_name(oppilaitos.get("nimi"))
    koulutustoimija = reader.obj(document, "koulutustoimija", root)
    koulutustoimija_oid = None
    if koulutustoimija is not None:
        koulutustoimija_oid = reader.string(koulutustoimija, "oid", ("koulutustoimija",))

    sisaltyy = reader.obj(document, "sisältyyOpiskeluoikeuteen", root)
    sisaltyy_oid = None
    if sisaltyy is not None:
        sisaltyy_oid = reader.string(sisaltyy, "oid", ("sisältyyOpiskeluoikeuteen",))

    jaksot = _read_tila(reader, document)
    suoritukset: list[Suoritus] = []
    purkamispaivat: list[dt.date] = []
    for index, item in enumerate(reader.array(document, "suoritukset", root)):
        suoritus = reader.item_object(item, ("suoritukset", index))
        if suoritus is not None:
            suoritukset.append(_read_suoritus(reader, suoritus, ("suoritukset", index)))
            purkamispaivat.extend(_read_purkamiset(reader, suoritus, ("suoritukset", index)))

    tyyppi = koodiarvo(reader, document, "tyyppi", root)
    reader.raise_if_errors()
    return ParsedOpiskeluoikeus(
        oid=oid,
        koulutustoimija_oid=koulutustoimija_oid if koulutustoimija_oid else parent_oid,
        oppilaitos_oid=oppilaitos_oid,
        tyyppi=tyyppi,
        sisaltyy_opiskeluoikeuteen=sisaltyy_oid,
        opiskeluoikeusjaksot=tuple(sorted(jaksot, key=lambda jakso: jakso.alku)),
        suoritukset=tuple(suoritukset),
        oppisopimuksen_purkamispaiva=min(purkamispaivat, default=None),
        oppilaitos_nimi=oppilaitos_nimi,
    )


def localized_name(nimi: object) -> str | None:
    """A Koski name `{"fi", "sv", "en"}` as one string: Finnish, else Swedish, else
    English (S5 names the oppilaitos). Read leniently: a name in another shape is only
    missing, never a reason to refuse the document."""
    if not isinstance(nimi, dict):
        return None
    for language in ("fi", "sv", "en"):
        value = nimi.get(language)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _read_tila(reader: Reader, document: dict[str, object]) -> list[Opiskeluoikeusjakso]:
    tila = reader.obj(document, "tila", ())
    if tila is None:
        return []
    jaksot: list[Opiskeluoikeusjakso] = []
    for index, item in enumerate(reader.array(tila, "opiskeluoikeusjaksot", ("tila",))):
        loc: Loc = ("tila", "opiskeluoikeusjaksot", index)
        jakso = reader.item_object(item, loc)
        if jakso is None:
            continue
        alku = reader.date(jakso, "alku", loc, required=True)
        tila_koodi = koodiarvo(reader, jakso, "tila", loc)
        rahoitus = koodiarvo(reader, jakso, "opintojenRahoitus", loc)
        if alku is not None:
            jaksot.append(Opiskeluoikeusjakso(alku, tila_koodi, rahoitus))
    return jaksot


def _read_suoritus(reader: Reader, suoritus: dict[str, object], loc: Loc) -> Suoritus:
    tutkinto = None
    koulutusmoduuli = reader.obj(suoritus, "koulutusmoduuli", loc)
    if koulutusmoduuli is not None:
        tutkinto = koodiarvo(reader, koulutusmoduuli, "tunniste", (*loc, "koulutusmoduuli"))
    toimipiste_oid = None
    toimipiste = reader.obj(suoritus, "toimipiste", loc)
    if toimipiste is not None:
        toimipiste_oid = reader.string(toimipiste, "oid", (*loc, "toimipiste"))
    return Suoritus(
        tyyppi=koodiarvo(reader, suoritus, "tyyppi", loc),
        tutkinto=tutkinto,
        osaamisalat=_read_osaamisalat(reader, suoritus, loc),
        tutkintonimikkeet=_read_koodit(reader, suoritus, "tutkintonimike", loc),
        toimipiste_oid=toimipiste_oid,
        suorituskieli=koodiarvo(reader, suoritus, "suorituskieli", loc),
    )


def _read_osaamisalat(reader: Reader, suoritus: dict[str, object], loc: Loc) -> tuple[str, ...]:
    """Koski writes an osaamisala as `{"osaamisala": {koodi}, "alku": ...}` (a period),
    older documents as the bare `{koodi}`; both are read."""
    koodit: list[str] = []
    for index, item in enumerate(reader.array(suoritus, "osaamisala", loc)):
        item_loc = (*loc, "osaamisala", index)
        jakso = reader.item_object(item, item_loc)
        if jakso is None:
            continue
        if "osaamisala" in jakso:
            koodi = koodiarvo(reader, jakso, "osaamisala", item_loc)
        else:
            koodi = reader.string(jakso, "koodiarvo", item_loc)
        if koodi is not None:
            koodit.append(koodi)
    return tuple(koodit)


def _read_koodit(reader: Reader, parent: dict[str, object], key: str, loc: Loc) -> tuple[str, ...]:
    koodit: list[str] = []
    for index, item in enumerate(reader.array(parent, key, loc)):
        item_loc = (*loc, key, index)
        koodi_obj = reader.item_object(item, item_loc)
        if koodi_obj is not None:
            koodi = reader.string(koodi_obj, "koodiarvo", item_loc)
            if koodi is not None:
                koodit.append(koodi)
    return tuple(koodit)


def _read_purkamiset(reader: Reader, suoritus: dict[str, object], loc: Loc) -> list[dt.date]:
    """Termination dates at `järjestämismuodot[].järjestämismuoto.oppisopimus...` and
    `osaamisenHankkimistavat[].osaamisenHankkimistapa.oppisopimus...` (E10)."""
    paivat: list[dt.date] = []
    for list_key, item_key in (
        ("järjestämismuodot", "järjestämismuoto"),
        ("osaamisenHankkimistavat", "osaamisenHankkimistapa"),
    ):
        for index, item in enumerate(reader.array(suoritus, list_key, loc)):
            item_loc: Loc = (*loc, list_key, index)
            wrapper = reader.item_object(item, item_loc)
            if wrapper is None:
                continue
            tapa = reader.obj(wrapper, item_key, item_loc)
            if tapa is None:
                continue
            tapa_loc = (*item_loc, item_key)
            oppisopimus = reader.obj(tapa, "oppisopimus", tapa_loc)
            if oppisopimus is None:
                continue
            oppisopimus_loc = (*tapa_loc, "oppisopimus")
            purkaminen = reader.obj(oppisopimus, "oppisopimuksenPurkaminen", oppisopimus_loc)
            if purkaminen is None:
                continue
            paiva = reader.date(purkaminen, "päivä", (*oppisopimus_loc, "oppisopimuksenPurkaminen"))
            if paiva is not None:
                paivat.append(paiva)
    return paivat


def opiskeluoikeus_changed(parsed: ParsedOpiskeluoikeus, version: int) -> OpiskeluoikeusChanged:
    """The `opiskeluoikeus.changed` payload of a stored study-right version."""
    return OpiskeluoikeusChanged(
        oid=parsed.oid,
        version=version,
        koulutustoimija_oid=parsed.koulutustoimija_oid,
        oppilaitos_oid=parsed.oppilaitos_oid,
        oppilaitos_nimi=parsed.oppilaitos_nimi,
        tyyppi=parsed.tyyppi,
        sisaltyy_opiskeluoikeuteen=parsed.sisaltyy_opiskeluoikeuteen,
        opiskeluoikeusjaksot=[
            OpiskeluoikeusjaksoPayload(
                alku=jakso.alku, tila=jakso.tila, opintojen_rahoitus=jakso.opintojen_rahoitus
            )
            for jakso in parsed.opiskeluoikeusjaksot
        ],
        suoritukset=[
            SuoritusPayload(
                tyyppi=s.tyyppi,
                tutkinto=s.tutkinto,
                osaamisalat=list(s.osaamisalat),
                tutkintonimikkeet=list(s.tutkintonimikkeet),
                toimipiste_oid=s.toimipiste_oid,
                suorituskieli=s.suorituskieli,
            )
            for s in parsed.suoritukset
        ],
        oppisopimuksen_purkamispaiva=parsed.oppisopimuksen_purkamispaiva,
    )
