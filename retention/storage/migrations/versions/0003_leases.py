"""Leases with a heartbeat and an expiry replace the request locks: the daily run, each source's writes, each
request and each person are held by one live run at a time, and a killed run's are taken over when they expire.
Request locks held at the upgrade belong to runs of the old version; they are dropped with their table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_leases_owner", "leases", ["owner"])
    op.drop_index("ix_request_locks_owner", table_name="request_locks")
    op.drop_table("request_locks")


def downgrade() -> None:
    op.create_table(
        "request_locks",
        sa.Column("lock_key", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(40), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_request_locks_owner", "request_locks", ["owner"])
    op.drop_index("ix_leases_owner", table_name="leases")
    op.drop_table("leases")
