"""Bundles for the flow's tests, formed directly in the bundler's tables as a TEP or TPK
run would leave them (the runs are tested on their own), and the events that follow."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import insert, select, update

from services.bundler.store.tables import jaksot, niput, tpk_niput
from shared.events import NippuLinked, NippuLinkedJaksoPayload, SendStatus
from tests.integration.bundler.conftest import KOULUTUSTOIMIJA, d
from tests.support.events import EventCapture
from tests.support.services import Running

LINK = "https://arvo.example/v/"


async def form_nippu(
    bundler: Running,
    jakso_ids: list[int],
    *,
    niputuspvm: str = "2025-03-16",
    koulutustoimija: str = KOULUTUSTOIMIJA,
    kesto: int | None = None,
    tila: str = "odottaa_lahetysta",
) -> uuid.UUID:
    """A TEP bundle of these jaksot as the run of its niputuspvm forms it (N1, W1, W2):
    the jaksot `niputettu` with their bundle."""
    nippu_id = uuid.uuid4()
    pvm = d(niputuspvm)
    async with bundler.service.db.transaction() as session:
        await session.execute(
            insert(niput).values(
                id=nippu_id,
                tunniste=f"perhosen_paivakoti_{niputuspvm}_{nippu_id.hex[:8]}",
                ohjaaja_normalisoitu="olli_ohjaaja",
                tyopaikan_ytunnus="1234567-8",
                koulutustoimija_oid=koulutustoimija,
                tutkinto="351301",
                niputuspvm=pvm,
                tyopaikka="Perhosen Päiväkoti",
                tyopaikka_normalisoitu="perhosen_paivakoti",
                lahetyspvm=pvm,
                voimassa_loppupvm=pvm + dt.timedelta(days=29),
                tila=tila,
            )
        )
        values: dict[str, Any] = {"nippu_id": nippu_id, "tila": "niputettu", "rule": "N1"}
        if kesto is not None:
            values["kesto"] = kesto
        await session.execute(update(jaksot).where(jaksot.c.id.in_(jakso_ids)).values(**values))
    return nippu_id


async def form_tpk_nippu(
    bundler: Running, *, koulutustoimija: str = KOULUTUSTOIMIJA, kausi: str = "2024-07-01"
) -> uuid.UUID:
    tpk_nippu_id = uuid.uuid4()
    async with bundler.service.db.transaction() as session:
        await session.execute(
            insert(tpk_niput).values(
                id=tpk_nippu_id,
                koulutustoimija_oid=koulutustoimija,
                tyopaikan_ytunnus="1234567-8",
                tyopaikka_normalisoitu="perhosen_paivakoti",
                tyopaikka="Perhosen Päiväkoti",
                kausi_alku=d(kausi),
                kausi_loppu=d("2024-12-31"),
                vastaamisajan_alkupvm=d("2025-01-01"),
                vastaamisajan_loppupvm=d("2025-02-28"),
            )
        )
    return tpk_nippu_id


async def tunniste_of(bundler: Running, nippu_id: uuid.UUID) -> str:
    async with bundler.service.db.transaction() as session:
        value = await session.scalar(select(niput.c.tunniste).where(niput.c.id == nippu_id))
    assert value is not None
    return str(value)


def linked(
    nippu_id: uuid.UUID,
    tunniste: str,
    jakso_ids: list[int],
    *,
    outcome: str = "linked",
    voimassa: str = "2025-04-14",
) -> NippuLinked:
    has_link = outcome == "linked"
    return NippuLinked(
        nippu_id=nippu_id,
        tunniste=tunniste,
        outcome=outcome,
        linkki=f"{LINK}{tunniste}" if has_link else None,
        voimassa_loppupvm=d(voimassa) if has_link else None,
        jaksot=[
            NippuLinkedJaksoPayload(
                jakso_id=j, tunnus=f"T{j}" if outcome != "arvo_ei_kyselya" else None
            )
            for j in jakso_ids
        ],
    )


def send_status(
    nippu_id: uuid.UUID,
    tila: str | None,
    *,
    kanava: str = "email",
    kind: str = "initial",
    at: str = "2025-03-20T10:00:00+02:00",
    nippu_tila: str | None = None,
    number: int = 0,
) -> SendStatus:
    return SendStatus(
        nippu_id=nippu_id,
        message_key=f"{nippu_id}:{kind}:{kanava}:{number}",
        kind=kind,
        kanava=kanava,
        tila=tila,
        at=dt.datetime.fromisoformat(at),
        nippu_tila=nippu_tila,
    )


def of_nippu(event_type: str, nippu_id: uuid.UUID) -> Any:
    """A predicate on captured events: this type, about this bundle."""

    def matches(event: dict[str, Any]) -> bool:
        return bool(
            event["type"] == event_type and event["payload"].get("nippu_id") == str(nippu_id)
        )

    return matches


async def no_more(events: EventCapture, event_type: str, nippu_id: uuid.UUID, count: int) -> None:
    """Exactly `count` such events so far (after the effects were seen committed, the
    outbox relay has had its chance: callers first wait for a later event)."""
    assert len(events.matching(of_nippu(event_type, nippu_id))) == count
