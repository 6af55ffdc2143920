"""Data Docs that open from disk without the internet.

Great Expectations' own page templates load Bootstrap, jQuery, Font Awesome, Vega and bootstrap-table from
CDNs and its logo from a web bucket: a reader without a connection gets unstyled pages with an empty index, and
a reader with one tells those sites which report they opened. The site builder's pluggable classes (the site
builder, and the view of each section and of the index) are pointed at this module instead. Its views put the
templates of `docs_templates/` in front of Great Expectations' own, so pages refer only to files under the
site's `static/` folder; the site builder copies those files there from pinned packages (XStatic-Bootstrap,
XStatic-jQuery, XStatic-Font-Awesome), from Great Expectations (logo and icon) and from `static/` here (our
stylesheet), instead of Great Expectations' static folder, whose stylesheet fetches a logo from the web.

What no package ships offline is left out and degrades: the index tables are rendered as plain HTML tables
(sorted as bootstrap-table would sort them, filtered by a few lines of our own script) instead of by
bootstrap-table, and a Vega chart shows a note instead (the suites render counts and no chart).

It imports Great Expectations at once: `gx.py` imports it only where it has imported Great Expectations
already, and Great Expectations loads the classes by the names `site_config` gives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from great_expectations.render.renderer.site_builder import SiteBuilder
from great_expectations.render.view import DefaultJinjaPageView
from jinja2 import ChoiceLoader, PackageLoader

PACKAGE = "retention.quality"


TEMPLATES = "docs_templates"
"""Templates (in this package) that replace Great Expectations' templates of the same name."""


@dataclass(frozen=True)
class Asset:
    """A file a page loads: where it comes from (a package and a path in it) and where it goes under static/."""

    package: str
    source: str
    target: str

    def read(self) -> bytes:
        return files(self.package).joinpath(self.source).read_bytes()


def _vendor(package: str, name: str, *sources: str) -> tuple[Asset, ...]:
    """An XStatic package's files under static/vendor/<name>/, keeping their layout below its data/ folder,
    so that the references between them (a stylesheet's fonts, a script's source map) still resolve."""
    return tuple(Asset(package, f"data/{source}", f"vendor/{name}/{source}") for source in sources)


ASSETS: tuple[Asset, ...] = (
    *_vendor(
        "xstatic.pkg.bootstrap",
        "bootstrap",
        "css/bootstrap.min.css",
        "css/bootstrap.min.css.map",
        "js/bootstrap.bundle.min.js",
        "js/bootstrap.bundle.min.js.map",
    ),
    *_vendor("xstatic.pkg.jquery", "jquery", "jquery.min.js"),
    *_vendor(
        "xstatic.pkg.font_awesome",
        "font-awesome",
        "LICENSE.txt",
        "css/fontawesome.min.css",
        "css/solid.min.css",
        "css/regular.min.css",
        "webfonts/fa-solid-900.woff2",
        "webfonts/fa-solid-900.ttf",
        "webfonts/fa-regular-400.woff2",
        "webfonts/fa-regular-400.ttf",
    ),
    Asset("great_expectations", "render/view/static/images/favicon.ico", "images/favicon.ico"),
    Asset("great_expectations", "render/view/static/images/logo-long.png", "images/logo-long.png"),
    Asset(PACKAGE, "static/data-docs.css", "styles/data-docs.css"),
)
"""Everything the templates of `docs_templates/` refer to, relative to the site's static/ folder."""


def site_config(base_directory: Path, *, index_limit: int) -> dict[str, Any]:
    """The `data_docs_sites` entry of a site written to `base_directory` that loads nothing from the internet."""
    here = {"module_name": __name__}
    page_view = {**here, "class_name": OfflinePageView.__name__}
    return {
        **here,
        "class_name": OfflineSiteBuilder.__name__,
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base_directory)},
        "site_section_builders": {
            section: {"view": page_view} for section in ("expectations", "validations", "profiling")
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": index_limit,
            "view": {**here, "class_name": OfflineIndexPageView.__name__},
        },
    }


def site_root(renderer_type: str | None, suite_name: str | None) -> str:
    """The way from a page up to the site's root folder, as Great Expectations' HtmlSiteStore lays pages out:
    expectations/<suite parts>.html, validations/<suite parts>/<run name>/<run time>/<batch>.html, index.html."""
    parts = (suite_name or "").count(".") + 1
    kind = renderer_type or ""
    if "ValidationResults" in kind or "ProfilingResults" in kind:
        return "../" * (parts + 3)
    if "ExpectationSuite" in kind:
        return "../" * parts
    return ""


def sorted_rows(rows: list[dict[str, Any]], columns: list[dict[str, Any]], options: dict[str, Any]) -> list[Any]:
    """A table's rows in the order bootstrap-table would first show them: by the option `sortName` (through
    that column's own sort field, e.g. the run time's timestamp), `sortOrder` asc or desc."""
    field = options.get("sortName")
    if not field:
        return rows
    key = next((c.get("sortName") or field for c in columns if c.get("field") == field), field)

    def order(row: dict[str, Any]) -> tuple[bool, Any]:
        value = row.get(key)
        return (value is None, value if value is not None else 0)

    return sorted(rows, key=order, reverse=options.get("sortOrder") == "desc")


class _Offline:
    """What both offline views add to Great Expectations' page view: our templates first, and `site_root`."""

    env: Any

    def _use_offline_templates(self) -> None:
        self.env.loader = ChoiceLoader([PackageLoader(PACKAGE, TEMPLATES), self.env.loader])
        self.env.filters["offline_sorted_rows"] = sorted_rows

    @staticmethod
    def _root(document: Any) -> str:
        return site_root(getattr(document, "renderer_type", None), getattr(document, "expectation_suite_name", None))


class OfflinePageView(_Offline, DefaultJinjaPageView):
    """A suite or validation page that loads only files under the site's static/ folder."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self._use_offline_templates()

    def render(self, document: Any, template: str | None = None, **kwargs: Any) -> Any:
        return super().render(document, template, site_root=self._root(document), **kwargs)


class OfflineIndexPageView(OfflinePageView):
    """The index page, from our `index_page.j2`."""

    _template = "index_page.j2"


class OfflineSiteBuilder(SiteBuilder):
    """Builds the pages as Great Expectations does, but puts our static files next to them instead of its own."""

    def build(self, resource_identifiers: list[Any] | None = None, build_index: bool = True) -> tuple[Any, Any]:
        for section in self.site_section_builders.values():
            section.build(resource_identifiers=resource_identifiers)
        install_static_assets(Path(self.store_backend["base_directory"]))
        _, index_links = self.site_index_builder.build(build_index=build_index)
        return self.get_resource_url(only_if_exists=False), index_links


def install_static_assets(site: Path) -> list[Path]:
    """Write every file of ASSETS that is missing or differs into site/static/ and remove the files there that
    no page of ours refers to (Great Expectations' own static files from a site built before); returns the
    files written. Each file is replaced in one step, so check steps building at the same time never see one
    half written."""
    static = site / "static"
    written = []
    for asset in ASSETS:
        target = static / asset.target
        data = asset.read()
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)
        written.append(target)
    _remove_foreign(static)
    return written


def _remove_foreign(static: Path) -> None:
    ours = {Path(a.target) for a in ASSETS}
    folders = {parent for path in ours for parent in path.parents}
    for path in sorted(static.rglob("*"), reverse=True):
        relative = path.relative_to(static)
        try:
            if path.is_file() and relative not in ours and not path.name.endswith(".partial"):
                path.unlink()
            elif path.is_dir() and relative not in folders and not any(path.iterdir()):
                path.rmdir()
        except OSError:
            continue
