"""Tables of schema `sender`: the bundles it sends, their messages and each message's
history, with the inbox, outbox and dated runs.

The recipient's address and the rendered text are the only personal data; they sit in
their own columns so that the clean-up (P1) can empty them while keys, statuses and
history stay.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
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

SCHEMA = "sender"
metadata = service_metadata(SCHEMA)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
runs = runs_table(metadata)

niput = Table(
    "niput",
    metadata,
    Column("nippu_id", Uuid, primary_key=True),
    Column("tunniste", Text, nullable=False),
    Column("koulutustoimija_oid", Text, nullable=False),
    Column("linkki", Text, nullable=False),
    Column("oppilaitokset", JSON, nullable=False),
    Column("niputuspvm", Date, nullable=False),
    Column("voimassa_loppupvm", Date, nullable=False),
    Column("first_sent_on", Date),
    Column("reminder", Text),
    Column("reminder_on", Date),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(None, "first_sent_on"),
)
"""A bundle as the sender knows it from `send.requested`: what its messages say (S5),
the last answer day, the day its first message went out, and the reminder run's decision
(`reminder`: `sent`, `no_channel`, `vastattu`, `vastausaika_loppunut_ennen_muistutusta`)."""

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("nippu_id", Uuid, ForeignKey(niput.c.nippu_id), nullable=False),
    Column("kind", Text, nullable=False),
    Column("kanava", Text, nullable=False),
    Column("resend_number", Integer, nullable=False, server_default=text("0")),
    Column("message_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("recipient", Text),
    Column("subject", Text),
    Column("body", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("claim_id", Uuid),
    Column("claimed_until", DateTime(timezone=True)),
    Column("sending_since", DateTime(timezone=True)),
    Column("server_id", Text),
    Column("detail", Text),
    Column("sent_at", DateTime(timezone=True)),
    Column("personal_data_removed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("nippu_id", "kind", "kanava", "resend_number"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "server_id"),
)
"""One message: unique by (bundle, kind, channel, resend number), recorded before it is
sent ("never twice"). `status`: recorded → sending → sent | failed | unknown; an SMS's
delivery report then makes it delivered or bounced. `claim_id`/`claimed_until` fence the
worker that holds it; `sending_since` opens the unknown-outcome window."""

message_history = Table(
    "message_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("message_id", BigInteger, ForeignKey(messages.c.id), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", Text, nullable=False),
    Column("detail", Text),
    Index(None, "message_id"),
)
"""Every state change of a message, with the server's answer (recipient taken out)."""
