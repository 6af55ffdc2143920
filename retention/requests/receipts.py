"""Receipts: what a request did, table by table, as the databases report it; as text for the person."""

from __future__ import annotations

from collections.abc import Mapping

from retention.config.catalog import TableId
from retention.requests.model import KIND_TEXT, RequestKind, SubjectRequest
from retention.requests.person_plan import Applied, TableDecision


def table_receipts(decisions: Mapping[TableId, TableDecision], applied: Applied | None) -> list[dict[str, object]]:
    """Per table: rows found, deleted and pseudonymised as the databases report them, and what was kept."""
    out = []
    for (source, table), d in decisions.items():
        outcome = applied.results[source].tables.get(table) if applied and source in applied.results else None
        out.append(
            {
                "source": source,
                "table": table,
                "rows_found": d.rows_found,
                "deleted": outcome.deleted if outcome else 0,
                "pseudonymised": outcome.updated if outcome else 0,
                "fields_changed": sorted(d.fields),
                "kept": [{"reason": r, **v} for r, v in sorted(d.kept.items())],
                "unchanged": [{"reason": r, "rows": n} for r, n in sorted(d.unchanged.items())],
                "notes": sorted(d.notes),
            }
        )
    return out


def rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def receipt_text(receipt: Mapping[str, object]) -> str:
    """The receipt as a person reads it."""
    kind = RequestKind(str(receipt["kind"]))
    lines = [
        f"Receipt for request #{receipt['request']}: {KIND_TEXT[kind]}",
        f"received {receipt['received_at']}, answer due by {receipt['deadline']}, completed {receipt['completed_at']}",
        f"identifiers given: {', '.join(receipt['identifiers_given']) or 'none'}"  # type: ignore[arg-type]
        + (f"; matched by: {', '.join(receipt['matched_by'])}" if receipt.get("matched_by") else ""),  # type: ignore[arg-type]
        "",
        str(receipt["summary"]),
    ]
    tables = receipt.get("tables") or []
    if tables:
        lines.append("")
    for t in tables:  # type: ignore[union-attr]
        head = f"{t['source']}.{t['table']}: {rows_text(t['rows_found'])} found"
        parts = []
        if t["deleted"]:
            parts.append(f"{t['deleted']} deleted")
        if t["pseudonymised"]:
            parts.append(f"{t['pseudonymised']} pseudonymised ({', '.join(t['fields_changed'])})")
        lines.append(head + (": " + "; ".join(parts) if parts else ""))
        for k in t["kept"]:
            until = f" until {k['until']}" if k.get("until") else ""
            lines.append(f"    kept {k['rows']}{until}: {k['why']}")
        for u in t["unchanged"]:
            lines.append(f"    unchanged {u['rows']}: {u['reason']}")
        for note in t["notes"]:
            lines.append(f"    note: {note}")
    recipients = receipt.get("recipients") or []
    if recipients:
        lines += ["", "Recipients to tell (GDPR Art 19):"]
        for r in recipients:  # type: ignore[union-attr]
            what = f" ({'; '.join(r['data'])})" if r.get("data") else ""
            when = f", last shared {r['last_shared']}" if r.get("last_shared") else ""
            lines.append(f"    {r['recipient']}{what}: {r['records']} record{'s' if r['records'] != 1 else ''}{when}")
    for name in ("restriction", "suppression", "export"):
        part = receipt.get(name)
        if part:
            lines += ["", f"{name}: " + "; ".join(f"{k} {v}" for k, v in part.items())]  # type: ignore[union-attr]
    verification = receipt.get("verification")
    if verification:
        ok = verification.get("passed")  # type: ignore[union-attr]
        lines += ["", "verification: " + ("passed" if ok else "FAILED: " + "; ".join(verification["problems"]))]  # type: ignore[index]
    return "\n".join(lines) + "\n"


def request_summary(request: SubjectRequest) -> dict[str, object]:
    """A value-free description of a request for Dagster metadata and tags."""
    return {
        "request": request.request_id,
        "kind": request.kind.value,
        "status": request.status.value,
        "identifier kinds": ",".join(request.identifier_kinds),
    }
