"""Properties of the parsers on arbitrary input: they refuse with DocumentInvalid and
nothing else, every error points into the document, and what they accept is coherent."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.domain.hoks import DocumentInvalid, ParsedHoks, parse_hoks
from services.ingest.domain.opiskeluoikeus import ParsedOpiskeluoikeus, parse_opiskeluoikeus
from tests.unit.ingest.examples import hoks_files, koski_study_rights, load

HOKS_KEYS = [
    "id",
    "oppija-oid",
    "opiskeluoikeus-oid",
    "hankittavat-ammat-tutkinnon-osat",
    "hankittavat-paikalliset-tutkinnon-osat",
    "hankittavat-yhteiset-tutkinnon-osat",
    "hankittavat-koulutuksen-osat",
    "osa-alueet",
    "osaamisen-hankkimistavat",
    "osaamisen-hankkimistapa-koodi-uri",
    "yksiloiva-tunniste",
    "alku",
    "loppu",
    "osa-aikaisuustieto",
    "keskeytymisajanjaksot",
    "tyopaikalla-jarjestettava-koulutus",
    "vastuullinen-tyopaikka-ohjaaja",
]
KOSKI_KEYS = [
    "oid",
    "oppilaitos",
    "koulutustoimija",
    "parentOid",
    "tila",
    "opiskeluoikeusjaksot",
    "opintojenRahoitus",
    "koodiarvo",
    "tyyppi",
    "sisältyyOpiskeluoikeuteen",
    "suoritukset",
    "koulutusmoduuli",
    "tunniste",
    "osaamisala",
    "järjestämismuodot",
    "järjestämismuoto",
    "oppisopimus",
    "oppisopimuksenPurkaminen",
    "päivä",
    "alku",
]
INTERESTING_STRINGS = st.sampled_from(
    [
        "",
        "2024-01-01",
        "2024-02-29",
        "2023-02-30",
        "2024-1-1",
        "osaamisenhankkimistapa_koulutussopimus",
        "osaamisenhankkimistapa_oppisopimus#1",
        "oppisopimuksenperusta_02",
        "tutkinnonosat_",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | INTERESTING_STRINGS
)


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=5), children, max_size=6)
        ),
        max_leaves=30,
    )


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths(item, (*prefix, index)))
    return found


def exists(document: Any, loc: tuple[str | int, ...]) -> bool:
    node = document
    for part in loc:
        in_object = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_object or in_list):
            return False
        node = node[part]
    return True


@st.composite
def mutated(draw: st.DrawFn, documents: list[Any], keys: list[str]) -> Any:
    """A real document with one subtree replaced by an arbitrary JSON value."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    loc = draw(st.sampled_from(paths(document)))
    replacement = draw(json_values(keys))
    if not loc:
        return replacement
    parent = document
    for part in loc[:-1]:
        parent = parent[part]
    parent[loc[-1]] = replacement
    return document


HOKS_DOCUMENTS = [load(f"ehoks-examples/{name}") for name in hoks_files()]
KOSKI_DOCUMENTS = [document for _, document in koski_study_rights()]


def check_hoks(document: Any) -> None:
    try:
        parsed = parse_hoks(1, document)
    except DocumentInvalid as invalid:
        assert invalid.errors
        for error in invalid.errors:
            assert exists(document, error.loc[:-1]), error
    else:
        assert isinstance(parsed, ParsedHoks)
        for jakso in parsed.jaksot:
            assert jakso.loppu is None or jakso.alku <= jakso.loppu
            for keskeytys in jakso.keskeytymisajanjaksot:
                assert keskeytys.loppu is None or keskeytys.alku <= keskeytys.loppu
        tunnisteet = [jakso.tunniste for jakso in parsed.jaksot]
        assert len(tunnisteet) == len(set(tunnisteet))


def check_opiskeluoikeus(document: Any) -> None:
    try:
        parsed = parse_opiskeluoikeus("1.2.246.562.15.10000000001", document)
    except DocumentInvalid as invalid:
        assert invalid.errors
        for error in invalid.errors:
            assert exists(document, error.loc[:-1]), error
    else:
        assert isinstance(parsed, ParsedOpiskeluoikeus)
        alut = [jakso.alku for jakso in parsed.opiskeluoikeusjaksot]
        assert alut == sorted(alut)


@given(json_values(HOKS_KEYS))
def test_parse_hoks_refuses_only_with_document_invalid(document: Any) -> None:
    check_hoks(document)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated(HOKS_DOCUMENTS, HOKS_KEYS))
def test_parse_hoks_on_damaged_real_documents(document: Any) -> None:
    check_hoks(document)


@given(json_values(KOSKI_KEYS))
def test_parse_opiskeluoikeus_refuses_only_with_document_invalid(document: Any) -> None:
    check_opiskeluoikeus(document)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated(KOSKI_DOCUMENTS, KOSKI_KEYS))
def test_parse_opiskeluoikeus_on_damaged_real_documents(document: Any) -> None:
    check_opiskeluoikeus(document)
