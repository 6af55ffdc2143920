"""The check after apply: planned rows gone or changed, held rows unchanged, proven by keyed digests only."""

from __future__ import annotations

import sqlalchemy as sa

from retention.apply.applier import SourceApplier
from retention.apply.result import ApplyResult
from retention.storage.bulk import MAX_PARAMS, chunks


def _count(
    conn: sa.Connection, applier: SourceApplier, table: str, pks: list, *conditions: sa.ColumnElement[bool]
) -> int:
    """Rows among the given keys that meet the conditions."""
    key, sa_table = applier.row_key(table), applier.table(table)
    return sum(
        conn.execute(sa.select(sa.func.count()).where(key.match(conn, sa_table, chunk), *conditions)).scalar_one()
        for chunk in chunks(pks, MAX_PARAMS // len(key.columns))
    )


def verify(applier: SourceApplier, result: ApplyResult) -> list[str]:
    """Problems found after apply (empty when everything is as planned); messages hold no values."""
    problems: list[str] = []
    ver = result.verification
    with applier.engine.connect() as conn:
        for table, pks in ver.deleted.items():
            left = _count(conn, applier, table, pks)
            if left:
                problems.append(f"{applier.source}.{table}: {left} rows planned for deletion are still there")
        for table, cleared in ver.cleared.items():
            sa_table = applier.table(table)
            for f, keys in cleared.items():
                expected = applier._cleared_value(table, f)
                condition = sa_table.c[f].is_not(None) if expected is None else sa_table.c[f] != expected
                bad = _count(conn, applier, table, keys, condition)
                if bad:
                    problems.append(f"{applier.source}.{table}.{f}: {bad} rows planned to be cleared are not")
        for table, originals in ver.originals.items():
            for f, own in originals.items():
                now = applier.value_digests(conn, table, f, [applier.typed_pk(table, pk) for pk in own])
                kept = sum(1 for pk, digest in now.items() if own[pk] == digest)
                if kept:
                    problems.append(f"{applier.source}.{table}.{f}: {kept} changed rows still hold their value")
        for table, digests in ver.held.items():
            now = applier.row_digests(conn, table, [applier.typed_pk(table, pk) for pk in digests])
            changed = sum(1 for pk, d in digests.items() if now.get(pk) != d)
            if changed:
                problems.append(f"{applier.source}.{table}: {changed} held rows changed during apply")
    return problems
