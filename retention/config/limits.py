"""How long the names of the configuration may be: the control database stores them in columns of these sizes
(`retention.storage.schema` takes its lengths from here), so a longer name is refused at load, not by the
database in the middle of a run."""

from __future__ import annotations

SOURCE_NAME_CHARS = 80
"""`ledger_batches.source`, `replays.source`."""

TABLE_NAME_CHARS = 120
"""`ledger_batches.table_name`."""

PURPOSE_NAME_CHARS = 80
"""`ledger_rules.purpose`."""

EVENT_NAME_CHARS = PURPOSE_NAME_CHARS
"""An event names the clock of a purpose in the ledger's rule text, reports and receipts: as long as a purpose."""

LEDGER_FIELDS_CHARS = 500
"""`ledger_entries.fields`: the columns one action changed, comma-separated; all of a table's personal columns
joined must fit, since one action may change them all."""
