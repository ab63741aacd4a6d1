"""Tables of schema `bundler`: the system of record of every jakso's feedback.

What the rules read is kept as the events carried it (the event vocabulary of
`shared/events.py`); the instructor's name, e-mail and phone are the only personal data,
kept in their own columns so that the clean-up (P1) can remove them while the normalised
keys, states and counts stay for the reports.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from shared.db import service_metadata
from shared.jobs import runs_table
from shared.messaging.inbox import inbox_table
from shared.messaging.outbox import outbox_table

SCHEMA = "bundler"
metadata = service_metadata(SCHEMA)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
runs = runs_table(metadata)


def _timestamps() -> tuple[Column[object], Column[object]]:
    return (
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


hoksit = Table(
    "hoksit",
    metadata,
    Column("hoks_id", BigInteger, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("oppija_oid", Text),
    Column("opiskeluoikeus_oid", Text),
    Column("is_tuva", Boolean, nullable=False, server_default=text("false")),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    *_timestamps(),
    Index(None, "oppija_oid"),
    Index(None, "opiskeluoikeus_oid"),
)
"""The latest applied version of each HOKS (E3, E4, E14; K1 reads all of an oppija's).

A `hoks.deleted` that arrives before any version of its HOKS leaves a tombstone (no
oppija or study right): an older `hoks.changed` arriving after it is then ignored."""

opiskeluoikeudet = Table(
    "opiskeluoikeudet",
    metadata,
    Column("oid", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("koulutustoimija_oid", Text),
    Column("data", JSON, nullable=False),
    *_timestamps(),
)
"""The latest applied `opiskeluoikeus.changed` payload of each study right (E3–E10, K1);
it holds no personal data."""

niput = Table(
    "niput",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tunniste", Text, nullable=False, unique=True),
    Column("ohjaaja_normalisoitu", Text, nullable=False),
    Column("tyopaikan_ytunnus", Text, nullable=False),
    Column("koulutustoimija_oid", Text, nullable=False),
    Column("tutkinto", Text, nullable=False),
    Column("niputuspvm", Date, nullable=False),
    Column("tyopaikka", Text, nullable=False),
    Column("tyopaikka_normalisoitu", Text, nullable=False),
    Column("run_id", Uuid),
    Column("lahetyspvm", Date, nullable=False),
    Column("voimassa_loppupvm", Date, nullable=False),
    Column("tila", Text, nullable=False),
    Column("linkki", Text),
    Column("sahkoposti", Text),
    Column("puhelinnumero", Text),
    Column("sahkoposti_tila", Text),
    Column("puhelin_tila", Text),
    Column("resend_count", Integer, nullable=False, server_default=text("0")),
    Column("personal_data_removed_at", DateTime(timezone=True)),
    *_timestamps(),
    Index(None, "koulutustoimija_oid", "niputuspvm"),
)
"""TEP bundles (N1): one link, one message. The N1 key is not unique: a late jakso of a
key already bundled forms a new bundle on a later run (D3). `sahkoposti`/`puhelinnumero`
are the addresses chosen by C3 (personal data, P1); `*_tila` say why one is missing."""

tpk_niput = Table(
    "tpk_niput",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("koulutustoimija_oid", Text, nullable=False),
    Column("tyopaikan_ytunnus", Text, nullable=False),
    Column("tyopaikka_normalisoitu", Text, nullable=False),
    Column("tyopaikka", Text, nullable=False),
    Column("kausi_alku", Date, nullable=False),
    Column("kausi_loppu", Date, nullable=False),
    Column("vastaamisajan_alkupvm", Date, nullable=False),
    Column("vastaamisajan_loppupvm", Date, nullable=False),
    Column("run_id", Uuid),
    Column("tunnus", Text),
    Column("kysely_linkki", Text),
    Column("voimassa_loppupvm", Date),
    *_timestamps(),
    Index(None, "koulutustoimija_oid", "kausi_alku"),
)
"""TPK bundles (T3) of a kausi (T1); late jaksot join one without a link yet (T4)."""

jaksot = Table(
    "jaksot",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("hoks_id", BigInteger, nullable=False),
    Column("tunniste", Text, nullable=False),
    Column("tunniste_puuttuu", Boolean, nullable=False),
    Column("hoks_version", Integer, nullable=False),
    Column("oppija_oid", Text, nullable=False),
    Column("opiskeluoikeus_oid", Text, nullable=False),
    Column("koulutustoimija_oid", Text),
    Column("hankkimistapa", Text, nullable=False),
    Column("alku", Date, nullable=False),
    Column("loppu", Date),
    Column("osa_aikaisuus", Integer),
    Column("tyopaikan_nimi", Text),
    Column("tyopaikan_ytunnus", Text),
    Column("tyopaikka_normalisoitu", Text),
    Column("ohjaaja_nimi", Text),
    Column("ohjaaja_sahkoposti", Text),
    Column("ohjaaja_puhelinnumero", Text),
    Column("ohjaaja_normalisoitu", Text),
    Column("data", JSON, nullable=False),
    Column("tila", Text, nullable=False),
    Column("syy", Text, nullable=False),
    Column("rule", Text),
    Column("niputuspvm", Date),
    Column("kesto", Integer),
    Column("nippu_id", Uuid, ForeignKey(niput.c.id)),
    Column("tpk_nippu_id", Uuid, ForeignKey(tpk_niput.c.id)),
    Column("tunnus", Text),
    Column("poistettu", Boolean, nullable=False, server_default=text("false")),
    Column("personal_data_removed_at", DateTime(timezone=True)),
    *_timestamps(),
    UniqueConstraint("hoks_id", "tunniste", "tunniste_puuttuu"),
    Index(None, "tila", "niputuspvm"),
    Index(None, "oppija_oid"),
    Index(None, "opiskeluoikeus_oid"),
    Index(None, "koulutustoimija_oid", "loppu"),
    Index(None, "nippu_id"),
)
"""One row per workplace period, keyed as J2 says: (hoks_id, yksiloiva-tunniste), or
(hoks_id, path) with `tunniste_puuttuu`. `data` is the jakso's `hoks.changed` payload
without the instructor (whose fields are the `ohjaaja_*` columns, removed by P1); the
normalised keys (N4) stay for bundles and reports."""

jakso_transitions = Table(
    "jakso_transitions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("jakso_id", BigInteger, ForeignKey(jaksot.c.id), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("from_tila", Text),
    Column("from_syy", Text),
    Column("to_tila", Text, nullable=False),
    Column("to_syy", Text, nullable=False),
    Column("rule", Text),
    Column("changed", JSON, nullable=False, server_default=text("'[]'::json")),
    Column("cause", Text, nullable=False),
    Column("message_id", Uuid),
    Column("applied", Boolean, nullable=False, server_default=text("true")),
    Column("loppu_muutos", Text),
    Index(None, "jakso_id", "id"),
)
"""E18: every re-evaluation that changed a jakso: old → new state, the rule, which fields
changed (names only, never values: no personal data), and what caused it (an event type
and version, or a run). `applied` is false for a jakso already bundled: the new judgement
is recorded, the stored state stays (E18). `loppu_muutos` is W4's kind of end-date change."""

lahetykset = Table(
    "lahetykset",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("nippu_id", Uuid, ForeignKey(niput.c.id), nullable=False),
    Column("message_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("kanava", Text),
    Column("tila", Text),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Index(None, "nippu_id", "at"),
)
"""The sender's `send.status` reports of each bundle (S1–S4), in order."""
