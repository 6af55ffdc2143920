"""Alembic's environment for the control database: runs the revisions on the connection the caller hands it in
`config.attributes["connection"]` (retention.storage.migrate does), inside that connection's transaction, so
the caller decides when it commits and which lock it holds meanwhile."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from retention.storage.schema import metadata


def run() -> None:
    if context.is_offline_mode():
        raise RuntimeError(
            "the control database's revisions need a live connection (the first one inspects what an earlier "
            "version left), so they cannot be rendered as SQL; run them through ensure_schema"
        )
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, sa.Connection):
        raise RuntimeError(
            "no connection: run the revisions through retention.storage.schema.ensure_schema, or put a "
            'SQLAlchemy Connection in config.attributes["connection"] (retention.storage.migrate.alembic_config)'
        )
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run()
