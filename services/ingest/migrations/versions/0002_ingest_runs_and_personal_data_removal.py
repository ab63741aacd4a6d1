"""ingest runs and personal-data removal of superseded versions

The ingest's dated jobs (the P1 clean-up) get their runs table; a document version whose
content the clean-up removed says when.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 18:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import create_runs_v1

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_runs_v1("ingest")
    op.add_column(
        "document_versions",
        sa.Column("personal_data_removed_at", sa.DateTime(timezone=True), nullable=True),
        schema="ingest",
    )


def downgrade() -> None:
    op.drop_column("document_versions", "personal_data_removed_at", schema="ingest")
    op.drop_table("runs", schema="ingest")
