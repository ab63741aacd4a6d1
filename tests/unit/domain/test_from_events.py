"""The event payloads → the bundler's domain values (services.bundler.domain.from_events).

Each case is a payload as it arrives on the wire (JSON) and the value the rules read.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.bundler.domain import from_events
from services.bundler.domain.jakso import (
    Hoks,
    Jakso,
    JaksoId,
    Keskeytymisajanjakso,
    Ohjaaja,
    Opiskeluoikeus,
    Opiskeluoikeusjakso,
    Suoritus,
    TutkinnonOsa,
)
from services.ingest.domain.hoks import hoks_changed, parse_hoks
from shared.domain.koodisto import Hankkimistapa
from shared.events import HoksChanged, OpiskeluoikeusChanged
from tests.unit.domain.builders import d
from tests.unit.ingest.examples import hoks_files, load

PATH = "hankittavat-yhteiset-tutkinnon-osat[0].osa-alueet[1].osaamisen-hankkimistavat[0]"
OSA = {"kind": "ammatillinen", "koodi_uri": "tutkinnonosat_106945", "koodi": "106945"}


def jakso_json(**fields: Any) -> dict[str, Any]:
    return {
        "yksiloiva_tunniste": "t1",
        "path": PATH,
        "tunniste_puuttuu": False,
        "hankkimistapa": "koulutussopimus",
        "alku": "2024-01-08",
        "tutkinnon_osa": OSA,
        **fields,
    }


def expected_jakso(**fields: Any) -> Jakso:
    base: dict[str, Any] = {
        "hoks_id": 7,
        "yksiloiva_tunniste": "t1",
        "path": PATH,
        "hankkimistapa": Hankkimistapa.KOULUTUSSOPIMUS,
        "alku": d("2024-01-08"),
        "loppu": None,
        "osa_aikaisuus": None,
        "tyopaikan_nimi": None,
        "tyopaikan_ytunnus": None,
        "ohjaaja": Ohjaaja(),
        "tutkinnon_osa": TutkinnonOsa("ammatillinen", "tutkinnonosat_106945", "106945"),
    }
    return Jakso(**{**base, **fields})


JAKSO_CASES: dict[str, tuple[dict[str, Any], Jakso, JaksoId]] = {
    "J2-yksiloiva-tunniste": (jakso_json(), expected_jakso(), JaksoId(7, "t1")),
    "J2-path-identity": (
        jakso_json(yksiloiva_tunniste=None, tunniste_puuttuu=True),
        expected_jakso(yksiloiva_tunniste=None),
        JaksoId(7, PATH, is_path=True),
    ),
    "J2-flagged-tunniste-ignored": (
        jakso_json(yksiloiva_tunniste=" ", tunniste_puuttuu=True),
        expected_jakso(yksiloiva_tunniste=None),
        JaksoId(7, PATH, is_path=True),
    ),
    "E12-no-ohjaaja-object": (jakso_json(ohjaaja=None), expected_jakso(), JaksoId(7, "t1")),
    "full-jakso": (
        jakso_json(
            hankkimistapa="oppisopimus",
            loppu="2024-03-15",
            osa_aikaisuus=80,
            keskeytymisajanjaksot=[
                {"alku": "2024-02-01", "loppu": "2024-02-05"},
                {"alku": "2024-03-01"},
            ],
            oppisopimuksen_perusta="02",
            tyopaikan_nimi="Perhosen Päiväkoti",
            tyopaikan_ytunnus="1234567-8",
            ohjaaja={"nimi": "Olli", "sahkoposti": "olli@perhonen.fi", "puhelinnumero": "040"},
            tutkinnon_osa={
                "kind": "yhteinen",
                "koodi_uri": "tutkinnonosat_106727",
                "koodi": "106727",
                "osa_alue_koodi_uri": "ammatillisenoppiaineet_ku",
            },
            unknown_future_field="ignored",
        ),
        expected_jakso(
            hankkimistapa=Hankkimistapa.OPPISOPIMUS,
            loppu=d("2024-03-15"),
            osa_aikaisuus=80,
            keskeytymisajanjaksot=(
                Keskeytymisajanjakso(d("2024-02-01"), d("2024-02-05")),
                Keskeytymisajanjakso(d("2024-03-01")),
            ),
            oppisopimuksen_perusta="02",
            tyopaikan_nimi="Perhosen Päiväkoti",
            tyopaikan_ytunnus="1234567-8",
            ohjaaja=Ohjaaja("Olli", "olli@perhonen.fi", "040"),
            tutkinnon_osa=TutkinnonOsa(
                "yhteinen",
                "tutkinnonosat_106727",
                "106727",
                osa_alue_koodi_uri="ammatillisenoppiaineet_ku",
            ),
        ),
        JaksoId(7, "t1"),
    ),
}


@pytest.mark.parametrize(("payload", "expected", "jakso_id"), JAKSO_CASES.values(), ids=JAKSO_CASES)
def test_hoks_changed_to_domain(
    payload: dict[str, Any], expected: Jakso, jakso_id: JaksoId
) -> None:
    event = HoksChanged.model_validate(
        {
            "hoks_id": 7,
            "oppija_oid": "1.2.246.562.24.1",
            "opiskeluoikeus_oid": "1.2.246.562.15.1",
            "version": 3,
            "is_tuva": True,
            "jaksot": [payload],
        }
    )
    assert from_events.hoks(event) == Hoks(7, "1.2.246.562.24.1", "1.2.246.562.15.1", True)
    (jakso,) = from_events.jaksot(event)
    assert jakso == expected
    assert jakso.id == jakso_id


OO_CASES: dict[str, tuple[dict[str, Any], Opiskeluoikeus]] = {
    "minimal": (
        {"oid": "1.2.246.562.15.1", "version": 1},
        Opiskeluoikeus("1.2.246.562.15.1", None, None, None),
    ),
    "E6-E10-N1-full": (
        {
            "oid": "1.2.246.562.15.1",
            "version": 2,
            "koulutustoimija_oid": "1.2.246.562.10.1",
            "oppilaitos_oid": "1.2.246.562.10.2",
            "tyyppi": "ammatillinenkoulutus",
            "sisaltyy_opiskeluoikeuteen": "1.2.246.562.15.9",
            "opiskeluoikeusjaksot": [
                {"alku": "2020-08-01", "tila": "lasna", "opintojen_rahoitus": "1"},
                {"alku": "2024-05-01", "tila": "eronnut"},
            ],
            "suoritukset": [
                {
                    "tyyppi": "ammatillinentutkinto",
                    "tutkinto": "351407",
                    "osaamisalat": ["1525"],
                    "tutkintonimikkeet": ["10024"],
                    "toimipiste_oid": "1.2.246.562.10.3",
                    "suorituskieli": "SV",
                }
            ],
            "oppisopimuksen_purkamispaiva": "2024-04-30",
        },
        Opiskeluoikeus(
            oid="1.2.246.562.15.1",
            koulutustoimija_oid="1.2.246.562.10.1",
            oppilaitos_oid="1.2.246.562.10.2",
            tyyppi="ammatillinenkoulutus",
            opiskeluoikeusjaksot=(
                Opiskeluoikeusjakso(d("2020-08-01"), "lasna", "1"),
                Opiskeluoikeusjakso(d("2024-05-01"), "eronnut"),
            ),
            sisaltyy_opiskeluoikeuteen="1.2.246.562.15.9",
            suoritukset=(
                Suoritus(
                    "ammatillinentutkinto",
                    "351407",
                    ("1525",),
                    ("10024",),
                    "1.2.246.562.10.3",
                    "SV",
                ),
            ),
            oppisopimuksen_purkamispaiva=d("2024-04-30"),
        ),
    ),
}


@pytest.mark.parametrize(("payload", "expected"), OO_CASES.values(), ids=OO_CASES)
def test_opiskeluoikeus_changed_to_domain(
    payload: dict[str, Any], expected: Opiskeluoikeus
) -> None:
    assert from_events.opiskeluoikeus(OpiskeluoikeusChanged.model_validate(payload)) == expected


@pytest.mark.parametrize("name", hoks_files())
def test_every_example_hoks_keeps_its_jaksot_and_identities_across_the_wire(name: str) -> None:
    """J1, J2 across the boundary: the ingest's jaksot arrive as the same jaksot, with
    the same identities (tunniste, else path), after a JSON round trip."""
    parsed = parse_hoks(7, load(f"ehoks-examples/{name}"))
    wire = hoks_changed(parsed, version=1).model_dump_json()
    jaksot = from_events.jaksot(HoksChanged.model_validate_json(wire))
    assert [(j.id.tunniste, j.id.is_path) for j in jaksot] == [
        (j.tunniste, j.tunniste_puuttuu) for j in parsed.jaksot
    ]
    assert [(j.alku, j.loppu, j.tyopaikan_ytunnus) for j in jaksot] == [
        (j.alku, j.loppu, j.tyopaikan_ytunnus) for j in parsed.jaksot
    ]
