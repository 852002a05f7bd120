"""Read the physical layout of every table of a database, normalised the same way on every backend.

A table's layout:
  {"columns": {name: {"type": as the server reports it, "family": string|text|json|jsonb|bigint|integer|
                      boolean|date|datetime|timestamptz|..., "nullable": bool, "default": server default or None}},
   "primary_key": {"name": ..., "columns": [...]} or None,
   "unique": [{"name", "columns", "where", "kind": "constraint"|"index"}],   # every uniqueness but the PK
   "indexes": [{"name", "columns"}],                                       # the non-unique indexes
   "foreign_keys": [{"name", "columns", "ref_table", "ref_columns", "ondelete"}]}

A MongoDB collection's layout (from the fixture files `<collection>.indexes.json` / `.jsonl`):
  {"indexes": [{"name", "key": [[field, direction]], "unique"}], "fields": {field: {bson type: count}},
   "documents": n}

Direct catalogue queries (sqlite_master/PRAGMA, pg_catalog, information_schema), no SQLAlchemy reflection.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any


def family(raw: str, json_checked: bool = False) -> str:
    t = raw.lower().strip()
    if json_checked and t in ("longtext", "text"):
        return "json"  # MariaDB's JSON: LONGTEXT + CHECK (json_valid(col))
    if t == "tinyint(1)" or t in ("boolean", "bool"):
        return "boolean"
    for prefix, fam in (
        ("character varying", "string"),
        ("varchar", "string"),
        ("char", "string"),
        ("jsonb", "jsonb"),
        ("json", "json"),
        ("bigint", "bigint"),
        ("int8", "bigint"),
        ("integer", "integer"),
        ("int", "integer"),
        ("smallint", "integer"),
        ("timestamp with time zone", "timestamptz"),
        ("timestamp", "datetime"),
        ("datetime", "datetime"),
        ("date", "date"),
        ("longtext", "text"),
        ("mediumtext", "text"),
        ("text", "text"),
        ("double", "float"),
        ("float", "float"),
        ("real", "float"),
        ("numeric", "numeric"),
    ):
        if t.startswith(prefix):
            return fam
    return t


def _finish(layout: dict[str, Any]) -> dict[str, Any]:
    layout["unique"].sort(key=lambda u: (u["name"] or "", u["columns"]))
    layout["indexes"].sort(key=lambda i: i["name"])
    layout["foreign_keys"].sort(key=lambda f: (f["name"] or "", f["columns"]))
    return layout


# -- SQLite -----------------------------------------------------------------------------------------------


def sqlite_tables(path: str | Path) -> dict[str, dict[str, Any]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {name: _sqlite_table(con, name) for name in names}
    finally:
        con.close()


def _sqlite_table(con: sqlite3.Connection, name: str) -> dict[str, Any]:
    q = name.replace('"', '""')
    create_sql = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()[0]
    layout: dict[str, Any] = {"columns": {}, "primary_key": None, "unique": [], "indexes": [], "foreign_keys": []}
    pk = []
    for _cid, col, ctype, notnull, default, pkpos in con.execute(f'PRAGMA table_info("{q}")'):
        # NOT NULL as declared: SQLite lets a non-INTEGER PRIMARY KEY column hold NULL unless it says NOT NULL
        layout["columns"][col] = {"type": ctype, "family": family(ctype), "nullable": not notnull, "default": default}
        if pkpos:
            pk.append((pkpos, col))
    if pk:
        m = re.search(r"CONSTRAINT\s+\"?(\w+)\"?\s+PRIMARY KEY", create_sql, re.I)
        layout["primary_key"] = {"name": m.group(1) if m else None, "columns": [c for _, c in sorted(pk)]}
    named_uniques = [
        (m.group(1), [c.strip().strip('"') for c in m.group(2).split(",")])
        for m in re.finditer(r"CONSTRAINT\s+\"?(\w+)\"?\s+UNIQUE\s*\(([^)]*)\)", create_sql, re.I)
    ]
    for _seq, iname, unique, origin, partial in con.execute(f'PRAGMA index_list("{q}")'):
        cols = [r[2] for r in con.execute(f'PRAGMA index_info("{iname.replace(chr(34), chr(34) * 2)}")')]
        if origin == "pk":
            continue
        where = None
        if partial:
            isql = con.execute("SELECT sql FROM sqlite_master WHERE type='index' AND name=?", (iname,)).fetchone()[0]
            where = re.split(r"\bWHERE\b", isql, maxsplit=1, flags=re.I)[1].strip()
        if origin == "u":
            cname = next((n for n, c in named_uniques if c == cols), None)
            layout["unique"].append({"name": cname, "columns": cols, "where": None, "kind": "constraint"})
        elif unique:
            layout["unique"].append({"name": iname, "columns": cols, "where": where, "kind": "index"})
        else:
            layout["indexes"].append({"name": iname, "columns": cols})
    fks: dict[int, dict[str, Any]] = {}
    for fid, _seq, ref_table, frm, to, _upd, on_delete, _match in con.execute(f'PRAGMA foreign_key_list("{q}")'):
        fk = fks.setdefault(
            fid, {"name": None, "columns": [], "ref_table": ref_table, "ref_columns": [], "ondelete": None}
        )
        fk["columns"].append(frm)
        fk["ref_columns"].append(to)
        fk["ondelete"] = None if on_delete == "NO ACTION" else on_delete
    layout["foreign_keys"] = list(fks.values())
    return _finish(layout)


# -- PostgreSQL -------------------------------------------------------------------------------------------


def postgres_tables(conn: Any, schema: str) -> dict[str, dict[str, Any]]:
    """conn: a psycopg (3) connection."""
    cur = conn.cursor()
    cur.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace "
        "WHERE n.nspname=%s AND c.relkind IN ('r','p') ORDER BY 1",
        (schema,),
    )
    tables = [r[0] for r in cur.fetchall()]
    out = {}
    for t in tables:
        layout: dict[str, Any] = {"columns": {}, "primary_key": None, "unique": [], "indexes": [], "foreign_keys": []}
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid=a.attrelid JOIN pg_namespace n ON n.oid=c.relnamespace "
            "LEFT JOIN pg_attrdef d ON d.adrelid=a.attrelid AND d.adnum=a.attnum "
            "WHERE n.nspname=%s AND c.relname=%s AND a.attnum>0 AND NOT a.attisdropped ORDER BY a.attnum",
            (schema, t),
        )
        for name, ctype, nullable, default in cur.fetchall():
            layout["columns"][name] = {"type": ctype, "family": family(ctype), "nullable": nullable, "default": default}
        cur.execute(
            "SELECT i.relname, ix.indisunique, ix.indisprimary, pg_get_expr(ix.indpred, ix.indrelid), "
            "(SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) "
            " JOIN pg_attribute a ON a.attrelid=t.oid AND a.attnum=k.attnum), "
            "(SELECT con.contype FROM pg_constraint con"
            " WHERE con.conindid=ix.indexrelid AND con.conrelid=t.oid LIMIT 1), "
            "(SELECT con.conname FROM pg_constraint con"
            " WHERE con.conindid=ix.indexrelid AND con.conrelid=t.oid LIMIT 1) "
            "FROM pg_class t JOIN pg_namespace n ON n.oid=t.relnamespace JOIN pg_index ix ON ix.indrelid=t.oid "
            "JOIN pg_class i ON i.oid=ix.indexrelid WHERE n.nspname=%s AND t.relname=%s",
            (schema, t),
        )
        for iname, unique, primary, where, cols, contype, conname in cur.fetchall():
            cols = list(cols or [])
            if primary:
                layout["primary_key"] = {"name": conname or iname, "columns": cols}
            elif unique:
                kind = "constraint" if contype == "u" else "index"
                layout["unique"].append({"name": conname or iname, "columns": cols, "where": where, "kind": kind})
            else:
                layout["indexes"].append({"name": iname, "columns": cols})
        cur.execute(
            "SELECT con.conname, "
            "(SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(n, ord) "
            " JOIN pg_attribute a ON a.attrelid=con.conrelid AND a.attnum=k.n), "
            "rt.relname, "
            "(SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(n, ord) "
            " JOIN pg_attribute a ON a.attrelid=con.confrelid AND a.attnum=k.n), con.confdeltype "
            "FROM pg_constraint con JOIN pg_class t ON t.oid=con.conrelid JOIN pg_namespace n ON n.oid=t.relnamespace "
            "JOIN pg_class rt ON rt.oid=con.confrelid WHERE con.contype='f' AND n.nspname=%s AND t.relname=%s",
            (schema, t),
        )
        deltype = {"a": None, "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT", "r": "RESTRICT"}
        for name, cols, ref, refcols, dt in cur.fetchall():
            layout["foreign_keys"].append(
                {
                    "name": name,
                    "columns": list(cols),
                    "ref_table": ref,
                    "ref_columns": list(refcols),
                    "ondelete": deltype[dt],
                }
            )
        out[t] = _finish(layout)
    return out


# -- MySQL / MariaDB --------------------------------------------------------------------------------------


def mysql_tables(conn: Any, database: str) -> dict[str, dict[str, Any]]:
    """conn: a pymysql connection."""
    cur = conn.cursor()
    cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s ORDER BY 1", (database,))
    tables = [r[0] for r in cur.fetchall()]
    out = {}
    for t in tables:
        layout: dict[str, Any] = {"columns": {}, "primary_key": None, "unique": [], "indexes": [], "foreign_keys": []}
        cur.execute(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
            " WHERE CONSTRAINT_SCHEMA=%s AND TABLE_NAME=%s",
            (database, t),
        )
        checked = {m for (clause,) in cur.fetchall() for m in re.findall(r"json_valid\(`([^`]+)`\)", clause)}
        cur.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION",
            (database, t),
        )
        for name, ctype, nullable, default in cur.fetchall():
            default = None if default in (None, "NULL") else default
            layout["columns"][name] = {
                "type": ctype,
                "family": family(ctype, name in checked),
                "nullable": nullable == "YES",
                "default": default,
            }
        cur.execute(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (database, t),
        )
        idx: dict[str, dict[str, Any]] = {}
        for iname, non_unique, col, sub_part in cur.fetchall():
            entry = idx.setdefault(iname, {"unique": not non_unique, "columns": [], "prefix": {}})
            entry["columns"].append(col)
            if sub_part:
                entry["prefix"][col] = sub_part
        for iname, entry in idx.items():
            if iname == "PRIMARY":
                layout["primary_key"] = {"name": "PRIMARY", "columns": entry["columns"]}
            elif entry["unique"]:
                layout["unique"].append({"name": iname, "columns": entry["columns"], "where": None, "kind": "index"})
            else:
                item = {"name": iname, "columns": entry["columns"]}
                if entry["prefix"]:
                    item["prefix"] = entry["prefix"]
                layout["indexes"].append(item)
        cur.execute(
            "SELECT k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE "
            "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
            "ON r.CONSTRAINT_SCHEMA=k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME=k.CONSTRAINT_NAME"
            " AND r.TABLE_NAME=k.TABLE_NAME "
            "WHERE k.TABLE_SCHEMA=%s AND k.TABLE_NAME=%s ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
            (database, t),
        )
        fks: dict[str, dict[str, Any]] = {}
        for name, col, ref, refcol, rule in cur.fetchall():
            fk = fks.setdefault(
                name,
                {
                    "name": name,
                    "columns": [],
                    "ref_table": ref,
                    "ref_columns": [],
                    "ondelete": None if rule == "RESTRICT" else rule,
                },
            )
            fk["columns"].append(col)
            fk["ref_columns"].append(refcol)
        layout["foreign_keys"] = list(fks.values())
        out[t] = _finish(layout)
    return out


# -- MongoDB (fixture files) ------------------------------------------------------------------------------


def _bson_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "{[" and s[-1:] in "}]":
            try:
                json.loads(s)
                return "string(json)"
            except ValueError:
                pass
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        if len(value) == 1:
            key = next(iter(value))
            tag = {
                "$numberInt": "int",
                "$numberLong": "long",
                "$numberDouble": "double",
                "$oid": "objectId",
                "$date": "date",
                "$numberDecimal": "decimal",
                "$binary": "binData",
            }.get(key)
            if tag:
                return tag
        return "object"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    return type(value).__name__


def mongo_collection(folder: str | Path, collection: str) -> dict[str, Any]:
    """Indexes and field types of `<folder>/<collection>.{indexes.json,jsonl}` (canonical Extended JSON)."""
    folder = Path(folder)
    layout: dict[str, Any] = {"indexes": [], "fields": {}, "documents": 0}
    index_file = folder / f"{collection}.indexes.json"
    if index_file.exists():
        for name, info in json.loads(index_file.read_text()).items():
            key = [[k, _ext_int(d)] for k, d in info["key"]]
            layout["indexes"].append({"name": name, "key": key, "unique": bool(info.get("unique", False))})
        layout["indexes"].sort(key=lambda i: i["name"])
    data_file = folder / f"{collection}.jsonl"
    if data_file.exists():
        for line in data_file.read_text().splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            layout["documents"] += 1
            for field, value in doc.items():
                counts = layout["fields"].setdefault(field, {})
                t = _bson_type(value)
                counts[t] = counts.get(t, 0) + 1
    return layout


def _ext_int(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        if k in ("$numberInt", "$numberLong"):
            return int(v)
        if k == "$numberDouble":
            return float(v)
    return value


def mongo_collections(folder: str | Path) -> dict[str, dict[str, Any]]:
    folder = Path(folder)
    names = sorted({p.name.split(".")[0] for p in folder.iterdir() if p.suffix in (".json", ".jsonl")})
    return {n: mongo_collection(folder, n) for n in names}


def mongo_database(db: Any) -> dict[str, dict[str, Any]]:
    """The same for a live database (a pymongo Database): indexes and field types of every collection."""
    from bson import json_util

    out = {}
    for name in sorted(db.list_collection_names()):
        layout: dict[str, Any] = {"indexes": [], "fields": {}, "documents": 0}
        for iname, info in db[name].index_information().items():
            layout["indexes"].append(
                {"name": iname, "key": [[k, d] for k, d in info["key"]], "unique": bool(info.get("unique", False))}
            )
        layout["indexes"].sort(key=lambda i: i["name"])
        for raw in db[name].find():
            doc = json.loads(json_util.dumps(raw, json_options=json_util.CANONICAL_JSON_OPTIONS))
            layout["documents"] += 1
            for field, value in doc.items():
                counts = layout["fields"].setdefault(field, {})
                t = _bson_type(value)
                counts[t] = counts.get(t, 0) + 1
        out[name] = layout
    return out
