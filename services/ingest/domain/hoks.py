"""A HOKS document as eHOKS stores it → the workplace periods (jaksot) the rules survey.

J1: every osaamisen hankkimistapa of type koulutussopimus or oppisopimus is a jakso,
wherever it sits in the hankittavat tutkinnon osat (ammatilliset, paikalliset, the
osa-alueet of the yhteiset, and the koulutuksen osat when present). J2: a jakso is
identified by (HOKS id, yksiloiva-tunniste), else by (HOKS id, its path in the document)
with `tunniste_puuttuu` set so that the contact-data report can flag it.

Only the fields the rules read are validated; everything else is kept by the caller
(in the raw document) and ignored here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from services.ingest.domain.validation import (
    DocumentInvalid,
    FieldError,
    Loc,
    Reader,
)
from shared.domain.koodisto import Hankkimistapa, jakso_hankkimistapa, koodiarvo
from shared.events import (
    HoksChanged,
    HoksDeleted,
    JaksoPayload,
    KeskeytymisajanjaksoPayload,
    OhjaajaPayload,
    TutkinnonOsaKind,
    TutkinnonOsaPayload,
)

__all__ = [
    "DocumentInvalid",
    "FieldError",
    "Hankkimistapa",
    "Jakso",
    "Keskeytymisajanjakso",
    "Ohjaaja",
    "ParsedHoks",
    "TutkinnonOsa",
    "TutkinnonOsaKind",
    "hoks_changed",
    "hoks_deleted",
    "parse_hoks",
]

# (HOKS key, kind, whether its items hold osa-alueet that hold the hankkimistavat)
_SECTIONS: Final[tuple[tuple[str, TutkinnonOsaKind, bool], ...]] = (
    ("hankittavat-ammat-tutkinnon-osat", "ammatillinen", False),
    ("hankittavat-paikalliset-tutkinnon-osat", "paikallinen", False),
    ("hankittavat-yhteiset-tutkinnon-osat", "yhteinen", True),
    ("hankittavat-koulutuksen-osat", "koulutuksen_osa", False),
)
_HANKKIMISTAVAT: Final = "osaamisen-hankkimistavat"


@dataclass(frozen=True, slots=True)
class Keskeytymisajanjakso:
    """An interruption of a jakso (E9, K1); `loppu` None = still interrupted."""

    alku: dt.date
    loppu: dt.date | None


@dataclass(frozen=True, slots=True)
class Ohjaaja:
    """The responsible workplace instructor; any field may be missing (E12, C3)."""

    nimi: str | None
    sahkoposti: str | None
    puhelinnumero: str | None


@dataclass(frozen=True, slots=True)
class TutkinnonOsa:
    """The tutkinnon osa (or TUVA/TELMA koulutuksen osa) a jakso belongs to (J4, N1).

    `koodi_uri` is `tutkinnon-osa-koodi-uri`, or `koulutuksen-osa-koodi-uri` for a
    koulutuksen osa; `koodi` is the code after `tutkinnonosat_`. `nimi` is the name of a
    local (paikallinen) tutkinnon osa; `osa_alue_koodi_uri` is set for yhteiset.
    """

    kind: TutkinnonOsaKind
    koodi_uri: str | None
    koodi: str | None
    nimi: str | None
    osa_alue_koodi_uri: str | None


@dataclass(frozen=True, slots=True)
class Jakso:
    """One workplace period (J1) with everything the E, N, T and K rules read."""

    yksiloiva_tunniste: str | None
    path: str
    hankkimistapa: Hankkimistapa
    alku: dt.date
    loppu: dt.date | None
    osa_aikaisuus: int | None
    keskeytymisajanjaksot: tuple[Keskeytymisajanjakso, ...]
    oppisopimuksen_perusta: str | None
    tyopaikan_nimi: str | None
    tyopaikan_ytunnus: str | None
    ohjaaja: Ohjaaja | None
    tutkinnon_osa: TutkinnonOsa

    @property
    def tunniste_puuttuu(self) -> bool:
        """J2: without yksiloiva-tunniste the jakso is known by its path and flagged."""
        return self.yksiloiva_tunniste is None

    @property
    def tunniste(self) -> str:
        """The jakso's identity within its HOKS (J2): yksiloiva-tunniste, else the path."""
        return self.yksiloiva_tunniste if self.yksiloiva_tunniste is not None else self.path


@dataclass(frozen=True, slots=True)
class ParsedHoks:
    """What the rules read from one HOKS; `is_tuva` drives E4."""

    hoks_id: int
    oppija_oid: str
    opiskeluoikeus_oid: str
    is_tuva: bool
    jaksot: tuple[Jakso, ...]


def parse_hoks(hoks_id: int, document: object) -> ParsedHoks:
    """Validate a HOKS document and extract its jaksot (J1, J2).

    Raises DocumentInvalid listing every bad field we read: missing `oppija-oid` or
    `opiskeluoikeus-oid`, or either not an OID of its kind (`OID_FORMATS`), an `id`
    other than `hoks_id`, dates that are not real `YYYY-MM-DD` dates, `loppu` before
    `alku`, values of the wrong JSON type, and a yksiloiva-tunniste used by two jaksot
    (it would make J2 identities collide).
    """
    if not isinstance(document, dict):
        raise DocumentInvalid([FieldError((), "expected a JSON object")])
    reader = Reader()
    root: Loc = ()
    body_id = document.get("id")
    if body_id is not None and (type(body_id) is not int or body_id != hoks_id):
        reader.error(("id",), f"must equal the HOKS id of the request ({hoks_id})")
    oppija_oid = reader.oid(document, "oppija-oid", root, "oppija", required=True)
    opiskeluoikeus_oid = reader.oid(
        document, "opiskeluoikeus-oid", root, "opiskeluoikeus", required=True
    )

    jaksot: list[Jakso] = []
    for key, kind, has_osa_alueet in _SECTIONS:
        for index, item in enumerate(reader.array(document, key, root)):
            osa = reader.item_object(item, (key, index))
            if osa is not None:
                _read_tutkinnon_osa(reader, osa, (key, index), kind, has_osa_alueet, jaksot)
    koulutuksen_osat = document.get("hankittavat-koulutuksen-osat")
    is_tuva = isinstance(koulutuksen_osat, list) and len(koulutuksen_osat) > 0

    reader.raise_if_errors()
    assert oppija_oid is not None and opiskeluoikeus_oid is not None
    return ParsedHoks(
        hoks_id=hoks_id,
        oppija_oid=oppija_oid,
        opiskeluoikeus_oid=opiskeluoikeus_oid,
        is_tuva=is_tuva,
        jaksot=tuple(jaksot),
    )


def _read_tutkinnon_osa(
    reader: Reader,
    osa: dict[str, object],
    loc: Loc,
    kind: TutkinnonOsaKind,
    has_osa_alueet: bool,
    jaksot: list[Jakso],
) -> None:
    koodi_key = (
        "koulutuksen-osa-koodi-uri" if kind == "koulutuksen_osa" else "tutkinnon-osa-koodi-uri"
    )
    koodi_uri = reader.string(osa, koodi_key, loc)
    koodi = koodiarvo(koodi_uri, "tutkinnonosat") if koodi_uri is not None else None
    nimi = reader.string(osa, "nimi", loc) if kind == "paikallinen" else None
    if has_osa_alueet:
        for index, item in enumerate(reader.array(osa, "osa-alueet", loc)):
            alue_loc = (*loc, "osa-alueet", index)
            osa_alue = reader.item_object(item, alue_loc)
            if osa_alue is None:
                continue
            context = TutkinnonOsa(
                kind,
                koodi_uri,
                koodi,
                nimi,
                reader.string(osa_alue, "osa-alue-koodi-uri", alue_loc),
            )
            _read_hankkimistavat(reader, osa_alue, alue_loc, context, jaksot)
    else:
        context = TutkinnonOsa(kind, koodi_uri, koodi, nimi, None)
        _read_hankkimistavat(reader, osa, loc, context, jaksot)


def _read_hankkimistavat(
    reader: Reader,
    parent: dict[str, object],
    loc: Loc,
    context: TutkinnonOsa,
    jaksot: list[Jakso],
) -> None:
    for index, item in enumerate(reader.array(parent, _HANKKIMISTAVAT, loc)):
        oht_loc = (*loc, _HANKKIMISTAVAT, index)
        oht = reader.item_object(item, oht_loc)
        if oht is None:
            continue
        koodi_uri = reader.string(oht, "osaamisen-hankkimistapa-koodi-uri", oht_loc)
        if koodi_uri is None:
            continue
        hankkimistapa = jakso_hankkimistapa(koodi_uri)
        if hankkimistapa is not None:
            jakso = _read_jakso(reader, oht, oht_loc, hankkimistapa, context)
            if jakso is None:
                continue
            if any(other.tunniste == jakso.tunniste for other in jaksot):
                reader.error(
                    (*oht_loc, "yksiloiva-tunniste"),
                    "yksiloiva-tunniste is used by another jakso of this HOKS",
                )
            jaksot.append(jakso)


def _read_jakso(
    reader: Reader,
    oht: dict[str, object],
    loc: Loc,
    hankkimistapa: Hankkimistapa,
    context: TutkinnonOsa,
) -> Jakso | None:
    errors_before = len(reader.errors)
    tunniste = reader.string(oht, "yksiloiva-tunniste", loc)
    if tunniste is not None and not tunniste.strip():
        tunniste = None
    alku, loppu = reader.period(oht, loc, alku_required=True)
    osa_aikaisuus = reader.integer(oht, "osa-aikaisuustieto", loc)
    keskeytymiset: list[Keskeytymisajanjakso] = []
    for index, item in enumerate(reader.array(oht, "keskeytymisajanjaksot", loc)):
        k_loc = (*loc, "keskeytymisajanjaksot", index)
        keskeytys = reader.item_object(item, k_loc)
        if keskeytys is not None:
            k_alku, k_loppu = reader.period(keskeytys, k_loc, alku_required=True)
            if k_alku is not None:
                keskeytymiset.append(Keskeytymisajanjakso(k_alku, k_loppu))
    perusta_uri = reader.string(oht, "oppisopimuksen-perusta-koodi-uri", loc)
    perusta = None
    if perusta_uri is not None:
        perusta = koodiarvo(perusta_uri, "oppisopimuksenperusta") or perusta_uri

    tyopaikan_nimi = tyopaikan_ytunnus = None
    ohjaaja = None
    tjk_loc = (*loc, "tyopaikalla-jarjestettava-koulutus")
    tjk = reader.obj(oht, "tyopaikalla-jarjestettava-koulutus", loc)
    if tjk is not None:
        tyopaikan_nimi = reader.string(tjk, "tyopaikan-nimi", tjk_loc)
        tyopaikan_ytunnus = reader.string(tjk, "tyopaikan-y-tunnus", tjk_loc)
        ohjaaja_obj = reader.obj(tjk, "vastuullinen-tyopaikka-ohjaaja", tjk_loc)
        if ohjaaja_obj is not None:
            o_loc = (*tjk_loc, "vastuullinen-tyopaikka-ohjaaja")
            ohjaaja = Ohjaaja(
                nimi=reader.string(ohjaaja_obj, "nimi", o_loc),
                sahkoposti=reader.string(ohjaaja_obj, "sahkoposti", o_loc),
                puhelinnumero=reader.string(ohjaaja_obj, "puhelinnumero", o_loc),
            )

    if alku is None or len(reader.errors) > errors_before:
        return None
    return Jakso(
        yksiloiva_tunniste=tunniste,
        path=_format_path(loc),
        hankkimistapa=hankkimistapa,
        alku=alku,
        loppu=loppu,
        osa_aikaisuus=osa_aikaisuus,
        keskeytymisajanjaksot=tuple(keskeytymiset),
        oppisopimuksen_perusta=perusta,
        tyopaikan_nimi=tyopaikan_nimi,
        tyopaikan_ytunnus=tyopaikan_ytunnus,
        ohjaaja=ohjaaja,
        tutkinnon_osa=context,
    )


def _format_path(loc: Loc) -> str:
    """`("a", 0, "b", 1)` → `a[0].b[1]`: the J2 identity of a jakso without tunniste."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else part)
    return "".join(parts)


def hoks_changed(parsed: ParsedHoks, version: int) -> HoksChanged:
    """The `hoks.changed` payload of a stored HOKS version (api.md "Events")."""
    return HoksChanged(
        hoks_id=parsed.hoks_id,
        oppija_oid=parsed.oppija_oid,
        opiskeluoikeus_oid=parsed.opiskeluoikeus_oid,
        version=version,
        is_tuva=parsed.is_tuva,
        jaksot=[_jakso_payload(jakso) for jakso in parsed.jaksot],
    )


def hoks_deleted(hoks_id: int, version: int) -> HoksDeleted:
    """The `hoks.deleted` payload (E14: pending surveys of its jaksot are cancelled)."""
    return HoksDeleted(hoks_id=hoks_id, version=version)


def _jakso_payload(jakso: Jakso) -> JaksoPayload:
    osa = jakso.tutkinnon_osa
    ohjaaja = jakso.ohjaaja
    return JaksoPayload(
        yksiloiva_tunniste=jakso.yksiloiva_tunniste,
        path=jakso.path,
        tunniste_puuttuu=jakso.tunniste_puuttuu,
        hankkimistapa=jakso.hankkimistapa,
        alku=jakso.alku,
        loppu=jakso.loppu,
        osa_aikaisuus=jakso.osa_aikaisuus,
        keskeytymisajanjaksot=[
            KeskeytymisajanjaksoPayload(alku=k.alku, loppu=k.loppu)
            for k in jakso.keskeytymisajanjaksot
        ],
        oppisopimuksen_perusta=jakso.oppisopimuksen_perusta,
        tyopaikan_nimi=jakso.tyopaikan_nimi,
        tyopaikan_ytunnus=jakso.tyopaikan_ytunnus,
        ohjaaja=(
            None
            if ohjaaja is None
            else OhjaajaPayload(
                nimi=ohjaaja.nimi,
                sahkoposti=ohjaaja.sahkoposti,
                puhelinnumero=ohjaaja.puhelinnumero,
            )
        ),
        tutkinnon_osa=TutkinnonOsaPayload(
            kind=osa.kind,
            koodi_uri=osa.koodi_uri,
            koodi=osa.koodi,
            nimi=osa.nimi,
            osa_alue_koodi_uri=osa.osa_alue_koodi_uri,
        ),
    )
