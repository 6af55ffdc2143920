"""Unit tests: pure functions and in-memory SQLite, no database servers and no Dagster runs (`make test-fast`)."""
