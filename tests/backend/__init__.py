"""Backend tests: storage, snapshots of the sources, apply and verification on SQLite, PostgreSQL and MariaDB."""
