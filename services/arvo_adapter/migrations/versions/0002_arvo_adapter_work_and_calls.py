"""arvo_adapter work (niput, jakso_tunnukset, tpk_niput, changes) and the calls intent log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 17:42:27.537218
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "calls",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.Uuid(), nullable=False),
        sa.Column("jakso_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.Text(), server_default="intended", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        schema="arvo_adapter",
    )
    op.create_index(
        "ix_calls_request_id", "calls", ["request_id"], unique=False, schema="arvo_adapter"
    )
    op.create_index(
        "ix_calls_subject", "calls", ["subject", "endpoint"], unique=False, schema="arvo_adapter"
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("nippu_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("jakso_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("arvo_errors", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("message_body", sa.LargeBinary(), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
        schema="arvo_adapter",
    )
    op.create_index(
        "ix_changes_due",
        "changes",
        ["next_attempt_at"],
        unique=False,
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_changes_nippu", "changes", ["nippu_id", "id"], unique=False, schema="arvo_adapter"
    )
    op.create_table(
        "niput",
        sa.Column("nippu_id", sa.Uuid(), nullable=False),
        sa.Column("tunniste", sa.Text(), nullable=False),
        sa.Column("koulutustoimija_oid", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("linkki", sa.Text(), nullable=True),
        sa.Column("voimassa_loppupvm", sa.Date(), nullable=True),
        sa.Column("tila", sa.Text(), nullable=True),
        sa.Column("vastattu_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("arvo_errors", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("message_body", sa.LargeBinary(), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("nippu_id", name=op.f("pk_niput")),
        sa.UniqueConstraint("tunniste", name=op.f("uq_niput_tunniste")),
        schema="arvo_adapter",
    )
    op.create_index(
        "ix_niput_due",
        "niput",
        ["next_attempt_at"],
        unique=False,
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "tpk_niput",
        sa.Column("tpk_nippu_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tunnus", sa.Text(), nullable=True),
        sa.Column("kysely_linkki", sa.Text(), nullable=True),
        sa.Column("voimassa_loppupvm", sa.Date(), nullable=True),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("arvo_errors", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("message_body", sa.LargeBinary(), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tpk_nippu_id", name=op.f("pk_tpk_niput")),
        sa.UniqueConstraint("request_id", name=op.f("uq_tpk_niput_request_id")),
        schema="arvo_adapter",
    )
    op.create_index(
        "ix_tpk_niput_due",
        "tpk_niput",
        ["next_attempt_at"],
        unique=False,
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "jakso_tunnukset",
        sa.Column("nippu_id", sa.Uuid(), nullable=False),
        sa.Column("jakso_id", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("kesto", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("tunnus", sa.Text(), nullable=True),
        sa.Column("ei_kuulu", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("cancelled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("code_deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["nippu_id"],
            ["arvo_adapter.niput.nippu_id"],
            name=op.f("fk_jakso_tunnukset_nippu_id_niput"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("nippu_id", "jakso_id", name=op.f("pk_jakso_tunnukset")),
        sa.UniqueConstraint("request_id", name=op.f("uq_jakso_tunnukset_request_id")),
        schema="arvo_adapter",
    )


def downgrade() -> None:

    op.drop_table("jakso_tunnukset", schema="arvo_adapter")
    op.drop_index(
        "ix_tpk_niput_due",
        table_name="tpk_niput",
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_table("tpk_niput", schema="arvo_adapter")
    op.drop_index(
        "ix_niput_due",
        table_name="niput",
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_table("niput", schema="arvo_adapter")
    op.drop_index("ix_changes_nippu", table_name="changes", schema="arvo_adapter")
    op.drop_index(
        "ix_changes_due",
        table_name="changes",
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_table("changes", schema="arvo_adapter")
    op.drop_index("ix_calls_subject", table_name="calls", schema="arvo_adapter")
    op.drop_index("ix_calls_request_id", table_name="calls", schema="arvo_adapter")
    op.drop_table("calls", schema="arvo_adapter")
