"""Alembic's script directory for the control database (a package, so that installs ship its files)."""
