"""Who received a person's data (Art 19): read from the disclosure records named in requests.yaml."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import sqlalchemy as sa

from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings
from retention.requests.view import EstateView
from retention.storage.engines import Estate


def recipients_of(
    config: EstateConfig, settings: RequestSettings, estate: Estate, view: EstateView, subjects: Collection[str]
) -> list[dict[str, object]]:
    """Who received the person's data: one entry per recipient, with what and when (read before erasing)."""
    out: dict[str, dict[str, object]] = {}
    for rec in settings.recipients:
        source, table = rec.table.split(".", 1)
        rows = view.rows_of((source, table), subjects)
        if rows.empty:
            continue
        entry = config.catalog.table(source, table)
        sa_table = sa.Table(table, sa.MetaData(), autoload_with=estate.sources[source])
        columns = [sa_table.c[rec.recipient]]
        columns += [sa_table.c[c] for c in (rec.data, rec.date) if c is not None]
        pk_col = sa_table.c[entry.pk]
        pks = rows["pk"].tolist()
        with estate.sources[source].connect() as conn:
            for start in range(0, len(pks), 1000):
                for row in conn.execute(sa.select(*columns).where(pk_col.in_(pks[start : start + 1000]))):
                    values = row._mapping
                    name = str(values[rec.recipient])
                    item = out.setdefault(name, {"recipient": name, "data": set(), "records": 0, "last_shared": None})
                    item["records"] = int(item["records"]) + 1
                    if rec.data is not None and values[rec.data] is not None:
                        item["data"].add(str(values[rec.data]))  # type: ignore[union-attr]
                    if rec.date is not None and values[rec.date] is not None:
                        when = pd.Timestamp(values[rec.date]).date().isoformat()
                        if item["last_shared"] is None or when > str(item["last_shared"]):
                            item["last_shared"] = when
    return [{**v, "data": sorted(v["data"])} for _, v in sorted(out.items())]  # type: ignore[arg-type]
