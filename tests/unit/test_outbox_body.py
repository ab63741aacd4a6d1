"""The outbox body `add_events` splices together is the envelope `build_envelope` makes."""

from __future__ import annotations

import datetime as dt
import uuid

from shared.events import NippuJaksoPayload, NippuReady
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import _body


def _nippu_ready() -> NippuReady:
    day = dt.date(2025, 3, 16)
    jakso = NippuJaksoPayload(
        jakso_id=7,
        koulutustoimija_oid="1.2.246.562.10.1",
        oppilaitos_oid=None,
        toimipiste_oid=None,
        tyonantaja="1234567-8",
        tyopaikka='Perhosen Päiväkoti "x"',
        tyopaikka_normalisoitu="perhosen_paivakoti_x",
        tutkintotunnus="351301",
        tutkinnon_osa="106945",
        paikallinen_tutkinnon_osa=None,
        tutkintonimike=["10024"],
        osaamisala=[],
        tyopaikkajakson_alkupvm=day,
        tyopaikkajakson_loppupvm=day,
        rahoituskausi_pvm=day,
        osa_aikaisuus=100,
        sopimustyyppi="koulutussopimus",
        oppisopimuksen_perusta=None,
        kesto=12,
    )
    return NippuReady(
        nippu_id=uuid.uuid4(),
        tunniste="perhosen_paivakoti_2025-03-16_ab",
        koulutustoimija_oid="1.2.246.562.10.1",
        tutkintotunnus="351301",
        tyonantaja="1234567-8",
        tyopaikka="Perhosen Päiväkoti",
        niputuspvm=day,
        voimassa_alkupvm=day,
        voimassa_loppupvm=day + dt.timedelta(days=29),
        jaksot=[jakso],
    )


def test_the_spliced_body_is_the_envelopes_json() -> None:
    event = _nippu_ready()
    message_id, at = uuid.uuid4(), dt.datetime(2025, 3, 16, 6, 0, 1, 5, tzinfo=dt.UTC)
    body = _body(message_id, NippuReady.TYPE, at, "corr-1", event)
    expected = Envelope(
        message_id=message_id,
        type=NippuReady.TYPE,
        occurred_at=at,
        correlation_id="corr-1",
        payload=event.model_dump(mode="json"),
    )
    assert body == expected.model_dump_json().encode()
    assert Envelope.model_validate_json(body) == expected
