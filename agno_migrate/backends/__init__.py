"""Connections to the databases and the facts of each dialect, below both ``migrate`` and ``store``.

``dialect_of(target)`` is the one place that maps a backend's name to its module; everything else
asks the dialect for a capability (``transactional_ddl``, ``has_schemas``, ...), never for a name.
"""

from __future__ import annotations

import importlib

from agno_migrate.backends.dialect import Dialect

_MODULES = {
    "sqlite": "agno_migrate.backends.sqlite",
    "postgresql": "agno_migrate.backends.postgresql",
    "mysql": "agno_migrate.backends.mysql",
    "mariadb": "agno_migrate.backends.mysql",  # SQLAlchemy's name for a MariaDB connection: driven as MySQL
    "mongodb": "agno_migrate.backends.mongo",
}


_LOADED: dict[str, Dialect] = {}  # (asked on every store call: one dict lookup once loaded)


def dialect_of(target) -> Dialect:
    """The dialect of a target (or of a backend name such as ``"postgresql"``, or of a SQLAlchemy
    dialect name: ``"mariadb"`` is MySQL's); its module is imported on first use (loading no driver)."""
    name = target if isinstance(target, str) else target.backend
    found = _LOADED.get(name)
    if found is None:
        found = _LOADED[name] = importlib.import_module(_MODULES[name]).DIALECT
    return found


def dispose(target) -> None:
    """Close the connections made for ``target`` (its engine's pool, its MongoDB client); the next
    use makes new ones."""
    from agno_migrate.backends import connections

    connections.close(target)


__all__ = ["Dialect", "dialect_of", "dispose"]
