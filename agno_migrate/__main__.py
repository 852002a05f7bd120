"""``python -m agno_migrate ...``: the ``agno-migrate`` command (same options, output and exit codes)."""

from agno_migrate.cli import run

if __name__ == "__main__":
    run()
