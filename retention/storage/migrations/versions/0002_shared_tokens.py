"""Weak identifier tokens several people share (an office phone), so that a replay after a restore can tell a
shared phone, which ties a row to nobody, from an identifier the engine never saw (a foreign row).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table("shared_tokens", sa.Column("token", sa.String(40), primary_key=True))


def downgrade() -> None:
    op.drop_table("shared_tokens")
