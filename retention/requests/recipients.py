"""Who received a person's data (Art 19): read from the disclosure records named in requests.yaml."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import sqlalchemy as sa

from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings
from retention.requests.receipts import Recipient
from retention.requests.view import EstateView
from retention.storage.engines import Estate
from retention.storage.row_keys import RowKey


def recipients_of(
    config: EstateConfig, settings: RequestSettings, estate: Estate, view: EstateView, subjects: Collection[str]
) -> list[Recipient]:
    """Who received the person's data: one entry per recipient, with what and when (read before erasing)."""
    records: dict[str, int] = {}
    data: dict[str, set[str]] = {}
    last: dict[str, str] = {}
    for rec in settings.recipients:
        source, table = rec.table.split(".", 1)
        rows = view.rows_of((source, table), subjects)
        if rows.empty:
            continue
        entry = config.catalog.table(source, table)
        sa_table = sa.Table(table, sa.MetaData(), autoload_with=estate.sources[source])
        columns = [sa_table.c[rec.recipient]]
        columns += [sa_table.c[c] for c in (rec.data, rec.date) if c is not None]
        key = RowKey.of(sa_table, entry.primary_key)
        pks = rows["pk"].tolist()
        with estate.sources[source].connect() as conn:
            for start in range(0, len(pks), 1000):
                for row in conn.execute(
                    sa.select(*columns).where(key.match(conn, sa_table, pks[start : start + 1000]))
                ):
                    values = row._mapping
                    name = str(values[rec.recipient])
                    records[name] = records.get(name, 0) + 1
                    data.setdefault(name, set())
                    if rec.data is not None and values[rec.data] is not None:
                        data[name].add(str(values[rec.data]))
                    if rec.date is not None and values[rec.date] is not None:
                        when = pd.Timestamp(values[rec.date]).date().isoformat()
                        last[name] = max(when, last.get(name, when))
    return [
        Recipient(recipient=name, data=sorted(data[name]), records=count, last_shared=last.get(name))
        for name, count in sorted(records.items())
    ]
