"""A loaded configuration and the files it came from, which every problem found in it names."""

from __future__ import annotations

from dataclasses import dataclass

from retention.config.catalog import Catalog
from retention.config.policy import Policy


@dataclass(frozen=True)
class CatalogFile:
    """A catalog and the file it came from, which every problem found in it names."""

    catalog: Catalog
    catalog_file: str


@dataclass(frozen=True)
class EstateConfig(CatalogFile):
    policy: Policy
    policy_file: str
