"""Agno's own ``Db`` objects as what to migrate: the connection and the table names they carry.

An application already holds ``agno.db.sqlite.SqliteDb``, ``agno.db.postgres.PostgresDb``,
``agno.db.mysql.MySQLDb`` or ``agno.db.mongo.MongoDb`` (Agno 2.x/3.x); ``agno_migrate.upgrade(db)``
takes it as it takes a URL. The object is read by its attributes only: ``agno`` is never imported
here (it is not a dependency), and an object is taken for an Agno ``Db`` by the module of its class
(or of a base class) — ``agno.db...`` — and its ``session_table_name``.

What is read (Agno 3.1.10, ``agno/db/base.py`` and each backend's ``__init__``): the SQL engine's URL
(``db_engine.url``, password kept: the Target masks it wherever it is shown), ``db_schema`` (the
PostgreSQL schema; on MySQL the database), MongoDB's ``db_url`` and ``db_name``, and every
``*_table_name``: the session, runs and version tables, and the other Agno tables by family.
"""

from __future__ import annotations

from typing import Any

from agno_migrate.errors import UsageError

FAMILY_ATTRIBUTES: dict[str, str] = {
    "memories": "memory_table_name",
    "evals": "eval_table_name",
    "metrics": "metrics_table_name",
    "knowledge": "knowledge_table_name",
    "culture": "culture_table_name",  # Agno 2.x only
    "traces": "trace_table_name",
    "spans": "span_table_name",
    "learnings": "learnings_table_name",
    "approvals": "approvals_table_name",
    "components": "components_table_name",
    "component_configs": "component_configs_table_name",
    "component_links": "component_links_table_name",
    "schedules": "schedules_table_name",
    "schedule_runs": "schedule_runs_table_name",
    "auth_tokens": "auth_tokens_table_name",
    "service_accounts": "service_accounts_table_name",
    "mcp_oauth_clients": "mcp_oauth_clients_table_name",
    "mcp_oauth_transactions": "mcp_oauth_transactions_table_name",
    "mcp_oauth_codes": "mcp_oauth_codes_table_name",
    "mcp_oauth_refresh_tokens": "mcp_oauth_refresh_tokens_table_name",
    "mcp_oauth_keys": "mcp_oauth_keys_table_name",
    "products": "products_table_name",
    "sources": "sources_table_name",
    "projects": "projects_table_name",
    "tasks": "tasks_table_name",
    "tool_results": "tool_results_table_name",
    "compactions": "compactions_table_name",
    "transcripts": "transcripts_table_name",
    "authz_policy": "authz_policy_table_name",
    "authz_grouping": "authz_grouping_table_name",
    "authz_roles": "authz_roles_table_name",
    "authz_users": "authz_users_table_name",
    "authz_audit": "authz_audit_table_name",
    "authz_decisions": "authz_decisions_table_name",
    "sandbox_bindings": "sandbox_table_name",  # PostgresDb only
    "jobs": "job_table_name",
}
"""Family (``agno_migrate.tables.FAMILIES``, but Agno's own version table) → the attribute of an Agno
``Db`` holding its table name. An attribute an object lacks (an older or other Agno) is skipped."""


def is_agno_db(obj: Any) -> bool:
    """Whether ``obj`` is one of Agno's ``Db`` objects (or of a subclass of one)."""
    from_agno = any(
        (getattr(cls, "__module__", "") or "").startswith("agno.db.") for cls in type(obj).__mro__ if cls is not object
    )
    return from_agno and isinstance(getattr(obj, "session_table_name", None), str)


def table_names(db: Any) -> dict[str, str]:
    """Family → table name for every other Agno table ``db`` names."""
    out = {}
    for fam, attribute in FAMILY_ATTRIBUTES.items():
        name = getattr(db, attribute, None)
        if isinstance(name, str) and name:
            out[fam] = name
    return out


def target_options(db: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``Target.from_url`` for an Agno ``Db`` object: its URL, schema and table
    names; ``options`` given by the caller (lock timeouts, table names) take precedence."""
    kind = type(db).__name__
    engine = getattr(db, "db_engine", None)
    if engine is not None:
        url = engine.url.render_as_string(hide_password=False)
        schema = getattr(db, "db_schema", None)
    elif hasattr(db, "db_name"):  # MongoDb: a URL and a database name
        url = getattr(db, "db_url", None)
        if not url:
            raise UsageError(
                f"this {kind} was built from a db_client, whose URL agno-migrate cannot read: "
                f"pass agno-migrate the MongoDB URL (and db_name as the schema) instead"
            )
        schema = db.db_name
    else:
        raise UsageError(f"{kind}: agno-migrate supports Agno's SqliteDb, PostgresDb, MySQLDb and MongoDb")
    found = {
        "url": url,
        "schema": schema,
        "session_table": db.session_table_name,
        "runs_table": getattr(db, "runs_table_name", None),
        "agno_versions_table": getattr(db, "versions_table_name", None),
        "tables": table_names(db),
    }
    given = {k: v for k, v in options.items() if v is not None}
    if "tables" in given:
        given["tables"] = {**found["tables"], **given["tables"]}
    return {**found, **given}
