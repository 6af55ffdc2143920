"""End-to-end tests: the daily job, the CLI and subject requests, run as a user runs them, databases checked after."""
