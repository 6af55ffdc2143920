"""A persistent subject index: the subject of each row of the identifier tables and when its snapshot began,
so a request reads its person's rows by key, and the ledger's entries indexed by subject, so it reads only
that person's history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

SOURCE_NAME_CHARS = 80
TABLE_NAME_CHARS = 120


def upgrade() -> None:
    op.create_table(
        "subject_rows",
        sa.Column("source", sa.String(SOURCE_NAME_CHARS), primary_key=True),
        sa.Column("table_name", sa.String(TABLE_NAME_CHARS), primary_key=True),
        sa.Column("pk", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(40), nullable=False),
    )
    op.create_index("ix_subject_rows_subject", "subject_rows", ["subject"])
    op.create_table(
        "index_marks",
        sa.Column("source", sa.String(SOURCE_NAME_CHARS), primary_key=True),
        sa.Column("table_name", sa.String(TABLE_NAME_CHARS), primary_key=True),
        sa.Column("snapshot_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ledger_entries_subject", "ledger_entries", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_subject", table_name="ledger_entries")
    op.drop_table("index_marks")
    op.drop_index("ix_subject_rows_subject", table_name="subject_rows")
    op.drop_table("subject_rows")
