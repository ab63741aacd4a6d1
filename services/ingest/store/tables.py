"""Tables of schema `ingest`.

`document_versions` keeps every accepted version of every HOKS and study right, as
received, with its content hash (append-only: what upstream sent is never rewritten). The
type is `json`, not `jsonb`: it keeps the text exactly as received and costs PostgreSQL a
syntax check rather than a conversion on the ingest's hot path; it still answers `->`.
`documents` holds the latest version number and hash per document: its row lock orders
concurrent writers, so versions are gapless and their events leave in version order.
The one rewrite of a stored version is P1's: the content of a version superseded (or
deleted) longer than the retention is removed, its number, hash and times stay.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSON

from shared.db import service_metadata
from shared.jobs import runs_table
from shared.messaging.outbox import outbox_table

SCHEMA = "ingest"
metadata = service_metadata(SCHEMA)

documents = Table(
    "documents",
    metadata,
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", Text),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("kind", "key"),
)

document_versions = Table(
    "document_versions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", Text),
    Column("document", JSON),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("source", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("personal_data_removed_at", DateTime(timezone=True)),
    UniqueConstraint("kind", "key", "version"),
)

outbox = outbox_table(metadata)
runs = runs_table(metadata)
