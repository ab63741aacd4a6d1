"""The event payload models are the contract between services (api.md "Events")."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel

from shared import events

#: api.md, "Events": the fixed names, plus the two the bundler adds for K4 and E14.
API_MD_TYPES = {
    "hoks.changed",
    "hoks.deleted",
    "opiskeluoikeus.changed",
    "nippu.ready",
    "nippu.linked",
    "tpk_nippu.ready",
    "tpk_nippu.linked",
    "send.requested",
    "send.status",
    "arvo.status_update",
    "survey.status",
}
ADDED_TYPES = {"jakso.kesto_changed", "jakso.cancelled"}


def _payload_models() -> list[type[BaseModel]]:
    return [
        model
        for model in vars(events).values()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and isinstance(getattr(model, "TYPE", None), str)
    ]


def test_every_event_of_the_contract_has_exactly_one_model() -> None:
    types = [model.TYPE for model in _payload_models()]  # type: ignore[attr-defined]
    assert sorted(types) == sorted(API_MD_TYPES | ADDED_TYPES)


def test_send_requested_round_trips_through_json() -> None:
    sent = events.SendRequested(
        nippu_id=uuid.uuid4(),
        tunniste="perhosen_paivakoti_2026-03-16_ab12",
        kind="initial",
        linkki="https://arvo.example/v/perhosen_paivakoti_2026-03-16_ab12",
        niputuspvm=dt.date(2026, 3, 16),
        voimassa_loppupvm=dt.date(2026, 4, 14),
        koulutustoimija_oid="1.2.246.562.10.1",
        oppilaitokset=["Stadin ammattiopisto"],
        sahkoposti="ohjaaja@example.fi",
    )
    assert events.SendRequested.model_validate_json(sent.model_dump_json()) == sent


def test_opiskeluoikeus_changed_without_oppilaitos_nimi_still_reads() -> None:
    """`oppilaitos_nimi` was added compatibly: a payload of an older producer reads."""
    old = {"oid": "1.2.246.562.15.1", "version": 1, "oppilaitos_oid": "1.2.246.562.10.2"}
    assert events.OpiskeluoikeusChanged.model_validate(old).oppilaitos_nimi is None
