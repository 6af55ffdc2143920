"""Plain renderings of a plan for people (terminal tables) and machines (counts, JSON)."""

from __future__ import annotations

import json

from rich.console import JustifyMethod
from rich.table import Table

from retention.daily.planning import Plan


def plan_counts(plan: Plan) -> list[dict[str, str | int]]:
    """One row per source, table, action and purpose with its count of planned actions: what every rendering
    of a plan shows (keys and names only, never a value)."""
    return [
        {"source": r.source, "table": r.table, "action": str(r.action), "purpose": r.purpose, "rows": int(r.rows)}
        for r in plan.summary().itertuples()
    ]


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
            "counts": plan_counts(plan),
            "held": {f"{s}.{t}": h for (s, t), h in plan.held.items() if h},
            "undated": {f"{s}.{t}": u for (s, t), u in plan.undated.items() if u},
        },
        indent=2,
    )
