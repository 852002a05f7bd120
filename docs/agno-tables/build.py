"""Put the dumps of layouts.py together: docs/agno-tables/layouts.json, and the generated tables of agno-tables.md.

    python build.py --dumps D --out layouts.json [--markdown tables.md] [--doc ../agno-tables.md]

D holds the outputs of layouts.py: fresh.json, mongo.json, fixtures.json, upgraded.json, upgraded-fresh.json and
mongo-upgraded.json (README in agno-tables.md says how to make them).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from agno_schema import DEFAULT_NAMES  # noqa: E402
from compare import HEAD, POINT_RELEASE, TYPE_OF_NAME, compare_points, diff  # noqa: E402

RELEASES = ["2.0.11", "2.3.26", "2.5.0", "2.5.17", "2.6.22", "2.9.0", "3.1.10"]
RELEASE_POINT = {v: k for k, v in POINT_RELEASE.items()}
SQL = ("sqlite", "postgres", "mysql")


def sql_entry(layout: dict[str, Any], backend: str) -> dict[str, Any]:
    """reflect.py's layout in the form layouts.json documents."""
    unique_constraints, indexes = [], []
    for u in layout["unique"]:
        if u.get("where") is None and (u["kind"] == "constraint" or backend == "mysql"):
            unique_constraints.append({"name": u["name"], "columns": u["columns"]})
        else:
            indexes.append({"name": u["name"], "columns": u["columns"], "unique": True, "where": u.get("where")})
    for i in layout["indexes"]:
        item = {"name": i["name"], "columns": i["columns"], "unique": False}
        if i.get("prefix"):
            item["prefix"] = i["prefix"]
        indexes.append(item)
    indexes.sort(key=lambda i: i["name"])
    return {
        "table": layout.get("table"),
        "columns": {
            name: {"type": c["type"], "family": c["family"], "nullable": c["nullable"], "default": c["default"]}
            for name, c in layout["columns"].items()
        },
        "primary_key": layout["primary_key"],
        "unique_constraints": unique_constraints,
        "indexes": indexes,
        "foreign_keys": layout["foreign_keys"],
    }


def _stable(lines: list[str]) -> list[str]:
    """The epoch second a migration wrote as a column default, replaced by a placeholder (reproducible output)."""
    return [re.sub(r"-> \d{9,}$", "-> <epoch second of the migration>", line) for line in lines]


def build(dumps: Path) -> dict[str, Any]:
    fresh = json.loads((dumps / "fresh.json").read_text())
    mongo = json.loads((dumps / "mongo.json").read_text())
    fixtures = json.loads((dumps / "fixtures.json").read_text())
    upgraded = json.loads((dumps / "upgraded.json").read_text())
    upgraded_fresh = json.loads((dumps / "upgraded-fresh.json").read_text())
    mongo_up = json.loads((dumps / "mongo-upgraded.json").read_text())

    types: dict[str, Any] = {}
    for release in RELEASES:
        for backend in SQL:
            for table_type, layout in fresh[release][backend].items():
                entry = types.setdefault(table_type, {"default_name": DEFAULT_NAMES[table_type], "releases": {}})
                entry["releases"].setdefault(release, {})[backend] = sql_entry(layout, backend)
        for table_type, declared in mongo[release].items():
            entry = types.setdefault(table_type, {"default_name": DEFAULT_NAMES[table_type], "releases": {}})
            item: dict[str, Any] = {"collection": declared["collection"], "indexes": declared["indexes"]}
            point = RELEASE_POINT.get(release)
            found = fixtures.get(point, {}).get("mongo", {}).get(declared["collection"]) if point else None
            if found and found["documents"]:
                item["fields"] = found["fields"]
                item["fields_source"] = f"fixture point {point} ({found['documents']} documents written by {release})"
            entry["releases"].setdefault(release, {})["mongo"] = item

    # what Agno 3.1.10's MigrationManager leaves, per release and backend, compared with a fresh 3.1.10 table
    for source, backends in upgraded_fresh.items():
        for backend, tables in backends.items():
            for table, layout in tables.items():
                table_type = TYPE_OF_NAME.get(table)
                if table_type not in types or source not in types[table_type]["releases"]:
                    continue
                head = fresh[HEAD][backend].get(table_type)
                lines = ["not declared by 3.1.10"] if head is None else _stable(diff(head, layout))
                target = types[table_type]["releases"][source].get(backend)
                if target is not None:
                    target["after_agno_migration_manager"] = lines

    fixture_check = compare_points(fixtures, fresh, against_head=False)
    upgraded_check = {
        point: {b: {t: _stable(lines) for t, lines in tables.items()} for b, tables in backends.items()}
        for point, backends in compare_points(upgraded, fresh, against_head=True).items()
    }
    v1 = {backend: tables for backend, tables in fixtures["v1"].items()}
    return {
        "_about": {
            "what": "Physical layout of every Agno table type per release and backend, read from the published "
            "wheels (schemas.py evaluated, tables created the way each release's Db class creates them, read back "
            "from SQLite / PostgreSQL 15 / MariaDB 10.11), checked against the fixture pack of the real releases.",
            "releases": RELEASES,
            "backends": ["sqlite", "postgres", "mysql", "mongo"],
            "column": "type = as the server reports it; family = string|text|json|jsonb|bigint|integer|boolean|"
            "date|...; on MariaDB json = LONGTEXT utf8mb4_bin + CHECK (json_valid(col)); default = server default "
            "(none of Agno's `default`s reach the DDL: they are client-side)",
            "mongo": "indexes as index_information() names them (`_id_` is unique by nature); fields = BSON type "
            "counts in the fixture point written by that release (string(json) = a string holding JSON)",
            "after_agno_migration_manager": "(per SQL backend entry) differences from a fresh 3.1.10 table ('-' = "
            "fresh 3.1.10, '+' = what Agno 3.1.10's MigrationManager.up() leaves on this release's fresh table); "
            "[] = identical",
            "generated_by": "docs/agno-tables/layouts.py + build.py",
        },
        "table_types": types,
        "v1": {
            "note": "agno 1.8.4 tables as in fixture point v1: agent_sessions (SqliteStorage/PostgresStorage/"
            "MongoDbStorage, mode agent), user_memories (Memory v2 SqliteMemoryDb/PostgresMemoryDb/MongoMemoryDb)",
            **{
                b: {t: (sql_entry(layout, b) if b != "mongo" else layout) for t, layout in tables.items()}
                for b, tables in v1.items()
            },
        },
        "fixture_check": {
            "what": "each fixture table against the fresh layout of the release that wrote it ([] = identical)",
            "result": fixture_check,
        },
        "agno_upgraded_fixtures": {
            "what": "each fixture point after Agno 3.1.10's MigrationManager.up(), against fresh 3.1.10 "
            "([] = identical)",
            "result": upgraded_check,
        },
        "mongo_agno_upgraded": {
            "what": "each point's MongoDB collections after Agno 3.1.10's MigrationManager.up() and after a 3.1.10 "
            "application's first use (index bootstrap): indexes and stamps",
            "result": {
                point: {
                    "stamps": e.get("stamps"),
                    "indexes_after_up": {
                        c: [i["name"] for i in lay["indexes"]] for c, lay in e.get("agno_up", {}).items()
                    },
                    "indexes_after_first_use": {
                        c: [i["name"] for i in lay["indexes"]] for c, lay in e.get("agno_touched", {}).items()
                    },
                }
                for point, e in mongo_up.items()
                if "agno_up" in e
            },
        },
    }


# -- markdown ---------------------------------------------------------------------------------------------


def _col(name: str, c: dict[str, Any], pk: list[str], indexed: set[str], backend: str) -> str:
    t = c["type"]
    if backend == "mysql" and c["family"] == "json":
        t = "json"
    s = f"{name} {t}"
    if name in pk:
        s += " PK"
    elif not c["nullable"]:
        s += " NN"
    if c["default"] is not None:
        s += f" ={c['default']}"
    if name in indexed:
        s += " idx"
    return s


def table_line(layout: dict[str, Any], backend: str) -> str:
    pk = (layout["primary_key"] or {}).get("columns") or []
    single = {i["columns"][0] for i in layout["indexes"] if len(i["columns"]) == 1 and not i["unique"]}
    cols = "; ".join(_col(n, c, pk, single, backend) for n, c in layout["columns"].items())
    extra = []
    if layout["primary_key"] and len(pk) > 1:
        extra.append(f"PK({', '.join(pk)})")
    for u in layout["unique_constraints"]:
        extra.append(f"UNIQUE {u['name']}({', '.join(u['columns'])})")
    for i in layout["indexes"]:
        if i["unique"]:
            extra.append(f"UNIQUE INDEX {i['name']}({', '.join(i['columns'])}) WHERE {i['where']}")
        elif len(i["columns"]) > 1:
            extra.append(f"INDEX {i['name']}({', '.join(i['columns'])})")
    for f in layout["foreign_keys"]:
        od = f" ON DELETE {f['ondelete']}" if f["ondelete"] else ""
        extra.append(f"FK({', '.join(f['columns'])})→{f['ref_table']}{od}")
    return cols + ("<br>" + "; ".join(extra) if extra else "")


def markdown(data: dict[str, Any], backend: str, table_types: list[str]) -> str:
    """Per table type: the layout where it first appears, then each release that changes it."""
    out = []
    for table_type in table_types:
        entry = data["table_types"].get(table_type)
        if not entry:
            continue
        rows: list[list[str]] = []  # [first release, last release, text]
        prev = None
        for release in RELEASES:
            layout = entry["releases"].get(release, {}).get(backend)
            if layout is None:
                if prev is not None:
                    rows.append([release, release, "**gone** (not declared)"])
                prev = None
            elif prev is None:
                rows.append([release, release, f"`{entry['default_name']}`: {table_line(layout, backend)}"])
                prev = layout
            else:
                lines = diff(_as_reflect(prev), _as_reflect(layout))
                if lines:
                    rows.append([release, release, "; ".join(lines)])
                else:
                    rows[-1][1] = release
                prev = layout
        if rows:
            body = "\n".join(f"| {a if a == b else a + ' … ' + b} | {text} |" for a, b, text in rows)
            out.append(
                f"**{table_type}**\n\n| release | layout (first row) / change from the row above |\n|---|---|\n{body}\n"
            )
    return "\n".join(out)


def _as_reflect(layout: dict[str, Any]) -> dict[str, Any]:
    unique = [
        {"name": u["name"], "columns": u["columns"], "where": None, "kind": "constraint"}
        for u in layout["unique_constraints"]
    ]
    unique += [
        {"name": i["name"], "columns": i["columns"], "where": i.get("where"), "kind": "index"}
        for i in layout["indexes"]
        if i["unique"]
    ]
    return {
        "columns": layout["columns"],
        "primary_key": layout["primary_key"],
        "unique": unique,
        "indexes": [i for i in layout["indexes"] if not i["unique"]],
        "foreign_keys": layout["foreign_keys"],
    }


def mongo_markdown(data: dict[str, Any]) -> str:
    out = ["| collection (type) | " + " | ".join(RELEASES) + " |", "|---|" + "---|" * len(RELEASES)]
    for table_type, entry in data["table_types"].items():
        cells, prev = [], None
        present = False
        for release in RELEASES:
            m = entry["releases"].get(release, {}).get("mongo")
            if m is None:
                cells.append("–" if prev is None else "**gone**")
                prev = None
                continue
            present = True
            names = [f"{i['name']}{' (unique)' if i['unique'] else ''}" for i in m["indexes"] if i["name"] != "_id_"]
            if prev is None:
                cells.append(", ".join(names))
            else:
                old = {f"{i['name']}{' (unique)' if i['unique'] else ''}" for i in prev["indexes"]}
                new = set(names) | {"_id_"}
                change = [f"+{n}" for n in names if n not in old] + [f"−{n}" for n in sorted(old - new)]
                cells.append(" ".join(change) if change else "=")
            prev = m
        if present:
            out.append(f"| `{entry['default_name']}` ({table_type}) | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def mongo_fields_markdown(data: dict[str, Any], table_types: list[str]) -> str:
    out = []
    for table_type in table_types:
        entry = data["table_types"].get(table_type, {})
        rows = []
        for release in RELEASES:
            m = entry.get("releases", {}).get(release, {}).get("mongo")
            if m and m.get("fields"):
                fields = "; ".join(f"{f} {'/'.join(sorted(t))}" for f, t in m["fields"].items() if f != "_id")
                rows.append(f"| {release} | {fields} |")
        if rows:
            out.append(
                f"**{table_type}** (`{entry['default_name']}`)\n\n"
                "| written by | fields: BSON types found |\n|---|---|\n" + "\n".join(rows) + "\n"
            )
    return "\n".join(out)


def steps_markdown(fresh_path: Path) -> str:
    """Per table type and backend: what differs between each release's fresh layout and 3.1.10's (grouped)."""
    from compare import compare_releases

    fresh = json.loads(fresh_path.read_text())
    out = []
    for table_type, backends in compare_releases(fresh).items():
        rows = []
        for backend in SQL:
            groups: list[list[Any]] = []
            for release in RELEASES[:-1]:
                lines = backends.get(backend, {}).get(release)
                if lines is None:
                    continue
                text = "; ".join(lines) if lines else "nothing (= 3.1.10)"
                if groups and groups[-1][1] == text:
                    groups[-1][0].append(release)
                else:
                    groups.append([[release], text])
            for releases, text in groups:
                label = releases[0] if len(releases) == 1 else f"{releases[0]} … {releases[-1]}"
                rows.append(f"| {backend} | {label} | {text} |")
        if rows:
            out.append(f"**{table_type}**\n\n| backend | from | to 3.1.10 |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(out)


def compact_json(value: Any, indent: int = 0) -> str:
    """JSON with one line per leaf object or list (a column, an index, a key), nested objects indented."""
    leaf = not isinstance(value, (dict, list)) or all(
        not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))
        for v in (value.values() if isinstance(value, dict) else value)
    )
    if leaf or len(json.dumps(value, ensure_ascii=False)) <= 100:
        return json.dumps(value, ensure_ascii=False)
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {compact_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [f"{inner}{compact_json(v, indent + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dumps", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--markdown", help="write every generated table here")
    parser.add_argument("--doc", help="refill the <!-- begin/end generated: NAME --> sections of this file")
    args = parser.parse_args()
    data = build(Path(args.dumps))
    Path(args.out).write_text(compact_json(data) + "\n")
    fragments = {
        backend: markdown(data, backend, list(data["table_types"])) for backend in ("mysql", "sqlite", "postgres")
    }
    fragments["mongo-indexes"] = mongo_markdown(data)
    fragments["mongo-fields"] = mongo_fields_markdown(data, list(data["table_types"]))
    fragments["steps"] = steps_markdown(Path(args.dumps) / "fresh.json")
    if args.markdown:
        Path(args.markdown).write_text("\n".join(f"### {name}\n\n{text}" for name, text in fragments.items()))
    if args.doc:
        doc = Path(args.doc).read_text()
        for name, text in fragments.items():
            begin, end = f"<!-- begin generated: {name} -->", f"<!-- end generated: {name} -->"
            if begin in doc:
                head, rest = doc.split(begin, 1)
                doc = head + begin + "\n\n" + text.rstrip() + "\n\n" + end + rest.split(end, 1)[1]
        Path(args.doc).write_text(doc)


if __name__ == "__main__":
    main()
