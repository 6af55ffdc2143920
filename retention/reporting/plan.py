"""Plain renderings of a plan for people (Markdown, terminal tables) and machines (JSON)."""

from __future__ import annotations

import json

from rich.console import JustifyMethod
from rich.table import Table

from retention.daily.planning import Plan


def plan_markdown(plan: Plan) -> str:
    summary = plan.summary()
    if summary.empty:
        return f"Nothing is due on {plan.as_of}."
    lines = ["| source | table | action | purpose | rows |", "|---|---|---|---|---:|"]
    lines += [f"| {r.source} | {r.table} | {r.action} | {r.purpose} | {r.rows} |" for r in summary.itertuples()]
    lines.append(f"| **total** | | | | **{int(summary['rows'].sum())}** |")
    return "\n".join(lines)


def plan_rich_table(plan: Plan) -> Table:
    table = Table(title=f"Retention plan as of {plan.as_of}")
    layout: list[tuple[str, JustifyMethod]] = [
        ("source", "left"),
        ("table", "left"),
        ("action", "left"),
        ("purpose", "left"),
        ("rows", "right"),
    ]
    for name, justify in layout:
        table.add_column(name, justify=justify)
    summary = plan.summary()
    for r in summary.itertuples():
        table.add_row(r.source, r.table, r.action, r.purpose, str(r.rows))
    table.add_section()
    table.add_row("total", "", "", "", str(int(summary["rows"].sum()) if not summary.empty else 0))
    return table


def plan_json(plan: Plan) -> str:
    summary = plan.summary()
    return json.dumps(
        {
            "as_of": plan.as_of.isoformat(),
            "total": int(summary["rows"].sum()) if not summary.empty else 0,
            "counts": [
                {"source": r.source, "table": r.table, "action": r.action, "purpose": r.purpose, "rows": int(r.rows)}
                for r in summary.itertuples()
            ],
            "held": {f"{s}.{t}": h for (s, t), h in plan.held.items() if h},
            "undated": {f"{s}.{t}": u for (s, t), u in plan.undated.items() if u},
        },
        indent=2,
    )
