"""The engine that moves a database between versions (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path


def versions_root() -> Path:
    """Where the revision scripts are (``sql/`` and ``mongo/``): inside the installed package as
    ``agno_migrate.versions``, or the repository's top-level ``versions/`` when the package is
    imported from a source checkout (where ``agno_migrate.versions`` does not exist)."""
    try:
        from agno_migrate import versions
    except ImportError:
        return Path(__file__).resolve().parents[2] / "versions"
    return Path(versions.__file__).parent
