"""agno-migrate: keep Agno session databases on the current schema, with nothing lost.

The public face, re-exported lazily so that ``import agno_migrate`` loads no database driver
(and not even SQLAlchemy) until a name is used::

    import agno_migrate
    agno_migrate.upgrade("postgresql://postgres@127.0.0.1/app")   # -> Outcome
    agno_migrate.check("sqlite:///agno.db")                        # raises SchemaBehind if behind
"""

__version__ = "0.1.0"

_EXPORTS = {
    "upgrade": "agno_migrate.migrate.runner",
    "downgrade": "agno_migrate.migrate.runner",
    "current": "agno_migrate.migrate.runner",
    "check": "agno_migrate.migrate.runner",
    "plan": "agno_migrate.migrate.runner",
    "history": "agno_migrate.migrate.runner",
    "stamp": "agno_migrate.migrate.runner",
    "copy": "agno_migrate.move.copy",
    "verify": "agno_migrate.move.verify",
    "export": "agno_migrate.move.transfer",
    "import_": "agno_migrate.move.transfer",
    "Online": "agno_migrate.migrate.model",
    "Target": "agno_migrate.target",
    "connect": "agno_migrate.store",
    "SqliteDb": "agno_migrate.store",
    "PostgresDb": "agno_migrate.store",
    "MySQLDb": "agno_migrate.store",
    "MongoDb": "agno_migrate.store.mongo",
    "SqliteStorage": "agno_migrate.store",
    "PostgresStorage": "agno_migrate.store",
    "MySQLStorage": "agno_migrate.store",
    "Session": "agno_migrate.sessions",
    "AgentSession": "agno_migrate.sessions",
    "TeamSession": "agno_migrate.sessions",
    "WorkflowSession": "agno_migrate.sessions",
    "Run": "agno_migrate.sessions",
    "AgnoMigrateError": "agno_migrate.errors",
    "SchemaBehind": "agno_migrate.errors",
    "SchemaAhead": "agno_migrate.errors",
    "SchemaDrift": "agno_migrate.errors",
    "ConnectFailed": "agno_migrate.errors",
    "LockTimeout": "agno_migrate.errors",
    "Refused": "agno_migrate.errors",
    "UsageError": "agno_migrate.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agno_migrate' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
