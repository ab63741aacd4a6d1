"""parse_opiskeluoikeus: what the E rules read from a Koski study right, and which
documents are refused with which field named."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from services.ingest.domain.opiskeluoikeus import (
    DocumentInvalid,
    FieldError,
    Opiskeluoikeusjakso,
    Suoritus,
    parse_opiskeluoikeus,
)
from tests.unit.ingest.examples import deleter, koski_study_rights, load, setter

OID = "1.2.246.562.15.10000000001"


@pytest.mark.parametrize(
    "document", [pytest.param(doc, id=name) for name, doc in koski_study_rights()]
)
def test_every_example_study_right_is_accepted(document: dict[str, Any]) -> None:
    parsed = parse_opiskeluoikeus(document["oid"], document)
    assert parsed.oid == document["oid"]
    alut = [jakso.alku for jakso in parsed.opiskeluoikeusjaksot]
    assert alut == sorted(alut)


def test_ammatillinen_example_with_funding_and_two_suoritukset() -> None:
    oid = "1.2.246.562.15.13312692646"
    parsed = parse_opiskeluoikeus(oid, load(f"koski-examples/koski_api_opiskeluoikeus_{oid}.json"))
    assert parsed.koulutustoimija_oid == "1.2.246.562.10.55867603791"
    assert parsed.oppilaitos_oid == "1.2.246.562.10.32506551657"
    assert parsed.oppilaitos_nimi == "Keuda", "S5 names the oppilaitos"
    assert parsed.tyyppi == "muukuinsaanneltykoulutus"
    assert parsed.sisaltyy_opiskeluoikeuteen is None
    assert parsed.opiskeluoikeusjaksot == (
        Opiskeluoikeusjakso(dt.date(2015, 12, 7), "lasna", "14"),
        Opiskeluoikeusjakso(dt.date(2023, 12, 7), "lasna", "1"),
    )
    assert parsed.suoritukset == (
        Suoritus("muukuinsaanneltykoulutus", "999951", (), (), "1.2.246.562.10.43682075486", "FI"),
        # toimipiste and suorituskieli are `{}` in the document.
        Suoritus("ammatillinentutkinto", "351407", (), (), None, None),
    )
    assert parsed.oppisopimuksen_purkamispaiva is None


def test_empty_objects_become_none() -> None:
    oid = "1.2.246.562.15.60063016194"
    parsed = parse_opiskeluoikeus(oid, load(f"koski-examples/koski_api_opiskeluoikeus_{oid}.json"))
    assert (parsed.koulutustoimija_oid, parsed.oppilaitos_oid) == (None, None)
    assert parsed.opiskeluoikeusjaksot == ()
    assert parsed.tyyppi == "ammatillinenkoulutus"
    assert parsed.suoritukset == (Suoritus(None, "351407", (), (), None, None),)


def test_osaamisala_periods_and_tutkintonimikkeet_from_the_oppija_file() -> None:
    oppija = load("koski-examples/koski_api_oppija_1.2.246.562.24.44651722625.json")
    (document,) = [o for o in oppija["opiskeluoikeudet"] if o["oid"].endswith("10359275566")]
    parsed = parse_opiskeluoikeus(document["oid"], document)
    assert parsed.koulutustoimija_oid == "1.2.246.562.10.616156607610"
    assert parsed.suoritukset == (
        Suoritus(
            "ammatillinentutkinto",
            "361902",
            ("1590",),
            ("10083",),
            "1.2.246.562.10.57057574493",
            "FI",
        ),
    )
    assert [(j.alku, j.tila, j.opintojen_rahoitus) for j in parsed.opiskeluoikeusjaksot] == [
        (dt.date(2012, 9, 1), "lasna", "4"),
        (dt.date(2016, 5, 31), "valmistunut", "4"),
    ]


# --- constructed documents ------------------------------------------------------------


def oppisopimus(paiva: str) -> dict[str, Any]:
    return {
        "oppisopimus": {"oppisopimuksenPurkaminen": {"päivä": paiva, "purettuKoeajalla": False}}
    }


def base_oo() -> dict[str, Any]:
    return {
        "oid": OID,
        "oppilaitos": {"oid": "1.2.246.562.10.2", "parentOid": "1.2.246.562.10.1"},
        "koulutustoimija": {"oid": "1.2.246.562.10.1"},
        "tyyppi": {"koodiarvo": "ammatillinenkoulutus"},
        "sisältyyOpiskeluoikeuteen": {"oid": "1.2.246.562.15.9", "oppilaitos": {}},
        "tila": {
            "opiskeluoikeusjaksot": [
                {"alku": "2024-05-01", "tila": {"koodiarvo": "eronnut"}},
                {
                    "alku": "2023-08-01",
                    "tila": {"koodiarvo": "lasna"},
                    "opintojenRahoitus": {"koodiarvo": "1"},
                },
            ]
        },
        "suoritukset": [
            {
                "tyyppi": {"koodiarvo": "ammatillinentutkinto"},
                "koulutusmoduuli": {"tunniste": {"koodiarvo": "351407"}},
                "osaamisala": [{"koodiarvo": "1525"}, {"osaamisala": {"koodiarvo": "1526"}}],
                "tutkintonimike": [{"koodiarvo": "10024"}],
                "toimipiste": {"oid": "1.2.246.562.10.3"},
                "suorituskieli": {"koodiarvo": "SV"},
                "järjestämismuodot": [
                    {"alku": "2023-08-01", "järjestämismuoto": oppisopimus("2024-03-15")}
                ],
                "osaamisenHankkimistavat": [
                    {"alku": "2023-08-01", "osaamisenHankkimistapa": oppisopimus("2024-02-01")},
                    {"alku": "2023-08-01", "osaamisenHankkimistapa": {"tunniste": {}}},
                ],
            }
        ],
    }


def test_base_document_is_read_completely() -> None:
    parsed = parse_opiskeluoikeus(OID, base_oo())
    assert parsed.koulutustoimija_oid == "1.2.246.562.10.1"
    assert parsed.oppilaitos_oid == "1.2.246.562.10.2"
    assert parsed.tyyppi == "ammatillinenkoulutus"
    assert parsed.sisaltyy_opiskeluoikeuteen == "1.2.246.562.15.9"
    assert parsed.opiskeluoikeusjaksot == (
        Opiskeluoikeusjakso(dt.date(2023, 8, 1), "lasna", "1"),
        Opiskeluoikeusjakso(dt.date(2024, 5, 1), "eronnut", None),
    )
    assert parsed.suoritukset == (
        Suoritus(
            "ammatillinentutkinto", "351407", ("1525", "1526"), ("10024",), "1.2.246.562.10.3", "SV"
        ),
    )
    # E10: the earliest termination date of either place.
    assert parsed.oppisopimuksen_purkamispaiva == dt.date(2024, 2, 1)


def test_koulutustoimija_falls_back_to_the_oppilaitos_parent() -> None:
    document = base_oo()
    document["koulutustoimija"] = {}
    assert parse_opiskeluoikeus(OID, document).koulutustoimija_oid == "1.2.246.562.10.1"
    del document["oppilaitos"]["parentOid"]
    assert parse_opiskeluoikeus(OID, document).koulutustoimija_oid is None


def test_oid_may_be_absent_from_the_body() -> None:
    document = base_oo()
    del document["oid"]
    assert parse_opiskeluoikeus(OID, document).oid == OID


JAKSO0 = ("tila", "opiskeluoikeusjaksot", 0)
S0 = ("suoritukset", 0)
_PURKU = ("oppisopimus", "oppisopimuksenPurkaminen", "päivä")
PURKU_J = (*S0, "järjestämismuodot", 0, "järjestämismuoto", *_PURKU)
PURKU_O = (*S0, "osaamisenHankkimistavat", 0, "osaamisenHankkimistapa", *_PURKU)

INVALID_CASES: list[tuple[str, Callable[[dict[str, Any]], None], tuple[str | int, ...]]] = [
    ("oid other than the path's", setter(("oid",), "1.2.246.562.15.20000000002"), ("oid",)),
    ("oid a number", setter(("oid",), 1), ("oid",)),
    ("oppilaitos a string", setter(("oppilaitos",), "x"), ("oppilaitos",)),
    ("oppilaitos oid a number", setter(("oppilaitos", "oid"), 2), ("oppilaitos", "oid")),
    ("koulutustoimija a list", setter(("koulutustoimija",), []), ("koulutustoimija",)),
    ("tyyppi koodiarvo a number", setter(("tyyppi", "koodiarvo"), 1), ("tyyppi", "koodiarvo")),
    (
        "sisältyy a string",
        setter(("sisältyyOpiskeluoikeuteen",), "1.2.246.562.15.9"),
        ("sisältyyOpiskeluoikeuteen",),
    ),
    ("tila a list", setter(("tila",), []), ("tila",)),
    (
        "jaksot an object",
        setter(("tila", "opiskeluoikeusjaksot"), {}),
        ("tila", "opiskeluoikeusjaksot"),
    ),
    ("jakso not an object", setter(JAKSO0, "lasna"), JAKSO0),
    ("jakso alku missing", deleter((*JAKSO0, "alku")), (*JAKSO0, "alku")),
    ("jakso alku not a date", setter((*JAKSO0, "alku"), "2024-02-30"), (*JAKSO0, "alku")),
    ("jakso alku a datetime", setter((*JAKSO0, "alku"), "2024-05-01T00:00"), (*JAKSO0, "alku")),
    ("jakso tila a string", setter((*JAKSO0, "tila"), "eronnut"), (*JAKSO0, "tila")),
    (
        "rahoitus koodiarvo a number",
        setter((*JAKSO0, "opintojenRahoitus"), {"koodiarvo": 6}),
        (*JAKSO0, "opintojenRahoitus", "koodiarvo"),
    ),
    ("suoritukset an object", setter(("suoritukset",), {}), ("suoritukset",)),
    ("suoritus not an object", setter(S0, 1), S0),
    (
        "tutkinto koodiarvo a number",
        setter((*S0, "koulutusmoduuli", "tunniste", "koodiarvo"), 351407),
        (*S0, "koulutusmoduuli", "tunniste", "koodiarvo"),
    ),
    ("osaamisala a string", setter((*S0, "osaamisala"), "1525"), (*S0, "osaamisala")),
    ("osaamisala item a string", setter((*S0, "osaamisala", 0), "1525"), (*S0, "osaamisala", 0)),
    (
        "tutkintonimike koodiarvo missing type",
        setter((*S0, "tutkintonimike", 0, "koodiarvo"), []),
        (*S0, "tutkintonimike", 0, "koodiarvo"),
    ),
    ("toimipiste oid a number", setter((*S0, "toimipiste", "oid"), 3), (*S0, "toimipiste", "oid")),
    ("suorituskieli a string", setter((*S0, "suorituskieli"), "FI"), (*S0, "suorituskieli")),
    ("purkaminen päivä invalid", setter(PURKU_J, "2024-02-30"), PURKU_J),
    ("purkaminen päivä a number", setter(PURKU_O, 20240201), PURKU_O),
    (
        "järjestämismuodot a string",
        setter((*S0, "järjestämismuodot"), "x"),
        (*S0, "järjestämismuodot"),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [pytest.param(mutate, loc, id=name) for name, mutate, loc in INVALID_CASES],
)
def test_invalid_document_names_the_field(
    mutate: Callable[[dict[str, Any]], None], loc: tuple[str | int, ...]
) -> None:
    document = base_oo()
    mutate(document)
    with pytest.raises(DocumentInvalid) as raised:
        parse_opiskeluoikeus(OID, document)
    assert [error.loc for error in raised.value.errors] == [loc]


@pytest.mark.parametrize("document", [[], "oo", 1, None], ids=repr)
def test_document_must_be_an_object(document: object) -> None:
    with pytest.raises(DocumentInvalid) as raised:
        parse_opiskeluoikeus(OID, document)
    assert raised.value.errors == (FieldError((), "expected a JSON object"),)


LENIENT_CASES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("oid null", setter(("oid",), None)),
    ("everything read is missing", lambda d: d.clear()),
    ("empty objects", lambda d: d.update(oppilaitos={}, koulutustoimija={}, tila={}, tyyppi={})),
    ("null sisältyy", setter(("sisältyyOpiskeluoikeuteen",), None)),
    ("unknown fields", setter(("lisätiedot",), {"uusi": [1, "2024-02-30"]})),
    ("bad date we do not read", setter((*S0, "alkamispäivä"), "2024-02-30")),
    ("jakso without tila", deleter((*JAKSO0, "tila"))),
]


@pytest.mark.parametrize(
    "mutate", [pytest.param(mutate, id=name) for name, mutate in LENIENT_CASES]
)
def test_lenient_with_what_is_not_read(mutate: Callable[[dict[str, Any]], None]) -> None:
    document = base_oo()
    mutate(document)
    parse_opiskeluoikeus(OID, document)


@pytest.mark.parametrize(
    "oid", ["1.2.246.562.15.1", "1.2.246.562.15." + "1" * 3000, "1.2.246.562.24.10000000001"]
)
def test_a_request_oid_not_of_koski_format_is_invalid(oid: str) -> None:
    """The queue's `oid` reaches the parser unchecked; the path's is checked by the route."""
    with pytest.raises(DocumentInvalid) as raised:
        parse_opiskeluoikeus(oid, {})
    assert [e.loc for e in raised.value.errors] == [("oid",)]


@pytest.mark.parametrize(
    ("nimi", "expected"),
    [
        ({"fi": "Keuda", "sv": "Keuda sv"}, "Keuda"),
        ({"sv": " Yrkesinstitutet "}, "Yrkesinstitutet"),
        ({"en": "Vocational College"}, "Vocational College"),
        ({"fi": ""}, None),
        ("Keuda", None),
        (None, None),
    ],
    ids=["fi-first", "sv-trimmed", "en", "blank", "not-an-object", "missing"],
)
def test_oppilaitos_name_is_read_leniently(nimi: object, expected: str | None) -> None:
    """S5: a name in another shape is missing, never a reason to refuse the document."""
    document = {"oid": OID, "oppilaitos": {"oid": "1.2.246.562.10.2", "nimi": nimi}}
    assert parse_opiskeluoikeus(OID, document).oppilaitos_nimi == expected
