"""agno-migrate: keep Agno session databases on the current schema, with nothing lost."""
__version__ = "0.1.0"
