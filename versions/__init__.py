"""Revision scripts: `sql/` holds the Alembic revisions (loaded by path, not imported), one per
registry version. Installed as ``agno_migrate.versions`` so that a wheel carries them."""
