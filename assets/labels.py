"""Owners and tags from the catalog on every asset of a source, so the asset catalog says who answers for it."""

from collections.abc import Sequence

import dagster as dg

from retention.config.catalog import Catalog


def label_source_assets(assets: Sequence[dg.AssetsDefinition], catalog: Catalog) -> list[dg.AssetsDefinition]:
    """The assets keyed `<stage>/<source>` (snapshot, apply, source_schema) get their source's owner and tags;
    every other asset stays as it is."""

    def label(spec: dg.AssetSpec) -> dg.AssetSpec:
        path = spec.key.path
        source = catalog.sources.get(path[1]) if len(path) == 2 else None
        if source is None:
            return spec
        return spec.merge_attributes(owners=[source.owner] if source.owner else [], tags=source.tags)

    return [a.map_asset_specs(label) for a in assets]
