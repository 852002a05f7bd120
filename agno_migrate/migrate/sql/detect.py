"""Fingerprinting a database by what is physically there: Agno has stamped versions whose DDL never
ran, so the physical schema decides and Agno's stamp is only a second opinion.

* :func:`detect` gives the registry version of a database that carries no version table of ours
  (empty, Agno 1.x, Agno 2.x/3.x), with Agno's own stamp read as a second opinion and any
  disagreement reported as drift.
* :func:`signature` is a normalised description of the session tables (columns and their type
  families, keys, foreign keys, indexes; on MySQL the columns' collations), used to compare a
  database with the head schema.
"""

from __future__ import annotations

import sqlalchemy as sa

from agno_migrate import registry
from agno_migrate.backends import dialect_of
from agno_migrate.migrate.detection import legacy_kind, not_agno, unknown_stamp
from agno_migrate.migrate.model import Detection, HeadDiff, LegacyTable
from agno_migrate.migrate.sql import revisions as sql
from agno_migrate.registry import SchemaVersion
from agno_migrate.schema import JSON_COLUMNS_2X as JSON_COLUMNS
from agno_migrate.target import Target


def legacy_tables(conn, target: Target) -> list[LegacyTable]:
    """Agno 1.x session and memory tables in the target's schema, recognised by their column signature."""
    insp = sa.inspect(conn)
    schema = dialect_of(target).schema_of(target)
    found = []
    known = {
        target.session_table,
        target.runs_table,
        target.agno_versions_table,
        target.version_table,
        f"{target.version_table}_legacy",
    }  # ours and Agno's current tables: never Agno 1.x ones
    names = sorted(set(insp.get_table_names(schema=schema)) - known)
    # every table's columns by one catalogue query where the dialect has it (PostgreSQL), not one per table
    multi = insp.get_multi_columns(schema=schema, filter_names=names) if names else {}
    columns = {key[1]: cols for key, cols in multi.items()}
    for name in names:
        mode = legacy_kind({c["name"] for c in columns.get(name, ())})
        if mode:
            table = sa.table(name, schema=schema)
            rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            found.append(LegacyTable(name, mode, rows))
    return found


def _key_kind(insp, target: Target, schema) -> str:
    t = target.session_table
    pk = insp.get_pk_constraint(t, schema=schema).get("constrained_columns") == ["session_id"]
    uniques = [u["column_names"] for u in insp.get_unique_constraints(t, schema=schema)]
    uniques += [i["column_names"] for i in insp.get_indexes(t, schema=schema) if i.get("unique")]
    uq = ["session_id"] in uniques
    return {(True, True): "both", (True, False): "pk", (False, True): "uq", (False, False): "none"}[(pk, uq)]


def detect(conn, target: Target) -> Detection:
    """The physical version of an unmanaged database, Agno's stamp, and any drift between them.

    Raises SchemaAhead when Agno stamped a version newer than this tool knows.
    """
    insp = sa.inspect(conn)
    dialect = dialect_of(target)
    schema = dialect.schema_of(target)
    tables = set(insp.get_table_names(schema=schema)) if schema_exists(insp, target) else set()
    result = Detection(version=None, has_session_table=target.session_table in tables)
    if not result.has_session_table:
        result.legacy = legacy_tables(conn, target) if tables else []
        if target.runs_table in tables:
            result.drift.append(f"the runs table {target.runs_table} exists without the session table")
            owners = {fk["referred_table"] for fk in insp.get_foreign_keys(target.runs_table, schema=schema)}
            result.orphan_runs = ", ".join(sorted(owners)) or "?"
        return result
    stamp = sql.agno_stamp(conn, target) if target.agno_versions_table in tables else None
    result.agno_stamp = stamp
    columns = {c["name"]: dialect.type_family(c["type"]) for c in insp.get_columns(target.session_table, schema=schema)}
    foreign = not_agno(target, set(columns), "table")
    if foreign:
        result.not_agno = True
        result.drift.append(foreign)
        return result
    key = _key_kind(insp, target, schema)
    json_families = {columns[c] for c in JSON_COLUMNS if c in columns}
    candidates, notes = dialect.pre3_candidates(json_families, key, target.agno_versions_table in tables)
    result.drift += notes
    if target.runs_table in tables:
        if "runs" not in columns:
            if candidates[-1].version == "2.5.0":
                candidates = _v3_candidates(conn, target)
            else:
                result.drift.append("the runs table exists but the session table is older than 2.5.0")
        elif candidates[-1].version == "2.5.0":
            candidates = candidates + _v3_candidates(conn, target)
    elif "runs" not in columns:
        result.drift.append(f"neither a runs column in {target.session_table} nor a runs table {target.runs_table}")
    result.candidates = candidates
    diff = compare_to_head(conn, target, adopting=True)
    result.add_damage(diff.drift)
    result.repairs, result.additions = diff.missing_lines, diff.additions
    stamped = registry.from_agno_stamp(stamp)
    meant = [c for c in candidates if c in registry.meant_by_agno_stamp(stamp)]
    if stamp is not None and stamped is None:
        result.drift.append(unknown_stamp(target, stamp))
    if meant:  # the newest version both the stamp and the physical schema agree on (3.0.1 for an
        # Agno 3.x database on SQLite/PostgreSQL, where 3.0.1 changed nothing: it is at head)
        result.version = meant[-1]
    else:
        result.version = candidates[0]
        if stamped is not None:
            result.drift.append(
                f"Agno's {target.agno_versions_table} says {stamp} but the physical schema is "
                f"{_describe(candidates)}: {_difference(target, stamped, columns, key, target.runs_table in tables)}"
            )
    return result


def schema_exists(insp, target: Target) -> bool:
    """Whether the target's schema exists (always, where the dialect has no schemas)."""
    if not dialect_of(target).has_schemas:
        return True
    return target.schema in insp.get_schema_names()


def _v3_candidates(conn, target: Target) -> list[SchemaVersion]:
    """The versions (3.0.0 and up) a database with the runs table physically matches.

    3.0.1 changed only the collation of the id columns on MySQL: there, every id column binary
    (as the head declares it) is 3.0.1 and anything else 3.0.0, the 3.0.1 step making the rest
    binary; on SQLite and PostgreSQL the two are physically the same schema.
    """
    if dialect_of(target).id_collation is None:
        return [registry.get("3.0.0"), registry.get("3.0.1")]
    wanted = _declared_collations(target)
    for table, columns in wanted.items():
        found = mysql_collations(conn, target, table)
        if any(found.get(col) != collation for col, collation in columns.items()):
            return [registry.get("3.0.0")]
    return [registry.get("3.0.1")]


def mysql_collations(conn, target: Target, table: str) -> dict[str, str | None]:
    """column -> its collation (None for a non-string column) from information_schema.COLUMNS:
    SHOW CREATE TABLE, which reflection reads, omits a collation equal to the table default."""
    query = sa.text(
        "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = :schema AND TABLE_NAME = :table"
    )
    rows = conn.execute(query, {"schema": target.schema, "table": table})
    return {_text(name): _text(collation) if collation is not None else None for name, collation in rows}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


def _declared_collations(target: Target) -> dict[str, dict[str, str]]:
    """table -> {column: collation} for the columns whose collation the head schema declares."""
    from agno_migrate.schema import head_tables

    head = head_tables(target)
    return {
        table.name: {c.name: c.type.collation for c in table.columns if getattr(c.type, "collation", None)}
        for table in (head.sessions, head.runs, head.agno_versions)
    }


def _difference(target, stamped: SchemaVersion, columns, key, has_runs_table) -> str:
    want = stamped.key
    dialect = dialect_of(target)
    diffs = []
    if dialect.json_becomes_jsonb and want >= (2, 3, 0):
        not_jsonb = [c for c in JSON_COLUMNS if c in columns and columns[c] != "jsonb"]
        if not_jsonb:
            diffs.append(f"column(s) {', '.join(not_jsonb)} are not jsonb")
    if dialect.alters_keys and want >= (2, 5, 0) and key not in ("pk",):
        diffs.append("no primary key on session_id")
    if want >= (3, 0, 0) and not has_runs_table:
        diffs.append(f"no runs table {target.runs_table}")
    if want < (3, 0, 0) and has_runs_table:
        diffs.append(f"a runs table {target.runs_table} exists")
    return "; ".join(diffs) or "the schema matches an older version"


def _describe(candidates: list[SchemaVersion]) -> str:
    return " or ".join(c.version for c in candidates)


# --- signatures ---------------------------------------------------------------------------------


def signature(conn, target: Target) -> dict:
    """A normalised, comparable description of the session, runs and Agno version tables."""
    insp = sa.inspect(conn)
    dialect = dialect_of(target)
    schema = dialect.schema_of(target)
    out = {}
    for name in (target.session_table, target.runs_table, target.agno_versions_table):
        if not insp.has_table(name, schema=schema):
            continue
        out[name] = {
            "columns": {
                c["name"]: (dialect.type_family(c["type"]), bool(c["nullable"]))
                for c in insp.get_columns(name, schema=schema)
            },
            "primary_key": insp.get_pk_constraint(name, schema=schema).get("constrained_columns"),
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    (fk.get("options") or {}).get("ondelete", "").upper(),
                )
                for fk in insp.get_foreign_keys(name, schema=schema)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i.get("unique")))
                for i in insp.get_indexes(name, schema=schema)
            ),
        }
        if dialect.id_collation is not None:
            out[name]["collations"] = {
                col: coll for col, coll in mysql_collations(conn, target, name).items() if coll is not None
            }
    return out


def head_signature(target: Target) -> dict:
    """The signature a fresh head database of ``target`` has, computed from ``schema.py``."""
    from agno_migrate.schema import head_tables

    head = head_tables(target)
    dialect = dialect_of(target)
    out = {}
    for table in (head.sessions, head.runs, head.agno_versions):
        fks = []
        for fk in table.foreign_key_constraints:
            fks.append(
                (tuple(c.name for c in fk.columns), fk.elements[0].column.table.name, (fk.ondelete or "").upper())
            )
        out[table.name] = {
            "columns": {c.name: (dialect.type_family(c.type), bool(c.nullable)) for c in table.columns},
            "primary_key": [c.name for c in table.primary_key.columns],
            "foreign_keys": sorted(fks),
            "indexes": sorted((i.name, tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes),
        }
    if dialect.id_collation is not None:  # only what the head declares: other columns take the table default
        for name, collations in _declared_collations(target).items():
            out[name]["collations"] = collations
    return out


def compare_to_head(conn, target: Target, adopting: bool = False) -> HeadDiff:
    """How the database differs from the head schema (the legacy runs column is allowed): drift,
    head's indexes that are missing (the upgrade creates them), and a user's additions
    (``tables.extra_column``/``extra_index``, the one rule of every Agno table: a nullable or
    defaulted column, a plain index).

    ``adopting``: only what no registry version changes may differ — the columns every version has
    and their types (JSON columns: json or jsonb), and the indexes; what the steps themselves add or
    change (missing tables, jsonb, the primary key, foreign keys, MySQL collations) is not compared.
    A missing primary key or unique key is never repaired: rows already there could violate it.
    """
    actual = signature(conn, target)
    expected = head_signature(target)
    diff = HeadDiff()
    drift = diff.drift
    for name, want in expected.items():
        got = actual.get(name)
        if got is None:
            if not adopting:
                drift.append(f"table {name} is missing")
            continue
        got_columns = {k: v for k, v in got["columns"].items() if not (name == target.session_table and k == "runs")}
        for col, spec in want["columns"].items():
            if col not in got_columns:
                drift.append(f"{name}.{col} is missing")
            elif got_columns[col][0] != spec[0] and not (
                adopting and {got_columns[col][0], spec[0]} <= {"json", "jsonb"}
            ):
                drift.append(f"{name}.{col} is {got_columns[col][0]}, expected {spec[0]}")
        _judge_additions(conn, target, name, got, want, diff)
        diff.missing += _missing_indexes(name, got, want)
        if adopting:
            continue
        for col, collation in want.get("collations", {}).items():
            got_collation = got.get("collations", {}).get(col)
            if col in got_columns and got_collation != collation:
                drift.append(f"{name}.{col} has collation {got_collation}, expected {collation}")
        if got["primary_key"] != want["primary_key"]:
            drift.append(
                f"{name} primary key is {got['primary_key']}, expected {want['primary_key']} (not added by "
                f"upgrade: rows already there could violate it; remove duplicates and add it by hand)"
            )
        if got["foreign_keys"] != want["foreign_keys"]:
            drift.append(f"{name} foreign keys differ from head")
    return diff


def _judge_additions(conn, target: Target, name: str, got: dict, want: dict, diff: HeadDiff) -> None:
    """A user's columns and indexes on ``name`` beyond head's, sorted into drift or additions by the
    rule every Agno table follows (``tables.detect.extra_column``, ``extra_index``)."""
    from agno_migrate.tables.detect import extra_column, extra_index, file_under, has_default

    legacy = {"runs"} if name == target.session_table else set()  # the legacy runs column, kept on purpose
    extra = [c for c in got["columns"] if c not in want["columns"] and c not in legacy]
    if extra:
        schema = dialect_of(target).schema_of(target)
        reflected = {c["name"]: c for c in sa.inspect(conn).get_columns(name, schema=schema)}
        for col in extra:
            family, nullable = got["columns"][col][:2]
            judged = extra_column(col, family, nullable, has_default(reflected[col]))
            file_under(judged, diff.drift, diff.additions, name)
    wanted = {i[0] for i in want["indexes"]} | {i[1] for i in want["indexes"]}
    for index, cols, unique in got["indexes"]:
        if index not in wanted and cols not in wanted and list(cols) != want["primary_key"]:
            judged = extra_index(index, cols, unique)
            file_under(judged, diff.drift, diff.additions, name)


def _missing_indexes(name: str, got: dict, want: dict) -> list[tuple[str, str]]:
    """(table, index) of head's indexes on ``name`` that are not there, under their name or any other."""
    have = {i[0] for i in got["indexes"]} | {i[1] for i in got["indexes"]}
    return [(name, idx[0]) for idx in want["indexes"] if idx[0] not in have and idx[1] not in have]
