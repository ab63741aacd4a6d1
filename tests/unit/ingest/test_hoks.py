"""parse_hoks: which osaamisen hankkimistavat are jaksot (J1), their identity (J2), and
which documents are refused with which field named."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from services.ingest.domain.hoks import (
    DocumentInvalid,
    FieldError,
    Jakso,
    Keskeytymisajanjakso,
    Ohjaaja,
    TutkinnonOsa,
    parse_hoks,
)
from shared.domain.koodisto import Hankkimistapa
from tests.unit.ingest.examples import at, deleter, hoks_files, load, setter

AMMAT = "hankittavat-ammat-tutkinnon-osat"
YHTEISET = "hankittavat-yhteiset-tutkinnon-osat"
PAIKALLISET = "hankittavat-paikalliset-tutkinnon-osat"
KOULUTUKSEN_OSAT = "hankittavat-koulutuksen-osat"
OHT = "osaamisen-hankkimistavat"
KOULUTUSSOPIMUS = "osaamisenhankkimistapa_koulutussopimus"


def example(name: str) -> Any:
    return load(f"ehoks-examples/{name}")


# --- the real examples ----------------------------------------------------------------


@pytest.mark.parametrize("name", hoks_files())
def test_every_example_is_accepted(name: str) -> None:
    document = example(name)
    parsed = parse_hoks(42, document)
    assert parsed.hoks_id == 42
    assert parsed.oppija_oid == document["oppija-oid"]
    assert parsed.opiskeluoikeus_oid == document["opiskeluoikeus-oid"]


def test_J1_anonymised_example_1_yields_its_two_koulutussopimus_jaksot() -> None:
    parsed = parse_hoks(1, example("anonymised-example-1.json"))
    assert parsed.is_tuva is False
    assert parsed.jaksot == (
        Jakso(
            yksiloiva_tunniste="447289501649525720624952571844",
            path="hankittavat-ammat-tutkinnon-osat[0].osaamisen-hankkimistavat[1]",
            hankkimistapa=Hankkimistapa.KOULUTUSSOPIMUS,
            alku=dt.date(2024, 1, 16),
            loppu=dt.date(2024, 3, 17),
            osa_aikaisuus=100,
            keskeytymisajanjaksot=(),
            oppisopimuksen_perusta=None,
            tyopaikan_nimi="Superhamsteri",
            tyopaikan_ytunnus="3213687-7",
            ohjaaja=Ohjaaja(
                nimi="Ompar pompar",
                sahkoposti="omitted-hoks-fields-are-nullified@gmail.com",
                puhelinnumero="0449854300",
            ),
            tutkinnon_osa=TutkinnonOsa(
                kind="ammatillinen",
                koodi_uri="tutkinnonosat_106233",
                koodi="106233",
                nimi=None,
                osa_alue_koodi_uri=None,
            ),
        ),
        Jakso(
            yksiloiva_tunniste="447289501856807906785680790783",
            path="hankittavat-ammat-tutkinnon-osat[1].osaamisen-hankkimistavat[2]",
            hankkimistapa=Hankkimistapa.KOULUTUSSOPIMUS,
            alku=dt.date(2024, 10, 30),
            loppu=dt.date(2024, 12, 15),
            osa_aikaisuus=100,
            keskeytymisajanjaksot=(),
            oppisopimuksen_perusta=None,
            tyopaikan_nimi="Helsingin koti, Bulevardin tp",
            tyopaikan_ytunnus="0116480-8",
            ohjaaja=Ohjaaja(
                nimi="Kallio, Kirsi",
                sahkoposti="kirsi.kallio@bulevardi.fi",
                puhelinnumero="0447904300",
            ),
            tutkinnon_osa=TutkinnonOsa(
                kind="ammatillinen",
                koodi_uri="tutkinnonosat_106226",
                koodi="106226",
                nimi=None,
                osa_alue_koodi_uri=None,
            ),
        ),
    )
    assert [j.tunniste_puuttuu for j in parsed.jaksot] == [False, False]


def test_J1_anonymised_example_2_yields_two_jaksot_in_different_tutkinnon_osat() -> None:
    parsed = parse_hoks(2, example("anonymised-example-2.json"))
    assert [
        (j.yksiloiva_tunniste, j.tutkinnon_osa.koodi, j.tyopaikan_nimi) for j in parsed.jaksot
    ] == [
        ("338953280041441482914144148322", "106281", "Eponton Oy, Ravintola Karppi"),
        ("338953281646081596934608159694", "106274", "Kahvila Kolputinrauta Oy"),
    ]


def test_J1_hoksit_yields_koulutussopimukset_everywhere_but_not_muu() -> None:
    parsed = parse_hoks(3, example("hoksit.json"))
    assert [j.yksiloiva_tunniste for j in parsed.jaksot] == [
        "oht1",
        "oht2",
        "oht3",
        "oht4",
        "oht6",
        "oht7",
        "oht8",
    ]
    by_id = {j.yksiloiva_tunniste: j for j in parsed.jaksot}
    # oht1 has no tyopaikalla-jarjestettava-koulutus: still a jakso (E12 decides later).
    assert by_id["oht1"].tyopaikan_nimi is None
    assert by_id["oht1"].tyopaikan_ytunnus is None
    assert by_id["oht1"].ohjaaja is None
    assert by_id["oht1"].osa_aikaisuus is None
    assert by_id["oht4"].osa_aikaisuus == 5
    assert by_id["oht6"].tutkinnon_osa == TutkinnonOsa(
        kind="yhteinen",
        koodi_uri="tutkinnonosat_101054",
        koodi="101054",
        nimi=None,
        osa_alue_koodi_uri=by_id["oht6"].tutkinnon_osa.osa_alue_koodi_uri,
    )
    assert by_id["oht6"].path == (
        "hankittavat-yhteiset-tutkinnon-osat[1].osa-alueet[0].osaamisen-hankkimistavat[0]"
    )
    # The instructor has no phone number in these documents.
    assert by_id["oht2"].ohjaaja == Ohjaaja("Vastuullinen, Vesku", "mail@mail.mail", None)


def test_J1_yhteiset_osa_alueet_carry_their_osa_alue_koodi() -> None:
    parsed = parse_hoks(4, example("hoks_ainoastaan_YTOja.json"))
    assert [(j.path, j.tutkinnon_osa.kind, j.osa_aikaisuus) for j in parsed.jaksot] == [
        (
            "hankittavat-yhteiset-tutkinnon-osat[0].osa-alueet[0].osaamisen-hankkimistavat[0]",
            "yhteinen",
            50,
        ),
        (
            "hankittavat-yhteiset-tutkinnon-osat[0].osa-alueet[1].osaamisen-hankkimistavat[0]",
            "yhteinen",
            25,
        ),
    ]
    document = example("hoks_ainoastaan_YTOja.json")
    alueet = document[YHTEISET][0]["osa-alueet"]
    assert [j.tutkinnon_osa.osa_alue_koodi_uri for j in parsed.jaksot] == [
        alueet[0]["osa-alue-koodi-uri"],
        alueet[1]["osa-alue-koodi-uri"],
    ]


def test_J2_jaksot_without_tunniste_are_known_by_path_and_flagged() -> None:
    parsed = parse_hoks(5, example("hoks_ainoastaan_YTOja.json"))
    assert all(j.tunniste_puuttuu for j in parsed.jaksot)
    assert [j.tunniste for j in parsed.jaksot] == [j.path for j in parsed.jaksot]


def test_J1_paikallinen_tutkinnon_osa_carries_its_name() -> None:
    (jakso,) = parse_hoks(6, example("hoks_ainoastaan_paikallisia.json")).jaksot
    assert jakso.path == "hankittavat-paikalliset-tutkinnon-osat[0].osaamisen-hankkimistavat[0]"
    assert jakso.tutkinnon_osa == TutkinnonOsa("paikallinen", None, None, "Orientaatio alaan", None)
    assert (jakso.alku, jakso.loppu) == (dt.date(2020, 11, 1), dt.date(2021, 12, 13))


def test_J1_jakso_without_workplace_data_is_kept() -> None:
    (jakso,) = parse_hoks(7, example("hoks_ainoastaan_ammatillisia.json")).jaksot
    assert jakso.tutkinnon_osa.koodi == "400005"
    assert (jakso.alku, jakso.loppu, jakso.osa_aikaisuus) == (
        dt.date(2028, 2, 10),
        dt.date(2028, 2, 10),
        75,
    )
    assert jakso.ohjaaja is None


def test_J1_single_tutkinnon_osa() -> None:
    (jakso,) = parse_hoks(8, example("hoks_yksi_tutkinnonosa.json")).jaksot
    assert (jakso.tyopaikan_nimi, jakso.tyopaikan_ytunnus) == ("Terraframe", "2345678-0")
    assert jakso.tutkinnon_osa.koodi_uri == "tutkinnonosat_103590"


def test_E4_tuva_hoks_is_flagged_and_has_no_jaksot() -> None:
    parsed = parse_hoks(9, example("hoks_tuva.json"))
    assert parsed.is_tuva is True
    assert parsed.jaksot == ()


# --- constructed documents ------------------------------------------------------------


def jakso_doc(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "osaamisen-hankkimistapa-koodi-uri": KOULUTUSSOPIMUS,
        "yksiloiva-tunniste": "t1",
        "alku": "2024-01-01",
        "loppu": "2024-02-29",
        "osa-aikaisuustieto": 80,
        "keskeytymisajanjaksot": [{"alku": "2024-01-10", "loppu": "2024-01-12"}],
        "tyopaikalla-jarjestettava-koulutus": {
            "tyopaikan-nimi": "Perhosen Päiväkoti",
            "tyopaikan-y-tunnus": "1234567-8",
            "vastuullinen-tyopaikka-ohjaaja": {
                "nimi": "Ohjaaja, Olli",
                "sahkoposti": "olli@example.fi",
                "puhelinnumero": "0401234567",
            },
        },
    }
    base.update(fields)
    return base


def base_hoks() -> dict[str, Any]:
    """Two jaksot: ammat[0].oht[1] and yhteiset[0].osa-alueet[0].oht[0]."""
    return {
        "oppija-oid": "1.2.246.562.24.10000000001",
        "opiskeluoikeus-oid": "1.2.246.562.15.10000000001",
        AMMAT: [
            {
                "tutkinnon-osa-koodi-uri": "tutkinnonosat_100001",
                OHT: [
                    {"osaamisen-hankkimistapa-koodi-uri": "osaamisenhankkimistapa_muu"},
                    jakso_doc(),
                ],
            }
        ],
        YHTEISET: [
            {
                "tutkinnon-osa-koodi-uri": "tutkinnonosat_101053",
                "osa-alueet": [
                    {
                        "osa-alue-koodi-uri": "ammatillisenoppiaineet_vvai",
                        OHT: [jakso_doc(**{"yksiloiva-tunniste": "t2"})],
                    }
                ],
            }
        ],
    }


AMMAT_JAKSO: tuple[str | int, ...] = (AMMAT, 0, OHT, 1)
YHTEINEN_JAKSO: tuple[str | int, ...] = (YHTEISET, 0, "osa-alueet", 0, OHT, 0)


def test_base_document_is_valid() -> None:
    parsed = parse_hoks(10, base_hoks())
    assert [j.yksiloiva_tunniste for j in parsed.jaksot] == ["t1", "t2"]
    first = parsed.jaksot[0]
    assert first.keskeytymisajanjaksot == (
        Keskeytymisajanjakso(dt.date(2024, 1, 10), dt.date(2024, 1, 12)),
    )
    assert first.tutkinnon_osa.koodi == "100001"
    assert parsed.jaksot[1].tutkinnon_osa.osa_alue_koodi_uri == "ammatillisenoppiaineet_vvai"


TKO = (*AMMAT_JAKSO, "tyopaikalla-jarjestettava-koulutus")
INVALID_CASES: list[tuple[str, Callable[[dict[str, Any]], None], tuple[str | int, ...]]] = [
    ("oppija-oid missing", deleter(("oppija-oid",)), ("oppija-oid",)),
    ("oppija-oid empty", setter(("oppija-oid",), ""), ("oppija-oid",)),
    ("oppija-oid null", setter(("oppija-oid",), None), ("oppija-oid",)),
    ("opiskeluoikeus-oid missing", deleter(("opiskeluoikeus-oid",)), ("opiskeluoikeus-oid",)),
    ("opiskeluoikeus-oid a number", setter(("opiskeluoikeus-oid",), 15), ("opiskeluoikeus-oid",)),
    (
        "opiskeluoikeus-oid of 3000 digits",
        setter(("opiskeluoikeus-oid",), "1.2.246.562.15." + "1" * 3000),
        ("opiskeluoikeus-oid",),
    ),
    (
        "opiskeluoikeus-oid a person's",
        setter(("opiskeluoikeus-oid",), "1.2.246.562.24.10000000001"),
        ("opiskeluoikeus-oid",),
    ),
    ("oppija-oid too short", setter(("oppija-oid",), "1.2.246.562.24.1"), ("oppija-oid",)),
    (
        "oppija-oid with a newline",
        setter(("oppija-oid",), "1.2.246.562.24.10000000001\n"),
        ("oppija-oid",),
    ),
    ("id other than the path's", setter(("id",), 11), ("id",)),
    ("id as a string", setter(("id",), "10"), ("id",)),
    ("id as a bool", setter(("id",), True), ("id",)),
    (
        "loppu not a calendar date",
        setter((*AMMAT_JAKSO, "loppu"), "2023-02-30"),
        (*AMMAT_JAKSO, "loppu"),
    ),
    (
        "loppu without zero padding",
        setter((*AMMAT_JAKSO, "loppu"), "2024-3-01"),
        (*AMMAT_JAKSO, "loppu"),
    ),
    ("loppu in basic format", setter((*AMMAT_JAKSO, "loppu"), "20240301"), (*AMMAT_JAKSO, "loppu")),
    (
        "loppu a datetime",
        setter((*AMMAT_JAKSO, "loppu"), "2024-03-01T00:00:00"),
        (*AMMAT_JAKSO, "loppu"),
    ),
    ("loppu a number", setter((*AMMAT_JAKSO, "loppu"), 20240301), (*AMMAT_JAKSO, "loppu")),
    ("alku month 13", setter((*AMMAT_JAKSO, "alku"), "2024-13-01"), (*AMMAT_JAKSO, "alku")),
    ("alku missing", deleter((*AMMAT_JAKSO, "alku")), (*AMMAT_JAKSO, "alku")),
    ("loppu before alku", setter((*AMMAT_JAKSO, "loppu"), "2023-12-31"), (*AMMAT_JAKSO, "loppu")),
    (
        "loppu before alku in an osa-alue",
        setter((*YHTEINEN_JAKSO, "loppu"), "2023-12-31"),
        (*YHTEINEN_JAKSO, "loppu"),
    ),
    (
        "keskeytymisajanjakso loppu before alku",
        setter((*AMMAT_JAKSO, "keskeytymisajanjaksot", 0, "loppu"), "2024-01-09"),
        (*AMMAT_JAKSO, "keskeytymisajanjaksot", 0, "loppu"),
    ),
    (
        "keskeytymisajanjakso alku invalid",
        setter((*AMMAT_JAKSO, "keskeytymisajanjaksot", 0, "alku"), "2024-02-30"),
        (*AMMAT_JAKSO, "keskeytymisajanjaksot", 0, "alku"),
    ),
    (
        "keskeytymisajanjakso alku missing",
        deleter((*AMMAT_JAKSO, "keskeytymisajanjaksot", 0, "alku")),
        (*AMMAT_JAKSO, "keskeytymisajanjaksot", 0, "alku"),
    ),
    (
        "keskeytymisajanjaksot a string",
        setter((*AMMAT_JAKSO, "keskeytymisajanjaksot"), "2024-01-10"),
        (*AMMAT_JAKSO, "keskeytymisajanjaksot"),
    ),
    (
        "keskeytymisajanjakso not an object",
        setter((*AMMAT_JAKSO, "keskeytymisajanjaksot", 0), "2024-01-10"),
        (*AMMAT_JAKSO, "keskeytymisajanjaksot", 0),
    ),
    ("tutkinnon osat a string", setter((AMMAT,), "none"), (AMMAT,)),
    ("tutkinnon osa not an object", setter((AMMAT, 0), 5), (AMMAT, 0)),
    ("hankkimistavat an object", setter((AMMAT, 0, OHT), {}), (AMMAT, 0, OHT)),
    ("hankkimistapa not an object", setter((AMMAT, 0, OHT, 0), []), (AMMAT, 0, OHT, 0)),
    ("osa-alueet a string", setter((YHTEISET, 0, "osa-alueet"), "x"), (YHTEISET, 0, "osa-alueet")),
    (
        "koulutuksen osat a dict",
        setter((KOULUTUKSEN_OSAT,), {"a": 1}),
        (KOULUTUKSEN_OSAT,),
    ),
    (
        "hankkimistapa koodi-uri a number",
        setter((AMMAT, 0, OHT, 0, "osaamisen-hankkimistapa-koodi-uri"), 3),
        (AMMAT, 0, OHT, 0, "osaamisen-hankkimistapa-koodi-uri"),
    ),
    (
        "tutkinnon-osa-koodi-uri a number",
        setter((AMMAT, 0, "tutkinnon-osa-koodi-uri"), 100001),
        (AMMAT, 0, "tutkinnon-osa-koodi-uri"),
    ),
    (
        "osa-aikaisuustieto a string",
        setter((*AMMAT_JAKSO, "osa-aikaisuustieto"), "50"),
        (*AMMAT_JAKSO, "osa-aikaisuustieto"),
    ),
    (
        "osa-aikaisuustieto a fraction",
        setter((*AMMAT_JAKSO, "osa-aikaisuustieto"), 50.5),
        (*AMMAT_JAKSO, "osa-aikaisuustieto"),
    ),
    (
        "osa-aikaisuustieto a bool",
        setter((*AMMAT_JAKSO, "osa-aikaisuustieto"), True),
        (*AMMAT_JAKSO, "osa-aikaisuustieto"),
    ),
    (
        "yksiloiva-tunniste a number",
        setter((*AMMAT_JAKSO, "yksiloiva-tunniste"), 1),
        (*AMMAT_JAKSO, "yksiloiva-tunniste"),
    ),
    (
        "J2 yksiloiva-tunniste used twice",
        setter((*YHTEINEN_JAKSO, "yksiloiva-tunniste"), "t1"),
        (*YHTEINEN_JAKSO, "yksiloiva-tunniste"),
    ),
    (
        "oppisopimuksen perusta a number",
        setter((*AMMAT_JAKSO, "oppisopimuksen-perusta-koodi-uri"), 2),
        (*AMMAT_JAKSO, "oppisopimuksen-perusta-koodi-uri"),
    ),
    ("tyopaikalla-jarjestettava-koulutus a list", setter(TKO, []), TKO),
    ("tyopaikan-nimi a number", setter((*TKO, "tyopaikan-nimi"), 1), (*TKO, "tyopaikan-nimi")),
    (
        "tyopaikan-y-tunnus a list",
        setter((*TKO, "tyopaikan-y-tunnus"), ["1234567-8"]),
        (*TKO, "tyopaikan-y-tunnus"),
    ),
    (
        "ohjaaja a string",
        setter((*TKO, "vastuullinen-tyopaikka-ohjaaja"), "Olli"),
        (*TKO, "vastuullinen-tyopaikka-ohjaaja"),
    ),
    (
        "ohjaaja nimi a number",
        setter((*TKO, "vastuullinen-tyopaikka-ohjaaja", "nimi"), 7),
        (*TKO, "vastuullinen-tyopaikka-ohjaaja", "nimi"),
    ),
    (
        "ohjaaja puhelinnumero a number",
        setter((*TKO, "vastuullinen-tyopaikka-ohjaaja", "puhelinnumero"), 401234567),
        (*TKO, "vastuullinen-tyopaikka-ohjaaja", "puhelinnumero"),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [pytest.param(mutate, loc, id=name) for name, mutate, loc in INVALID_CASES],
)
def test_invalid_document_names_the_field(
    mutate: Callable[[dict[str, Any]], None], loc: tuple[str | int, ...]
) -> None:
    document = base_hoks()
    mutate(document)
    with pytest.raises(DocumentInvalid) as raised:
        parse_hoks(10, document)
    assert [error.loc for error in raised.value.errors] == [loc]
    assert raised.value.errors[0].msg


@pytest.mark.parametrize("document", [[], "hoks", 1, None, True], ids=repr)
def test_document_must_be_an_object(document: object) -> None:
    with pytest.raises(DocumentInvalid) as raised:
        parse_hoks(1, document)
    assert raised.value.errors == (FieldError((), "expected a JSON object"),)


def test_all_errors_are_reported_at_once() -> None:
    document = base_hoks()
    del document["oppija-oid"]
    at(document, AMMAT_JAKSO)["loppu"] = "2023-02-30"
    at(document, YHTEINEN_JAKSO)["osa-aikaisuustieto"] = "full"
    with pytest.raises(DocumentInvalid) as raised:
        parse_hoks(10, document)
    assert sorted(str(e.loc) for e in raised.value.errors) == sorted(
        str(loc)
        for loc in [
            ("oppija-oid",),
            (*AMMAT_JAKSO, "loppu"),
            (*YHTEINEN_JAKSO, "osa-aikaisuustieto"),
        ]
    )


# --- leniency: what we don't read is not judged --------------------------------------

LENIENT_CASES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("id equal to the path's", setter(("id",), 10)),
    ("unknown top-level field", setter(("tulevaisuuden-kentta",), {"x": [1, 2]})),
    ("unknown jakso field", setter((*AMMAT_JAKSO, "uusi-kentta"), "2023-02-30")),
    ("bad date in a non-jakso hankkimistapa", setter((AMMAT, 0, OHT, 0, "loppu"), "2023-02-30")),
    ("loppu missing: still ongoing", deleter((*AMMAT_JAKSO, "loppu"))),
    ("loppu null", setter((*AMMAT_JAKSO, "loppu"), None)),
    ("loppu equal to alku", setter((*AMMAT_JAKSO, "loppu"), "2024-01-01")),
    ("osa-aikaisuustieto 0 (rules judge it)", setter((*AMMAT_JAKSO, "osa-aikaisuustieto"), 0)),
    ("osa-aikaisuustieto 150", setter((*AMMAT_JAKSO, "osa-aikaisuustieto"), 150)),
    ("ongoing keskeytys", deleter((*AMMAT_JAKSO, "keskeytymisajanjaksot", 0, "loppu"))),
    ("sections null", setter((AMMAT,), None)),
    ("aiemmin hankitut of any shape", setter(("aiemmin-hankitut-ammat-tutkinnon-osat",), "x")),
    (
        "hankkimistapa without koodi-uri",
        deleter((AMMAT, 0, OHT, 0, "osaamisen-hankkimistapa-koodi-uri")),
    ),
    ("ohjaaja without phone", deleter((*TKO, "vastuullinen-tyopaikka-ohjaaja", "puhelinnumero"))),
]


@pytest.mark.parametrize(
    "mutate", [pytest.param(mutate, id=name) for name, mutate in LENIENT_CASES]
)
def test_lenient_with_what_is_not_read(mutate: Callable[[dict[str, Any]], None]) -> None:
    document = base_hoks()
    mutate(document)
    parse_hoks(10, document)


def test_missing_loppu_gives_none() -> None:
    document = base_hoks()
    del at(document, AMMAT_JAKSO)["loppu"]
    assert parse_hoks(10, document).jaksot[0].loppu is None


def test_J2_empty_tunniste_counts_as_missing() -> None:
    document = base_hoks()
    at(document, AMMAT_JAKSO)["yksiloiva-tunniste"] = ""
    jakso = parse_hoks(10, document).jaksot[0]
    assert jakso.yksiloiva_tunniste is None
    assert jakso.tunniste_puuttuu
    assert jakso.tunniste == "hankittavat-ammat-tutkinnon-osat[0].osaamisen-hankkimistavat[1]"


def test_T2_oppisopimus_with_its_perusta() -> None:
    document = base_hoks()
    at(document, AMMAT_JAKSO).update(
        {
            "osaamisen-hankkimistapa-koodi-uri": "osaamisenhankkimistapa_oppisopimus",
            "oppisopimuksen-perusta-koodi-uri": "oppisopimuksenperusta_02",
        }
    )
    jakso = parse_hoks(10, document).jaksot[0]
    assert (jakso.hankkimistapa, jakso.oppisopimuksen_perusta) == ("oppisopimus", "02")


def test_J1_koodi_uri_with_version_suffix_is_recognised() -> None:
    document = base_hoks()
    at(document, AMMAT_JAKSO)["osaamisen-hankkimistapa-koodi-uri"] = KOULUTUSSOPIMUS + "#1"
    assert [j.yksiloiva_tunniste for j in parse_hoks(10, document).jaksot] == ["t1", "t2"]


def test_J1_jaksot_under_koulutuksen_osat_make_a_tuva_hoks() -> None:
    document = base_hoks()
    document[KOULUTUKSEN_OSAT] = [
        {
            "koulutuksen-osa-koodi-uri": "koulutuksenosattuva_104",
            OHT: [jakso_doc(**{"yksiloiva-tunniste": "t3"})],
        }
    ]
    parsed = parse_hoks(10, document)
    assert parsed.is_tuva is True
    tuva = parsed.jaksot[-1]
    assert tuva.path == "hankittavat-koulutuksen-osat[0].osaamisen-hankkimistavat[0]"
    assert tuva.tutkinnon_osa == TutkinnonOsa(
        "koulutuksen_osa", "koulutuksenosattuva_104", None, None, None
    )


def test_is_a_deep_copy_safe_pure_function() -> None:
    document = base_hoks()
    snapshot = copy.deepcopy(document)
    assert parse_hoks(10, document) == parse_hoks(10, document)
    assert document == snapshot
