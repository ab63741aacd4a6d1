"""The event payloads built from parsed documents survive the trip through JSON."""

from __future__ import annotations

import datetime as dt

import orjson

from services.ingest.domain.hoks import hoks_changed, hoks_deleted, parse_hoks
from services.ingest.domain.opiskeluoikeus import opiskeluoikeus_changed, parse_opiskeluoikeus
from shared.events import HoksChanged, HoksDeleted, OpiskeluoikeusChanged
from tests.unit.ingest.examples import koski_study_rights, load


def test_type_constants_are_the_public_routing_keys() -> None:
    assert HoksChanged.TYPE == "hoks.changed"
    assert HoksDeleted.TYPE == "hoks.deleted"
    assert OpiskeluoikeusChanged.TYPE == "opiskeluoikeus.changed"


def test_hoks_changed_round_trips_through_json() -> None:
    parsed = parse_hoks(7, load("ehoks-examples/hoksit.json"))
    payload = hoks_changed(parsed, version=3)
    data = orjson.loads(payload.model_dump_json())
    assert data["hoks_id"] == 7 and data["version"] == 3 and data["is_tuva"] is False
    first = data["jaksot"][0]
    assert first["yksiloiva_tunniste"] == "oht1"
    assert first["tunniste_puuttuu"] is False
    assert first["alku"] == "2020-02-10"
    assert first["tutkinnon_osa"]["kind"] == "ammatillinen"
    assert first["ohjaaja"] is None
    assert HoksChanged.model_validate(data) == payload


def test_hoks_changed_carries_every_jakso_field() -> None:
    parsed = parse_hoks(1, load("ehoks-examples/anonymised-example-1.json"))
    jakso = hoks_changed(parsed, version=1).jaksot[1]
    assert jakso.yksiloiva_tunniste == "447289501856807906785680790783"
    assert jakso.path == "hankittavat-ammat-tutkinnon-osat[1].osaamisen-hankkimistavat[2]"
    assert (jakso.alku, jakso.loppu) == (dt.date(2024, 10, 30), dt.date(2024, 12, 15))
    assert jakso.osa_aikaisuus == 100
    assert (jakso.tyopaikan_nimi, jakso.tyopaikan_ytunnus) == (
        "Helsingin koti, Bulevardin tp",
        "0116480-8",
    )
    assert jakso.ohjaaja is not None and jakso.ohjaaja.sahkoposti == "kirsi.kallio@bulevardi.fi"
    assert jakso.tutkinnon_osa.koodi == "106226"


def test_hoks_deleted() -> None:
    assert hoks_deleted(5, 4).model_dump() == {"hoks_id": 5, "version": 4}


def test_opiskeluoikeus_changed_round_trips_through_json() -> None:
    for _, document in koski_study_rights():
        payload = opiskeluoikeus_changed(parse_opiskeluoikeus(document["oid"], document), 2)
        assert OpiskeluoikeusChanged.model_validate_json(payload.model_dump_json()) == payload


def test_opiskeluoikeus_changed_fields() -> None:
    oid = "1.2.246.562.15.13312692646"
    parsed = parse_opiskeluoikeus(oid, load(f"koski-examples/koski_api_opiskeluoikeus_{oid}.json"))
    data = orjson.loads(opiskeluoikeus_changed(parsed, 1).model_dump_json())
    assert data["koulutustoimija_oid"] == "1.2.246.562.10.55867603791"
    assert data["opiskeluoikeusjaksot"][0] == {
        "alku": "2015-12-07",
        "tila": "lasna",
        "opintojen_rahoitus": "14",
    }
    assert data["suoritukset"][1]["tyyppi"] == "ammatillinentutkinto"
    assert data["oppisopimuksen_purkamispaiva"] is None
