"""Access and portability (GDPR Art 15 and 20): everything the estate holds about one person, as JSON plus one
CSV per table in a zip, with each row's purposes, legal basis and how long it is kept, and the recipients.

The export is the one place where the engine writes personal values on purpose, for the person, so it is
written owner-only under `var/exports` and removed after the configured number of days. Password hashes are
withheld: they help nobody and would help an attacker.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypedDict

import pandas as pd
import sqlalchemy as sa

from retention.config.catalog import Category, TableId
from retention.config.loading import EstateConfig
from retention.config.policy import Policy
from retention.config.requests import RequestSettings
from retention.config.settings import private_dir, var_dir
from retention.requests.context import PersonRequest
from retention.requests.receipts import ExportReceipt, Receipt, Recipient, TableReceipt, rows_text
from retention.requests.recipients import recipients_of
from retention.requests.texts import RIGHTS, automated_decisions, complaint, export_readme, language_of
from retention.requests.view import EstateView
from retention.rules import columns
from retention.rules.clocks import last_day_kept
from retention.rules.holds import Holds, held_rows
from retention.storage.control import load_holds
from retention.storage.engines import Estate
from retention.storage.row_keys import RowKey

WITHHELD = "(withheld for security)"


class ExportRecord(TypedDict):
    """One row in the export: its values, purposes, legal basis per purpose, last day kept and any hold."""

    data: dict[str, object]
    purposes: list[str]
    legal_basis: dict[str, str]
    kept_until: dict[str, str]
    held: str | None


EXPORT_PREFIX = "request-"


def exports_dir() -> Path:
    return var_dir() / "exports"


@dataclass(frozen=True)
class Export:
    path: Path
    tables: dict[TableId, int]
    expires: dt.date

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def receipt(self) -> ExportReceipt:
        """For the receipt: the file's name under var/ (not this machine's path), size and expiry."""
        return ExportReceipt(file=f"exports/{self.path.name}", rows=self.rows, removed_on=self.expires.isoformat())

    def table_counts(self) -> list[TableReceipt]:
        return [TableReceipt(source=s, table=t, rows_found=n, notes=["exported"]) for (s, t), n in self.tables.items()]


def plain_value(value: object) -> object:
    """A JSON- and CSV-friendly form of a database value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def write_export(
    config: EstateConfig,
    estate: Estate,
    view: EstateView,
    subjects: Collection[str],
    request_id: int,
    settings: RequestSettings,
    recipients: list[Recipient],
    *,
    now: dt.datetime,
    holds: Holds,
) -> Export:
    """Read every row of the subjects (by primary key, parameterised) and write the zip."""
    catalog, policy = config.catalog, config.policy
    tz = policy.timezone
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    tables: dict[str, dict[str, object]] = {}
    csvs: dict[str, str] = {}
    counts: dict[TableId, int] = {}
    held_by_table = held_rows(view.tagged, policy, holds, now_ts)
    for tid in view.tagged:
        source, table = tid
        tagged = view.rows_of(tid, subjects)
        if tagged.empty:
            continue
        entry = catalog.table(source, table)
        sa_table = sa.Table(table, sa.MetaData(), autoload_with=estate.sources[source])
        key = RowKey.of(sa_table, entry.primary_key)
        withheld = {c for c, spec in entry.columns.items() if spec.category is Category.CREDENTIAL}
        pks = tagged["pk"].tolist()
        data: dict[object, dict[str, object]] = {}
        with estate.sources[source].connect() as conn:
            for start in range(0, len(pks), 1000):
                match = key.match(conn, sa_table, pks[start : start + 1000])
                query = sa.select(sa_table).where(match).order_by(*key.order_by(sa_table))
                for row in conn.execute(query).mappings():
                    data[key.of_rows([[row[c] for c in key.columns]])[0]] = {
                        c: (WITHHELD if c in withheld and row[c] is not None else plain_value(row[c])) for c in row
                    }
        records: list[ExportRecord] = []
        tagged = tagged.assign(held=held_by_table[tid].loc[tagged.index, "reason"])
        for info in tagged.sort_values(columns.PK).to_dict("records"):
            if info[columns.PK] not in data:
                continue  # deleted between the snapshot and now
            held = info["held"] or None
            kept_until: dict[str, str] = {}
            for p in entry.purposes:
                if info.get(columns.waiting(p)):
                    kept_until[p] = f"until {policy.purposes[p].event} happens, then {policy.purposes[p].period}"
                else:
                    last = last_day_kept(info.get(columns.deadline(p)), tz)
                    kept_until[p] = last.isoformat() if last else "no usable date"
            records.append(
                {
                    "data": data[info["pk"]],
                    "purposes": list(entry.purposes),
                    "legal_basis": {p: policy.purposes[p].legal_basis for p in entry.purposes},
                    "kept_until": kept_until,
                    "held": held,
                }
            )
        name = f"{source}.{table}"
        tables[name] = {"rows": records}
        csvs[name] = _csv(records)
        counts[tid] = len(records)
    sources = obtained_from(config, list(counts))
    document = {
        "request": request_id,
        "created_at": now_ts.tz_convert(tz).isoformat(timespec="seconds"),
        "about": "Everything our databases hold about you, with why we keep each record, on which legal basis "
        "and until when (GDPR Art 15 and 20).",
        "tables": tables,
        "recipients": [r.model_dump(mode="json") for r in recipients],
        **rights_document(config.policy, sources),
        "retention_schedule": {
            name: {
                "data": p.data,
                "legal_basis": p.legal_basis,
                "kept": f"{p.period} from {p.event or p.clock.value.replace('_', ' ')}",
                "at_expiry": p.action.value,
                "reason": p.reason,
            }
            for name, p in policy.purposes.items()
        },
    }
    expires = (now_ts.tz_convert(tz) + pd.Timedelta(days=settings.export_keep_days)).date()
    readme = export_readme(policy, sources)
    path = _write_zip(request_id, now_ts.tz_convert(tz), document, csvs, readme)
    return Export(path, counts, expires)


def _csv(records: list[ExportRecord]) -> str:
    buffer = io.StringIO()
    columns = list(records[0]["data"]) if records else []
    writer = csv.writer(buffer)
    writer.writerow([*columns, "purposes", "legal_basis", "kept_until", "held"])
    for r in records:
        data: Mapping[str, object] = r["data"]
        writer.writerow(
            [
                *("" if data[c] is None else data[c] for c in columns),
                "; ".join(r["purposes"]),
                " | ".join(f"{p}: {b}" for p, b in r["legal_basis"].items()),
                "; ".join(f"{p}: {u}" for p, u in r["kept_until"].items()),
                r["held"] or "",
            ]
        )
    return buffer.getvalue()


def rights_document(policy: Policy, sources: Mapping[str, str]) -> dict[str, object]:
    """The Art 15(1) items beyond the records: who the controller is, the person's rights, where to complain,
    where data not collected from the person came from (`sources`, of the tables the export holds), automated
    decisions."""
    controller = policy.controller
    return {
        "language": language_of(policy).value,
        "controller": controller.model_dump(mode="json", exclude={"authority", "language"}) if controller else None,
        "your_rights": [{"article": r.article, "right": r.text} for r in RIGHTS[language_of(policy)]],
        "complaint": {
            "text": complaint(policy),
            **({"authority": controller.authority.model_dump(mode="json")} if controller else {}),
        },
        "sources_of_data": dict(sources),
        "automated_decisions": automated_decisions(policy),
    }


def obtained_from(config: EstateConfig, tables: list[TableId]) -> dict[str, str]:
    return {f"{s}.{t}": text for s, t in tables if (text := config.catalog.table(s, t).obtained_from) is not None}


def _write_zip(
    request_id: int, moment: pd.Timestamp, document: dict[str, object], csvs: Mapping[str, str], readme: str
) -> Path:
    """Owner-only folder and file; written under a temporary name and renamed, so no half file is ever seen."""
    folder = private_dir(exports_dir())
    name = f"{EXPORT_PREFIX}{request_id}-{moment.strftime('%Y%m%dT%H%M%S')}.zip"
    path = folder / name
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme)
        archive.writestr("export.json", json.dumps(document, ensure_ascii=False, indent=2))
        for table, text in csvs.items():
            archive.writestr(f"{table}.csv", text)
    os.replace(tmp, path)
    return path


def purge_exports(settings: RequestSettings, now: dt.datetime | None = None) -> int:
    """Remove exports older than the configured number of days; returns how many were removed."""
    folder = exports_dir()
    if not folder.exists():
        return 0
    limit = (now or dt.datetime.now(dt.UTC)).timestamp() - settings.export_keep_days * 86_400
    removed = 0
    for path in folder.glob(f"{EXPORT_PREFIX}*.zip"):
        if path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def give_access(person: PersonRequest, receipt: Receipt) -> Receipt:
    """Access and portability: write the person's export and say where it is and when it goes."""
    receipt.recipients = recipients_of(person.config, person.settings, person.estate, person.view, person.subjects)
    export = write_export(
        person.config,
        person.estate,
        person.view,
        person.subjects,
        person.request.request_id,
        person.settings,
        receipt.recipients,
        now=person.moment,
        holds=load_holds(person.control),
    )
    receipt.export = export.receipt()
    receipt.tables = export.table_counts()
    receipt.summary = (
        f"An export of {rows_text(export.rows)} in {len(export.tables)} tables was written; hand it to the person. "
        f"It is removed on {export.expires.isoformat()}."
    )
    return receipt
