"""The small marker table in each source: the ids of the batches its own transactions committed."""

from __future__ import annotations

import sqlalchemy as sa

from retention.config.database import MARKER_TABLE

marker_metadata = sa.MetaData()


marker = sa.Table(
    MARKER_TABLE,
    marker_metadata,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)
