"""Tables of schema `arvo_adapter`: the work Arvo must do, what it answered, and the
intent log of every creating call (docs/decisions.md, "arvo_adapter").

- `niput`: one row per TEP bundle (`nippu.ready`): its state of work, outcome, link and
  validity. `tunniste` is the bundle's own identifier, reused for every link attempt.
- `jakso_tunnukset`: one row per jakso of a bundle: the `request_id` used for every
  attempt to create its code, the code Arvo gave, whether it was cancelled.
- `tpk_niput`: one row per TPK bundle (`tpk_nippu.ready`) and its link.
- `changes`: follow-up work on a bundle (`arvo.status_update`, `jakso.kesto_changed`,
  `jakso.cancelled`), done in id order per bundle.
- `calls`: the intent log. A row is committed BEFORE each creating call (POST
  vastaajatunnus, nippu, tyopaikkakysely-tunnus) and closed with what Arvo answered;
  a row left `intended` (a crash) or `unknown` (a lost answer) is a call whose effect
  we do not know, which the next attempt reconciles (links) or which is counted as a
  possible orphan (codes, TPK links: the contract cannot find them).

Rows waiting for Arvo have `next_attempt_at`; the worker takes due rows, so a backlog
(Arvo down, circuit open) waits here, durable, and is never dropped.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.messaging.inbox import inbox_table
from shared.messaging.outbox import outbox_table

SCHEMA = "arvo_adapter"
metadata = service_metadata(SCHEMA)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


def _work_columns() -> list[Column]:  # type: ignore[type-arg]
    """What every row of work carries: its state, its retry schedule, its last error, and
    the message it came from (body for the dead-letter queue when Arvo rejects it)."""
    return [
        # pending → done | rejected
        Column("state", Text, nullable=False, server_default="pending"),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column(
            "next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
        Column("last_error", Text),
        Column("arvo_errors", JSONB),
        Column("message_id", Uuid, nullable=False),
        Column("message_body", LargeBinary, nullable=False),
        Column("dead_lettered_at", DateTime(timezone=True)),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("done_at", DateTime(timezone=True)),
    ]


niput = Table(
    "niput",
    metadata,
    Column("nippu_id", Uuid, primary_key=True),
    Column("tunniste", Text, nullable=False, unique=True),
    Column("koulutustoimija_oid", Text, nullable=False),
    # The NippuReady payload as received: the link request is built from it.
    Column("payload", JSONB, nullable=False),
    # linked | arvo_ei_kyselya | vastausaika_umpeutunut
    Column("outcome", Text),
    Column("linkki", Text),
    Column("voimassa_loppupvm", Date),
    Column("tila", Text),
    Column("vastattu_reported_at", DateTime(timezone=True)),
    *_work_columns(),
)
Index("ix_niput_due", niput.c.next_attempt_at, postgresql_where=text("state = 'pending'"))
# The housekeeping pass looks for these every few seconds: partial indexes keep it cheap.
NOT_DEAD_LETTERED = "state = 'rejected' AND dead_lettered_at IS NULL"
CALLS_IN_DOUBT = "state IN ('intended', 'unknown')"
Index("ix_niput_rejected", niput.c.nippu_id, postgresql_where=text(NOT_DEAD_LETTERED))

jakso_tunnukset = Table(
    "jakso_tunnukset",
    metadata,
    Column(
        "nippu_id",
        Uuid,
        ForeignKey(niput.c.nippu_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("jakso_id", BigInteger, primary_key=True),
    # Sent with every attempt to create this jakso's code (arvo-api.md: the same again on
    # retry), so each code Arvo makes for this jakso carries it.
    Column("request_id", Uuid, nullable=False, unique=True),
    # The VastaajatunnusRequest body without request_id and metatiedot.
    Column("data", JSONB, nullable=False),
    Column("kesto", Integer, nullable=False),
    # pending → created | no_survey | cancelled
    Column("state", Text, nullable=False, server_default="pending"),
    Column("tunnus", Text),
    # Created with, or later patched to, ei_kuulu_lahetettavien_perusjoukkoon.
    Column("ei_kuulu", Boolean, nullable=False, server_default=text("false")),
    Column("cancelled", Boolean, nullable=False, server_default=text("false")),
    Column("code_deleted_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tpk_niput = Table(
    "tpk_niput",
    metadata,
    Column("tpk_nippu_id", Uuid, primary_key=True),
    Column("request_id", Uuid, nullable=False, unique=True),
    Column("payload", JSONB, nullable=False),
    Column("tunnus", Text),
    Column("kysely_linkki", Text),
    Column("voimassa_loppupvm", Date),
    *_work_columns(),
)
Index("ix_tpk_niput_due", tpk_niput.c.next_attempt_at, postgresql_where=text("state = 'pending'"))
Index("ix_tpk_niput_rejected", tpk_niput.c.tpk_nippu_id, postgresql_where=text(NOT_DEAD_LETTERED))

changes = Table(
    "changes",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("nippu_id", Uuid, nullable=False),
    # patch_nippu | patch_kesto | delete_code
    Column("kind", Text, nullable=False),
    Column("jakso_id", BigInteger),
    Column("payload", JSONB, nullable=False),
    *_work_columns(),
)
Index("ix_changes_due", changes.c.next_attempt_at, postgresql_where=text("state = 'pending'"))
Index("ix_changes_nippu", changes.c.nippu_id, changes.c.id)
Index("ix_changes_rejected", changes.c.id, postgresql_where=text(NOT_DEAD_LETTERED))

calls = Table(
    "calls",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # create_vastaajatunnus | create_nippu | create_tyopaikkakysely_tunnus
    Column("endpoint", Text, nullable=False),
    Column("request_id", Uuid, nullable=False),
    # nippu_id for codes and links, tpk_nippu_id for TPK links
    Column("subject", Uuid, nullable=False),
    Column("jakso_id", BigInteger),
    # intended → answered | not_done | unknown; unknown/intended links → reconciled
    Column("state", Text, nullable=False, server_default="intended"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
)
Index("ix_calls_subject", calls.c.subject, calls.c.endpoint)
Index("ix_calls_request_id", calls.c.request_id)
Index(
    "ix_calls_in_doubt",
    calls.c.endpoint,
    postgresql_where=text(CALLS_IN_DOUBT),
)
