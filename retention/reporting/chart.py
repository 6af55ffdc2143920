"""The expected-expiries chart as standalone SVG."""

from __future__ import annotations

import datetime as dt
import html

import pandas as pd

# Distinguishable colours (Okabe-Ito, then Tableau), one per purpose in policy order.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#8C564B",
    "#7F7F7F",
    "#BCBD22",
    "#17BECF",
)


def _nice_ceiling(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return 10 * magnitude


def month_name(label: str) -> str:
    return pd.Period(label, freq="M").strftime("%b %Y")


def expiry_chart_svg(expiries: pd.DataFrame, as_of: dt.date) -> str:
    """A stacked bar chart of expected expiries per month and purpose, as standalone SVG (no dependency)."""
    shown = [p for p in expiries.columns if expiries[p].sum() > 0]
    colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(expiries.columns)}
    width, height = 880, 420
    left, right, top, bottom = 64, 220, 48, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = expiries[shown].sum(axis=1) if shown else pd.Series(0, index=expiries.index)
    ymax = _nice_ceiling(int(totals.max()) if len(totals) else 0)
    slot = plot_w / max(len(expiries.index), 1)
    bar = slot * 0.7
    title = f"Expected expiries per month from {as_of.isoformat()}, by purpose"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="expiry-title" font-family="sans-serif" font-size="12">',
        f'<title id="expiry-title">{html.escape(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="24" font-size="15" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i in range(5):
        value = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#dddddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    out.append(
        f'<text x="16" y="{top + plot_h / 2:.1f}" transform="rotate(-90 16 {top + plot_h / 2:.1f})" '
        'text-anchor="middle">rows reaching the end of a purpose</text>'
    )
    for i, label in enumerate(expiries.index):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for purpose in shown:
            count = int(expiries.at[label, purpose])
            if count == 0:
                continue
            h = plot_h * count / ymax
            y -= h
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colours[purpose]}"><title>{html.escape(purpose)}, {month_name(label)}: '
                f"{count:,} rows</title></rect>"
            )
        out.append(
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{html.escape(month_name(label).split()[0])}</text>"
        )
        if i == 0 or label.endswith("-01"):
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 30}" text-anchor="middle" fill="#555555">'
                f"{label[:4]}</text>"
            )
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333333"/>')
    legend_x = left + plot_w + 20
    if not shown:
        out.append(f'<text x="{legend_x}" y="{top + 12}">no expiries ahead</text>')
    for i, purpose in enumerate(shown):
        y = top + i * 20
        out.append(f'<rect x="{legend_x}" y="{y}" width="12" height="12" fill="{colours[purpose]}"/>')
        out.append(f'<text x="{legend_x + 18}" y="{y + 10}">{html.escape(purpose)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def chart_file_name(as_of: dt.date) -> str:
    return f"expiries-{as_of.isoformat()}.svg"
