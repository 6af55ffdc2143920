"""Every page a daily run writes under var/reports opens from disk without the internet.

A data-protection officer may read the compliance report and the Data Docs on a machine without a connection,
and a page that loads a script, stylesheet, font or image from another site also tells that site who read it
and when. So after a real daily run on the demo estate every .html, .css and .js file under the reports folder
is parsed: nothing it loads may point at http:, https: or a protocol-relative address, and every local file it
refers to must exist. Links *to* other sites (an <a href>) load nothing and are allowed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from pipelines.runner import run_daily
from retention.config import settings
from tests.e2e.test_quality import ANCHOR, make_estate

LOADING_ATTRIBUTES = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "audio": ("src",),
    "video": ("src", "poster"),
    "track": ("src",),
    "input": ("src",),
}
"""The attributes by which a page makes the browser fetch something (an <a href> only links)."""

CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.IGNORECASE)
CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*["']?([^"')\s;]+)""", re.IGNORECASE)
SOURCE_MAP = re.compile(r"""[#@]\s*sourceMappingURL=([^\s*'"]+)""")
SCRIPT_FETCH = re.compile(
    r"""(?:\b(?:src|href)\s*[=:]\s*|\bimport\s*\(\s*|\bfetch\s*\(\s*|\bimport\s+[^;'"]*?\bfrom\s*|\bimport\s*)"""
    r"""["'`]((?:https?:)?//[^"'`]+)""",
    re.IGNORECASE,
)


def is_remote(reference: str) -> bool:
    scheme = urlsplit(reference.strip()).scheme.lower()
    return reference.strip().startswith("//") or scheme in {"http", "https", "ftp", "ws", "wss"}


class References(HTMLParser):
    """The addresses an HTML page loads: from tags, inline styles and <style> blocks, and inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[str] = []
        self.links: list[str] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        for name in LOADING_ATTRIBUTES.get(tag.lower(), ()):
            if values.get(name):
                if name == "srcset":
                    self.loads.extend(part.split()[0] for part in values[name].split(",") if part.strip())
                else:
                    self.loads.append(values[name])
        if tag.lower() == "a" and values.get("href"):
            self.links.append(values["href"])
        if values.get("style"):
            self.styles.append(values["style"])
        if tag.lower() in {"style", "script"} and not values.get("src"):
            self._inside = tag.lower()

    def handle_endtag(self, tag: str) -> None:
        if tag.lower() == self._inside:
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside == "style":
            self.styles.append(data)
        elif self._inside == "script":
            self.scripts.append(data)


def css_references(text: str) -> list[str]:
    found = [next(g for g in m.groups() if g is not None) for m in CSS_URL.finditer(text)]
    return [*found, *CSS_IMPORT.findall(text), *SOURCE_MAP.findall(text)]


def script_references(text: str) -> tuple[list[str], list[str]]:
    """Remote addresses a script fetches by itself, and the local source maps it names."""
    return SCRIPT_FETCH.findall(text), SOURCE_MAP.findall(text)


def page_references(path: Path) -> tuple[list[str], list[str]]:
    """The addresses that opening `path` makes the browser load, and the pages it links to."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".css":
        return css_references(text), []
    if path.suffix == ".js":
        remote, maps = script_references(text)
        return [*remote, *maps], []
    parser = References()
    parser.feed(text)
    parser.close()
    found = list(parser.loads)
    for style in parser.styles:
        found.extend(css_references(style))
    for script in parser.scripts:
        remote, maps = script_references(script)
        found.extend([*remote, *maps])
    return found, parser.links


def missing(path: Path, reference: str, reports: Path) -> str | None:
    """Why a local `reference` of `path` does not resolve to a file under `reports`, if it does not."""
    target = (path.parent / unquote(urlsplit(reference).path)).resolve()
    if not target.is_file():
        return "which is not there"
    if not target.is_relative_to(reports.resolve()):
        return "outside the reports folder"
    return None


def broken(path: Path, reports: Path) -> list[str]:
    """What `path` loads from the internet, or refers to locally (a load or a link) without the file there."""
    problems = []
    where = path.relative_to(reports)
    loads, links = page_references(path)
    for reference in loads:
        parts = urlsplit(reference)
        if is_remote(reference):
            problems.append(f"{where} loads {reference}")
        elif parts.scheme and parts.scheme not in {"data", "blob", "about", "javascript"}:
            problems.append(f"{where} refers to {reference}")
        elif not parts.scheme and parts.path and (why := missing(path, reference, reports)):
            problems.append(f"{where} refers to {reference}, {why}")
    for link in links:
        parts = urlsplit(link)
        if not is_remote(link) and not parts.scheme and parts.path and (why := missing(path, link, reports)):
            problems.append(f"{where} links to {link}, {why}")
    return problems


def test_the_checker_finds_remote_and_missing_references(tmp_path: Path) -> None:
    """The checker itself: each way a page can load something from outside, or miss a file, is reported."""
    (tmp_path / "here.css").write_text("p { color: red }", encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text(
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
        '<link rel="stylesheet" href="here.css"><script src="//cdn.example/x.js"></script>'
        "<style>@import 'http://fonts.example/f.css'; body { background: url(missing.png) }</style>"
        "<script>var s = document.createElement('script'); s.src = 'https://cdn.example/y.js';</script>"
        '</head><body><img src="data:image/png;base64,AAAA"><a href="https://law.example/">law</a>'
        '<a href="#top">top</a><a href="here.css">ok</a><a href="gone.html#x">gone</a>'
        "<div style=\"background: url('//img.example/z.png')\"></div></body></html>",
        encoding="utf-8",
    )
    sheet = tmp_path / "sheet.css"
    sheet.write_text("@font-face { src: url(https://fonts.example/a.woff2) }", encoding="utf-8")
    script = tmp_path / "lib.js"
    script.write_text("x();\n//# sourceMappingURL=lib.js.map\n", encoding="utf-8")

    assert sorted(broken(page, tmp_path)) == [
        "page.html links to gone.html#x, which is not there",
        "page.html loads //cdn.example/x.js",
        "page.html loads //img.example/z.png",
        "page.html loads http://fonts.example/f.css",
        "page.html loads https://cdn.example/x.css",
        "page.html loads https://cdn.example/y.js",
        "page.html refers to missing.png, which is not there",
    ]
    assert broken(sheet, tmp_path) == ["sheet.css loads https://fonts.example/a.woff2"]
    assert broken(script, tmp_path) == ["lib.js refers to lib.js.map, which is not there"]


@pytest.mark.slow
def test_reports_and_data_docs_load_nothing_from_the_internet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_estate(tmp_path, monkeypatch)
    # a site built before: Great Expectations' own stylesheet, which fetches its logo from the web, is replaced
    old = settings.reports_dir() / "data-docs" / "static" / "styles" / "data_docs_default_styles.css"
    old.parent.mkdir(parents=True)
    old.write_text(".navbar-brand a { background: url('https://assets.example/logo.png') }", encoding="utf-8")

    result = run_daily(ANCHOR, confirm_large_plan=True)
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    reports = settings.reports_dir()
    pages = sorted(p for p in reports.rglob("*") if p.suffix in {".html", ".css", ".js", ".svg"} and p.is_file())
    docs = reports / "data-docs"
    assert reports / f"compliance-report-{ANCHOR.isoformat()}.html" in pages
    assert docs / "index.html" in pages
    assert any(p.is_relative_to(docs / "validations") for p in pages), "the run rendered no validation page"
    assert any(p.is_relative_to(docs / "expectations") for p in pages), "the run rendered no suite page"

    problems = [problem for page in pages for problem in broken(page, reports)]
    assert problems == []
    assert not old.exists()

    # readable: every Data Docs page loads a stylesheet of its own folder, and the index reaches every page
    for page in (p for p in pages if p.suffix == ".html" and p.is_relative_to(docs)):
        assert any(ref.endswith(".css") for ref in page_references(page)[0]), f"{page} loads no stylesheet"
    _, index_links = page_references(docs / "index.html")
    linked = {(docs / unquote(urlsplit(link).path)).resolve() for link in index_links}
    rendered = {
        p.resolve() for p in pages if p.suffix == ".html" and p.parent.is_relative_to(docs) and p.parent != docs
    }
    assert rendered <= linked, "the index links to every suite and validation page"
