"""Data-quality suites generated from the catalog, run with Great Expectations on value-free data."""
