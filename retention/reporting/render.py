"""The compliance report rendered to Markdown and HTML from one view, and written to files.

Both renderings come from templates in `templates/` over the same `ReportView`, so they cannot drift apart.
HTML is autoescaped; Markdown table cells are escaped by the `md` filter, which only the Markdown uses.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from pathlib import Path

import jinja2
from markupsafe import Markup

from retention.config.settings import private_dir
from retention.reporting.chart import chart_file_name, expiry_chart_svg
from retention.reporting.model import ComplianceReport, ReportFiles
from retention.reporting.view import report_view

MARKDOWN_TEMPLATE = "report.md.j2"


HTML_TEMPLATE = "report.html.j2"


def md_cell(text: object) -> str:
    """A Markdown table cell: a '|' would end the cell and a line break the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def html_text(value: object) -> object:
    """Escape as `html.escape` does (an apostrophe becomes &#x27;), so a text reads the same in every page the
    engine writes and can be looked for the same way; markup the template built is left as it is."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value)))


def _environment(*, autoescape: bool, finalize: Callable[[object], object] | None = None) -> jinja2.Environment:
    """Strict about undefined names, so a misspelt field fails the report instead of leaving a gap in it."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("retention.reporting", "templates"),
        autoescape=autoescape,
        finalize=finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_MARKDOWN = _environment(autoescape=False)
_MARKDOWN.filters["md"] = md_cell


_HTML = _environment(autoescape=True, finalize=html_text)


def render_markdown(report: ComplianceReport, *, chart_link: str | None = None) -> str:
    """The report in Markdown; `chart_link` is where the chart's SVG file lies relative to it, if anywhere."""
    return _MARKDOWN.get_template(MARKDOWN_TEMPLATE).render(view=report_view(report), chart_link=chart_link)


def render_html(report: ComplianceReport, chart_svg: str) -> str:
    """The report as one HTML page with the chart inline (as chart.py drew it, escaping its own texts)."""
    return _HTML.get_template(HTML_TEMPLATE).render(view=report_view(report), chart_svg=chart_svg)


def report_file_stem(as_of: dt.date) -> str:
    return f"compliance-report-{as_of.isoformat()}"


def write_report(report: ComplianceReport, folder: Path) -> ReportFiles:
    """Write the Markdown, the HTML (chart inline) and the chart as its own SVG file for the Markdown."""
    private_dir(folder)
    svg = expiry_chart_svg(report.expiries, report.as_of)
    chart = folder / chart_file_name(report.as_of)
    chart.write_text(svg + "\n", encoding="utf-8")
    markdown = folder / f"{report_file_stem(report.as_of)}.md"
    markdown.write_text(render_markdown(report, chart_link=chart.name), encoding="utf-8")
    page = folder / f"{report_file_stem(report.as_of)}.html"
    page.write_text(render_html(report, svg), encoding="utf-8")
    return ReportFiles(markdown=markdown, html=page, chart=chart)
