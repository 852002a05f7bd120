"""Write ``agno_migrate/tables/layouts.py`` (the per-table layouts detection accepts) from ``layouts.json``.

    python docs/agno-tables/gen_tables_spec.py            # rewrite the module
    python docs/agno-tables/gen_tables_spec.py --check    # exit 1 if the module differs

For every table type, backend and Agno schema point (the newest Agno migration version at or before
the release that created the layout: 2.0.11 → 2.0.0, 2.3.26 → 2.3.0, 2.5.0 → 2.5.0, 2.5.17/2.6.22/2.9.0
→ 2.5.6, 3.1.10 → 3.0.0), one layout: the columns with their type family as the project's dialect
computes it from a reflected type (``SqlDialect.type_family``), nullability, the primary key, the unique
keys (constraints and unique indexes, partial or not) and the indexes. Consecutive releases whose
layouts are equal (names aside) share one entry whose ``covers`` lists the points it stands for. What
Agno 3.1.10's ``MigrationManager`` leaves (``after_agno_migration_manager``, §6.2 of agno-tables.md) is
added to the head entry's accepted variants when it differs from the fresh table. Index and key names
have the table name replaced by ``{t}``. Needs SQLAlchemy and agno_migrate importable.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "agno_migrate" / "tables" / "layouts.py"
sys.path.insert(0, str(ROOT))

POINT_OF_RELEASE = {
    "2.0.11": "2.0.0",
    "2.3.26": "2.3.0",
    "2.5.0": "2.5.0",
    "2.5.17": "2.5.6",
    "2.6.22": "2.5.6",
    "2.9.0": "2.5.6",
    "3.1.10": "3.0.0",
}
POINTS = ("2.0.0", "2.3.0", "2.5.0", "2.5.6", "3.0.0")
BACKENDS = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}  # layouts.json → dialect name
SKIP = ("sessions", "runs")  # the session flow's own tables (registry.FAMILIES)


def sa_type(backend: str, type_string: str):
    """The SQLAlchemy type reflection gives for a column type as the server reports it."""
    if backend == "sqlite":
        from sqlalchemy.dialects.sqlite.base import SQLiteDialect

        return SQLiteDialect()._resolve_type_affinity(type_string)
    if backend == "postgres":
        from sqlalchemy.dialects.postgresql.base import ischema_names

        return ischema_names[type_string]()
    from sqlalchemy.dialects.mysql.base import ischema_names

    m = re.fullmatch(r"(\w+)(?:\((\d+)\))?", type_string)
    cls = ischema_names[m.group(1)]
    if m.group(2) and m.group(1) in ("varchar", "char"):
        return cls(int(m.group(2)))
    return cls()


def family(backend: str, type_string: str) -> str:
    from agno_migrate.backends import dialect_of

    return dialect_of(BACKENDS[backend]).type_family(sa_type(backend, type_string))


def named(name, table: str):
    return None if name is None else name.replace(table, "{t}")


def sql_layout(backend: str, entry: dict) -> dict:
    table = entry["table"]
    uniques = [(named(u["name"], table), tuple(u["columns"]), False) for u in entry["unique_constraints"]]
    uniques += [
        (named(i["name"], table), tuple(i["columns"]), bool(i.get("where"))) for i in entry["indexes"] if i["unique"]
    ]
    return {
        "columns": {n: (family(backend, c["type"]), c["nullable"]) for n, c in entry["columns"].items()},
        "primary_key": tuple(entry["primary_key"]["columns"]),
        "unique": tuple(sorted(uniques, key=lambda u: u[1])),
        "indexes": tuple(
            sorted(
                ((named(i["name"], table), tuple(i["columns"])) for i in entry["indexes"] if not i["unique"]),
                key=lambda i: i[1],
            )
        ),
    }


def sql_shape(layout: dict) -> tuple:
    """What detection compares: everything but names."""
    return (
        tuple(sorted(layout["columns"].items())),
        layout["primary_key"],
        tuple(sorted((u[1], u[2]) for u in layout["unique"])),
        tuple(sorted(i[1] for i in layout["indexes"])),
    )


def after_agno(backend: str, head: dict, changes: list[str]) -> dict | None:
    """The head layout as Agno's MigrationManager leaves it from an older release (§6.2)."""
    layout = {**head, "columns": dict(head["columns"]), "indexes": tuple(head["indexes"])}
    for change in changes:
        if m := re.fullmatch(r"~type (\w+): (.+) -> (.+) \(family\)", change):
            col = m.group(1)
            layout["columns"][col] = (family(backend, m.group(3)), layout["columns"][col][1])
        elif m := re.fullmatch(r"~index name \((.+)\): (\S+) -> (\S+)", change):
            cols, old, new = tuple(m.group(1).split(", ")), m.group(2), m.group(3)
            table = old.split("_", 1)[1].rsplit("_" + "_".join(cols), 1)[0]
            layout["indexes"] = tuple((named(new, table) if i[1] == cols else i[0], i[1]) for i in layout["indexes"])
        elif change.startswith("~default ") or change.startswith("not declared"):
            continue  # server defaults are not compared; culture stays at its own layout
        else:
            raise SystemExit(f"unknown change in after_agno_migration_manager: {change!r}")
    return layout


def mongo_layout(entry: dict) -> dict:
    indexes = [
        (i["name"], tuple((k, v) for k, v in i["key"]), i["unique"]) for i in entry["indexes"] if i["name"] != "_id_"
    ]
    return {
        "indexes": tuple(sorted(indexes)),
        "fields": {f: tuple(sorted(types)) for f, types in entry.get("fields", {}).items() if f != "_id"},
    }


def mongo_shape(layout: dict) -> tuple:
    return tuple(sorted((i[1], i[2]) for i in layout["indexes"]))


def build(data: dict) -> dict:
    out = {}
    for name, spec in data["table_types"].items():
        if name in SKIP:
            continue
        per_backend = {}
        for src in ("sqlite", "postgres", "mysql", "mongo"):
            entries = []  # [point, covers, origins, layout, variants]
            for release, backends in spec["releases"].items():
                entry = backends.get(src)
                if entry is None or (src != "mongo" and "columns" not in entry):
                    continue
                point = POINT_OF_RELEASE[release]
                layout = mongo_layout(entry) if src == "mongo" else sql_layout(src, entry)
                shape = mongo_shape if src == "mongo" else sql_shape
                if entries and shape(entries[-1]["layout"]) == shape(layout):
                    last = entries[-1]
                    if point not in last["covers"]:
                        last["covers"].append(point)
                    last["origins"].append(f"fresh {release}")
                    if src == "mongo":  # field types seen by any release of the same layout
                        for f, types in layout["fields"].items():
                            last["layout"]["fields"][f] = tuple(sorted({*last["layout"]["fields"].get(f, ()), *types}))
                    continue
                entries.append(
                    {
                        "point": point,
                        "covers": [point],
                        "origins": [f"fresh {release}"],
                        "layout": layout,
                        "variants": [],
                    }
                )
            if not entries:
                continue
            if src != "mongo" and "3.1.10" in spec["releases"] and spec["releases"]["3.1.10"].get(src):
                head = entries[-1]
                for release, backends in spec["releases"].items():
                    changes = (backends.get(src) or {}).get("after_agno_migration_manager")
                    if release == "3.1.10" or changes is None:
                        continue
                    if any(c.startswith("not declared") for c in changes):
                        continue
                    variant = after_agno(src, head["layout"], changes)
                    origin = f"Agno 3.1.10 MigrationManager from {release}"
                    if (
                        sql_shape(variant) == sql_shape(head["layout"])
                        and variant["indexes"] == head["layout"]["indexes"]
                    ):
                        head["origins"].append(origin)
                    else:
                        head["variants"].append((origin, variant))
            # points between two layouts that change nothing for this table: covered by the older one
            for i, e in enumerate(entries):
                nxt = entries[i + 1]["point"] if i + 1 < len(entries) else None
                start = POINTS.index(e["point"])
                stop = POINTS.index(nxt) if nxt else len(POINTS)
                e["covers"] = list(POINTS[start:stop])
            per_backend["mongodb" if src == "mongo" else BACKENDS[src]] = entries
        out[name] = {"default_name": spec["default_name"], "backends": per_backend}
    return out


def emit(built: dict) -> str:
    lines = [
        '"""GENERATED by docs/agno-tables/gen_tables_spec.py from docs/agno-tables/layouts.json: do not edit.',
        "",
        "LAYOUTS[table type][dialect name] = the layouts of that table, oldest first. Each: ``point`` (the",
        "Agno schema version that created it), ``covers`` (the points at which a table has it), ``origins``",
        "(releases whose fresh table, or Agno's MigrationManager result, it is), ``variants`` (other accepted",
        "layouts at that point, e.g. what Agno's MigrationManager leaves) and, for SQL: ``columns`` {name:",
        "(type family of the dialect, nullable)}, ``primary_key``, ``unique`` ((name, columns, partial), ...),",
        "``indexes`` ((name, columns), ...), names with ``{t}`` for the table; for MongoDB: ``indexes``",
        "((name, key, unique), ...) and ``fields`` {field: BSON types seen in documents Agno wrote}.",
        '"""',
        "",
        "# ruff: noqa: E501",
        "# fmt: off",
        "",
        "DEFAULT_NAMES = {",
    ]
    for name, spec in built.items():
        lines.append(f"    {name!r}: {spec['default_name']!r},")
    lines += ["}", "", "LAYOUTS = {"]
    for name, spec in built.items():
        lines.append(f"    {name!r}: {{")
        for backend, entries in spec["backends"].items():
            lines.append(f"        {backend!r}: (")
            for e in entries:
                head = f"'point': {e['point']!r}, 'covers': {tuple(e['covers'])!r}, 'origins': {tuple(e['origins'])!r},"
                lines.append("            {" + head)
                lines += _layout_lines(e["layout"], "             ")
                variants = ", ".join(f"({o!r}, {{{_inline(v)}}})" for o, v in e["variants"])
                lines.append(f"             'variants': ({variants}{',' if len(e['variants']) == 1 else ''})}},")
            lines.append("        ),")
        lines.append("    },")
    lines += ["}", ""]
    return "\n".join(lines)


def _layout_lines(layout: dict, pad: str) -> list[str]:
    return [f"{pad}{k!r}: {v!r}," for k, v in layout.items()]


def _inline(layout: dict) -> str:
    return ", ".join(f"{k!r}: {v!r}" for k, v in layout.items())


def generate() -> str:
    data = json.loads((HERE / "layouts.json").read_text())
    return emit(build(data))


def main(argv: list[str]) -> int:
    text = generate()
    if "--check" in argv:
        same = OUT.exists() and OUT.read_text() == text
        print("up to date" if same else f"{OUT} differs from what the generator writes")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
