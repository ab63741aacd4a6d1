"""arvo_adapter partial indexes for the housekeeping pass (calls in doubt, rejected rows)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 18:51:03.212532
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_index(
        "ix_calls_in_doubt",
        "calls",
        ["endpoint"],
        unique=False,
        schema="arvo_adapter",
        postgresql_where=sa.text("state IN ('intended', 'unknown')"),
    )
    op.create_index(
        "ix_changes_rejected",
        "changes",
        ["id"],
        unique=False,
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'rejected' AND dead_lettered_at IS NULL"),
    )
    op.create_index(
        "ix_niput_rejected",
        "niput",
        ["nippu_id"],
        unique=False,
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'rejected' AND dead_lettered_at IS NULL"),
    )
    op.create_index(
        "ix_tpk_niput_rejected",
        "tpk_niput",
        ["tpk_nippu_id"],
        unique=False,
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'rejected' AND dead_lettered_at IS NULL"),
    )


def downgrade() -> None:

    op.drop_index(
        "ix_tpk_niput_rejected",
        table_name="tpk_niput",
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'rejected' AND dead_lettered_at IS NULL"),
    )
    op.drop_index(
        "ix_niput_rejected",
        table_name="niput",
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'rejected' AND dead_lettered_at IS NULL"),
    )
    op.drop_index(
        "ix_changes_rejected",
        table_name="changes",
        schema="arvo_adapter",
        postgresql_where=sa.text("state = 'rejected' AND dead_lettered_at IS NULL"),
    )
    op.drop_index(
        "ix_calls_in_doubt",
        table_name="calls",
        schema="arvo_adapter",
        postgresql_where=sa.text("state IN ('intended', 'unknown')"),
    )
