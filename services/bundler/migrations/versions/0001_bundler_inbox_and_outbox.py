"""bundler inbox and outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:57:45.117460
"""

from collections.abc import Sequence

from alembic import op

from shared.migrations import create_inbox_v1, create_outbox_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
SCHEMA = "bundler"


def upgrade() -> None:
    create_inbox_v1(SCHEMA)
    create_outbox_v1(SCHEMA)


def downgrade() -> None:
    op.drop_table("outbox", schema=SCHEMA)
    op.drop_table("inbox", schema=SCHEMA)
