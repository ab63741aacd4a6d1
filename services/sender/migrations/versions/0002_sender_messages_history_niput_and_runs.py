"""sender messages, history, niput and runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 17:39:41.770719
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import create_runs_v1

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
SCHEMA = "sender"


def upgrade() -> None:
    op.create_table(
        "niput",
        sa.Column("nippu_id", sa.Uuid(), nullable=False),
        sa.Column("tunniste", sa.Text(), nullable=False),
        sa.Column("koulutustoimija_oid", sa.Text(), nullable=False),
        sa.Column("linkki", sa.Text(), nullable=False),
        sa.Column("oppilaitokset", sa.JSON(), nullable=False),
        sa.Column("niputuspvm", sa.Date(), nullable=False),
        sa.Column("voimassa_loppupvm", sa.Date(), nullable=False),
        sa.Column("first_sent_on", sa.Date(), nullable=True),
        sa.Column("reminder", sa.Text(), nullable=True),
        sa.Column("reminder_on", sa.Date(), nullable=True),
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
        sa.PrimaryKeyConstraint("nippu_id", name=op.f("pk_niput")),
        schema="sender",
    )
    op.create_index(
        op.f("ix_sender_niput_first_sent_on"),
        "niput",
        ["first_sent_on"],
        unique=False,
        schema="sender",
    )
    create_runs_v1(SCHEMA)
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("nippu_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("kanava", sa.Text(), nullable=False),
        sa.Column("resend_number", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_id", sa.Uuid(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("server_id", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("personal_data_removed_at", sa.DateTime(timezone=True), nullable=True),
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
            ["nippu_id"], ["sender.niput.nippu_id"], name=op.f("fk_messages_nippu_id_niput")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "nippu_id", "kind", "kanava", "resend_number", name=op.f("uq_messages_nippu_id")
        ),
        schema="sender",
    )
    op.create_index(
        op.f("ix_sender_messages_server_id"),
        "messages",
        ["server_id"],
        unique=False,
        schema="sender",
    )
    op.create_index(
        op.f("ix_sender_messages_status"),
        "messages",
        ["status", "next_attempt_at"],
        unique=False,
        schema="sender",
    )
    op.create_table(
        "message_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["sender.messages.id"],
            name=op.f("fk_message_history_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_history")),
        schema="sender",
    )
    op.create_index(
        op.f("ix_sender_message_history_message_id"),
        "message_history",
        ["message_id"],
        unique=False,
        schema="sender",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_sender_message_history_message_id"), table_name="message_history", schema="sender"
    )
    op.drop_table("message_history", schema="sender")
    op.drop_index(op.f("ix_sender_messages_status"), table_name="messages", schema="sender")
    op.drop_index(op.f("ix_sender_messages_server_id"), table_name="messages", schema="sender")
    op.drop_table("messages", schema="sender")
    op.drop_table("runs", schema="sender")
    op.drop_index(op.f("ix_sender_niput_first_sent_on"), table_name="niput", schema="sender")
    op.drop_table("niput", schema="sender")
