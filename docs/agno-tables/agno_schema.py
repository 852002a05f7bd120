"""Agno's declared table layouts, evaluated from an unpacked Agno wheel without installing or importing agno.

For a release's `agno/` folder and a backend (sqlite, postgres, mysql, mongo):

* `declared(agno_dir, backend)`: every table type the backend's `schemas.py` declares, as the schema dict
  `get_table_schema_definition(type)` (SQL) or `get_collection_indexes(type)` (MongoDB) returns it;
* `build_metadata(agno_dir, backend, ...)`: SQLAlchemy `Table` objects for every SQL table type, built
  the way that release's `_create_table` builds them (index, constraint and key names included); the
  rules are read from the backend's Db class source and checked there (an unknown rule raises);
* `mongo_indexes(agno_dir)`: the indexes that release's `MongoDb` creates per collection, named the way
  pymongo names them.

Only `agno/db/schemas/*.py` and the backend's `schemas.py` are executed (they import SQLAlchemy types
and nothing else of agno's); the Db classes are read as text.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, Index, MetaData, PrimaryKeyConstraint, Table, text
from sqlalchemy import UniqueConstraint as SAUnique

BACKENDS = ("sqlite", "postgres", "mysql")
DB_CLASS_FILE = {"sqlite": "sqlite/sqlite.py", "postgres": "postgres/postgres.py", "mysql": "mysql/mysql.py"}

# Default table (collection) name per table type: agno/db/base.py (`x_table or "agno_..."`), same on
# every backend and in every release read (2.0.11 .. 3.1.10).
DEFAULT_NAMES = {
    "sessions": "agno_sessions",
    "runs": "agno_runs",
    "memories": "agno_memories",
    "metrics": "agno_metrics",
    "evals": "agno_eval_runs",
    "knowledge": "agno_knowledge",
    "culture": "agno_culture",
    "versions": "agno_schema_versions",
    "traces": "agno_traces",
    "spans": "agno_spans",
    "learnings": "agno_learnings",
    "components": "agno_components",
    "component_configs": "agno_component_configs",
    "component_links": "agno_component_links",
    "schedules": "agno_schedules",
    "schedule_runs": "agno_schedule_runs",
    "approvals": "agno_approvals",
    "auth_tokens": "agno_auth_tokens",
    "service_accounts": "agno_service_accounts",
    "mcp_oauth_clients": "agno_mcp_oauth_clients",
    "mcp_oauth_transactions": "agno_mcp_oauth_transactions",
    "mcp_oauth_codes": "agno_mcp_oauth_codes",
    "mcp_oauth_refresh_tokens": "agno_mcp_oauth_refresh_tokens",
    "mcp_oauth_keys": "agno_mcp_oauth_keys",
    "products": "agno_company_products",
    "sources": "agno_company_sources",
    "projects": "agno_company_projects",
    "tasks": "agno_company_tasks",
    "tool_results": "agno_tool_results",
    "compactions": "agno_compactions",
    "transcripts": "agno_transcripts",
    "authz_policy": "agno_authz_policy",
    "authz_grouping": "agno_authz_grouping",
    "authz_roles": "agno_authz_roles",
    "authz_users": "agno_authz_users",
    "authz_audit": "agno_authz_audit",
    "authz_decisions": "agno_authz_decisions",
    "jobs": "agno_jobs",
    # PostgresDb: "<session_table>_sandbox_bindings" (agno/db/postgres/postgres.py, 3.1.10)
    "sandbox_bindings": "agno_sessions_sandbox_bindings",
}


def _fresh_agno_packages(agno_dir: Path) -> None:
    """Namespace-like stand-ins for agno, agno.db, agno.db.schemas, so only the files asked for execute."""
    for name in [m for m in sys.modules if m == "agno" or m.startswith("agno.")]:
        del sys.modules[name]
    for name, path in (("agno", agno_dir), ("agno.db", agno_dir / "db"), ("agno.db.schemas", agno_dir / "db/schemas")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module


def load_schemas_module(agno_dir: str | Path, backend: str) -> types.ModuleType:
    agno_dir = Path(agno_dir)
    _fresh_agno_packages(agno_dir)
    folder = "mongo" if backend == "mongo" else backend
    name = f"agno.db.{folder}.schemas"
    spec = importlib.util.spec_from_file_location(name, agno_dir / "db" / folder / "schemas.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _candidate_types(module: types.ModuleType, function_name: str) -> list[str]:
    source = inspect.getsource(getattr(module, function_name))
    names = re.findall(r'"([a-z][a-z0-9_]*)"', source)
    for registry in ("MCP_OAUTH_TABLE_SCHEMAS", "AUTHZ_TABLE_SCHEMAS"):
        if registry in source and hasattr(module, registry):
            names += list(getattr(module, registry))
    return list(dict.fromkeys(names))


def declared(agno_dir: str | Path, backend: str) -> dict[str, Any]:
    """{table type: schema dict} as the release's schemas.py returns it (default table names)."""
    module = load_schemas_module(agno_dir, backend)
    out: dict[str, Any] = {}
    if backend == "mongo":
        for table_type in _candidate_types(module, "get_collection_indexes"):
            try:
                out[table_type] = module.get_collection_indexes(table_type)
            except (ValueError, KeyError):
                pass
        return out
    function = module.get_table_schema_definition
    accepted = inspect.signature(function).parameters
    kwargs = {
        "traces_table_name": DEFAULT_NAMES["traces"],
        "schedules_table_name": DEFAULT_NAMES["schedules"],
        "session_table_name": DEFAULT_NAMES["sessions"],
        "runs_table_name": DEFAULT_NAMES["runs"],
    }
    if backend == "postgres":
        kwargs["db_schema"] = "ai"
    for table_type in _candidate_types(module, "get_table_schema_definition"):
        try:
            schema = function(table_type, **{k: v for k, v in kwargs.items() if k in accepted})
        except (ValueError, KeyError):
            continue
        if isinstance(schema, dict) and any(isinstance(v, dict) and "type" in v for v in schema.values()):
            out[table_type] = schema
    return out


# -- the rules each release's _create_table applies -------------------------------------------------------


class Rules:
    """What a release's `_create_table` does with a schema dict, read from the Db class source."""

    def __init__(self, agno_dir: str | Path, backend: str):
        self.source = (Path(agno_dir) / "db" / DB_CLASS_FILE[backend]).read_text()
        start = self.source.index("def _create_table(")
        end = self.source.index("\n    def ", start + 10)
        body = self.source[start:end]
        self.backend = backend
        self.body = body
        self._need('idx_name = f"idx_{table_name}_{idx_col}"')
        self._need("constraint_name = f\"{table_name}_{constraint['name']}\"")
        # a column's "default" goes to Column(default=...): client-side only, never into the DDL
        self.python_default = 'column_kwargs["default"] = col_config["default"]' in body
        self.composite_key = None
        if 'table_schema.pop("__composite_indexes__"' in body:
            self.composite_key = "__composite_indexes__"
            self._need("idx_name = f\"idx_{table_name}_{'_'.join(idx_config['columns'])}\"")
            self.composite_name = "idx_{table}_{cols}"
        elif 'table_schema.pop("_composite_indexes"' in body:
            self.composite_key = "_composite_indexes"
            self._need("composite_name = f\"{table_name}_{composite['name']}\"")
            self.composite_name = "{table}_{name}"
        self.partial_unique = 'table_schema.pop("_partial_unique_indexes"' in body
        if self.partial_unique:
            self._need("f\"{table_name}_{idx_config['name']}\"")
        self.composite_pk = 'table_schema.pop("__primary_key__"' in body
        if self.composite_pk:
            self._need('pk_constraint_name = f"{table_name}_pkey"')
        self.composite_fk = 'table_schema.pop("__foreign_keys__"' in body
        if self.composite_fk:
            self._need("fk_constraint_name = f\"{table_name}_{'_'.join(fk_columns)}_fkey\"")
        self.column_fk = '"foreign_key" in col_config' in body

    def _need(self, snippet: str) -> None:
        if snippet not in self.body:
            raise RuntimeError(f"{self.backend}: _create_table no longer contains {snippet!r}; re-read it")


def _resolve_fk(reference: str, backend: str) -> str:
    """A column-level FK as the Db class resolves it (logical table type -> default table name)."""
    parts = reference.split(".")
    if len(parts) == 2 and parts[0] in DEFAULT_NAMES:
        return f"{DEFAULT_NAMES[parts[0]]}.{parts[1]}"
    return reference


def build_metadata(agno_dir: str | Path, backend: str, schema: str | None = None) -> tuple[MetaData, dict[str, str]]:
    """SQLAlchemy tables for every declared table type, as the release's _create_table builds them.

    Returns (metadata, {table type: table name}). `schema` is the PostgreSQL schema / MySQL database
    the tables go into (None: the connection's default).
    """
    rules = Rules(agno_dir, backend)
    schemas = declared(agno_dir, backend)
    metadata = MetaData(schema=schema)
    names: dict[str, str] = {}
    for table_type, schema_dict in schemas.items():
        table_name = DEFAULT_NAMES.get(table_type, f"agno_{table_type}")
        names[table_type] = table_name
        spec = dict(schema_dict)
        uniques = spec.pop("_unique_constraints", [])
        composite_pk = spec.pop("__primary_key__", None) if rules.composite_pk else None
        composite_fks = spec.pop("__foreign_keys__", []) if rules.composite_fk else []
        composites = spec.pop(rules.composite_key, []) if rules.composite_key else []
        partials = spec.pop("_partial_unique_indexes", []) if rules.partial_unique else []
        for key in [k for k in spec if k.startswith("_")]:
            spec.pop(key)
            print(f"note: {backend} {table_type}: {key} declared but not used by _create_table", file=sys.stderr)
        columns, indexed = [], []
        for column_name, config in spec.items():
            args: list[Any] = [column_name, config["type"]()]
            kwargs: dict[str, Any] = {}
            if config.get("primary_key") and composite_pk is None:
                kwargs["primary_key"] = True
            if "nullable" in config:
                kwargs["nullable"] = config["nullable"]
            if rules.python_default and "default" in config:
                kwargs["default"] = config["default"]
            if config.get("index"):
                indexed.append(column_name)
            if config.get("unique"):
                kwargs["unique"] = True
            if rules.column_fk and "foreign_key" in config:
                fk_kwargs = {"ondelete": config["ondelete"]} if "ondelete" in config else {}
                target = _resolve_fk(config["foreign_key"], backend)
                if backend == "mysql" and schema and target.count(".") == 2:
                    target = f"{schema}.{target.split('.', 1)[1]}"  # MySQLDb qualifies with its db_schema
                args.append(ForeignKey(target, **fk_kwargs))
            columns.append(Column(*args, **kwargs))
        table = Table(table_name, metadata, *columns)
        if composite_pk is not None:
            table.append_constraint(PrimaryKeyConstraint(*composite_pk, name=f"{table_name}_pkey"))
        for fk in composite_fks:
            ref = DEFAULT_NAMES.get(fk["ref_table"], fk["ref_table"])
            table.append_constraint(
                ForeignKeyConstraint(
                    fk["columns"],
                    [f"{ref}.{c}" for c in fk["ref_columns"]],
                    name=f"{table_name}_{'_'.join(fk['columns'])}_fkey",
                )
            )
        for constraint in uniques:
            table.append_constraint(SAUnique(*constraint["columns"], name=f"{table_name}_{constraint['name']}"))
        for column_name in indexed:
            Index(f"idx_{table_name}_{column_name}", table.c[column_name])
        for composite in composites:
            if rules.composite_name == "idx_{table}_{cols}":
                name = f"idx_{table_name}_{'_'.join(composite['columns'])}"
            else:
                name = f"{table_name}_{composite['name']}"
            Index(name, *[table.c[c] for c in composite["columns"]])
        for partial in partials:
            where = {f"{'sqlite' if backend == 'sqlite' else 'postgresql'}_where": text(partial["where"])}
            Index(f"{table_name}_{partial['name']}", *[table.c[c] for c in partial["columns"]], unique=True, **where)
    return metadata, names


# -- MongoDB ----------------------------------------------------------------------------------------------


def mongo_indexes(agno_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """{collection type: [{name, key: [[field, 1], ...], unique}]} as that release's MongoDb creates them.

    Every key is created with `collection.create_index(key, unique=...)` (agno/db/mongo/utils.py,
    create_collection_indexes); pymongo names an index `field_1[_field2_1...]` unless a name is given
    (3.1.10: "uq_user_name"). `_id_` always exists.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for table_type, specs in declared(agno_dir, "mongo").items():
        # `_id_` is unique by nature, but index_information() does not say so: listed the way it reports it
        indexes = [{"name": "_id_", "key": [["_id", 1]], "unique": False}]
        for spec in specs:
            key = spec["key"]
            pairs = [[k, d] for k, d in key] if isinstance(key, list) else [[key, 1]]
            name = spec.get("name") or "_".join(f"{k}_{d}" for k, d in pairs)
            indexes.append({"name": name, "key": pairs, "unique": bool(spec.get("unique", False))})
        out[table_type] = indexes
    return out
