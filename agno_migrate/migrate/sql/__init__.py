"""The SQL side of the migration flow: Alembic wiring and records, detection, the migration lock."""
