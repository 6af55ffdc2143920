"""The control database's schema revisions, oldest first (Alembic loads them by path, not by import)."""
