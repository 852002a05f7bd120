"""Differences between two physical layouts of one table (reflect.py's form), as short human-readable lines.

python compare.py fixtures|upgraded FILE --fresh fresh.json   # each table of each point against the
                                                              # fresh layout of the release that wrote it
                                                              # (upgraded: against 3.1.10's)
python compare.py releases --fresh fresh.json                 # each release's fresh layout against 3.1.10's:
                                                              # the steps a migration to head needs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from agno_schema import DEFAULT_NAMES  # noqa: E402

TYPE_OF_NAME = {v: k for k, v in DEFAULT_NAMES.items()}
POINT_RELEASE = {"2.0": "2.0.11", "2.3": "2.3.26", "2.5": "2.5.17", "2.9": "2.9.0", "3.1": "3.1.10"}
HEAD = "3.1.10"


def _key(item: dict[str, Any]) -> tuple:
    return (tuple(item["columns"]), item.get("where"))


def diff(old: dict[str, Any], new: dict[str, Any], names: bool = True) -> list[str]:
    """What differs from `old` to `new` (lines read as the change old -> new)."""
    out = []
    oc, nc = old["columns"], new["columns"]
    for c in nc:
        if c not in oc:
            n = nc[c]
            out.append(
                f"+column {c} {n['type']}{'' if n['nullable'] else ' NOT NULL'}"
                f"{' DEFAULT ' + str(n['default']) if n['default'] is not None else ''}"
            )
    for c in oc:
        if c not in nc:
            out.append(f"-column {c} ({oc[c]['type']})")
    for c in nc:
        if c in oc:
            o, n = oc[c], nc[c]
            if o["type"] != n["type"]:
                out.append(
                    f"~type {c}: {o['type']} -> {n['type']}" + ("" if o["family"] == n["family"] else " (family)")
                )
            if o["nullable"] != n["nullable"]:
                out.append(f"~nullable {c}: {o['nullable']} -> {n['nullable']}")
            if (o["default"] or None) != (n["default"] or None):
                out.append(f"~default {c}: {o['default']} -> {n['default']}")
    op, np_ = old.get("primary_key"), new.get("primary_key")
    if (op or {}).get("columns") != (np_ or {}).get("columns"):
        out.append(f"~primary key: {(op or {}).get('columns')} -> {(np_ or {}).get('columns')}")
    elif names and op and np_ and op.get("name") != np_.get("name"):
        out.append(f"~primary key name: {op.get('name')} -> {np_.get('name')}")
    for kind in ("unique", "indexes"):
        ok = {_key(i): i for i in old[kind]}
        nk = {_key(i): i for i in new[kind]}
        label = "unique" if kind == "unique" else "index"
        for k, i in nk.items():
            if k not in ok:
                where = f" WHERE {i['where']}" if i.get("where") else ""
                out.append(f"+{label} {i['name']} ({', '.join(i['columns'])}){where}")
        for k, i in ok.items():
            if k not in nk:
                out.append(f"-{label} {i['name']} ({', '.join(i['columns'])})")
            elif names and i["name"] != nk[k]["name"]:
                out.append(f"~{label} name ({', '.join(i['columns'])}): {i['name']} -> {nk[k]['name']}")
            elif kind == "unique" and i.get("kind") != nk[k].get("kind"):
                out.append(f"~unique ({', '.join(i['columns'])}) {i.get('kind')} -> {nk[k].get('kind')}")
    ofk = {(tuple(f["columns"]), f["ref_table"]): f for f in old["foreign_keys"]}
    nfk = {(tuple(f["columns"]), f["ref_table"]): f for f in new["foreign_keys"]}
    for k, f in nfk.items():
        if k not in ofk:
            out.append(f"+fk ({', '.join(f['columns'])}) -> {f['ref_table']} ON DELETE {f['ondelete']}")
        elif ofk[k]["ondelete"] != f["ondelete"]:
            out.append(f"~fk ({', '.join(f['columns'])}) ON DELETE {ofk[k]['ondelete']} -> {f['ondelete']}")
    for k, f in ofk.items():
        if k not in nfk:
            out.append(f"-fk ({', '.join(f['columns'])}) -> {f['ref_table']}")
    return out


def compare_points(points: dict[str, Any], fresh: dict[str, Any], against_head: bool) -> dict[str, Any]:
    """{point: {backend: {table: [differences]}}} of a fixture/upgraded dump against the fresh layouts."""
    result: dict[str, Any] = {}
    for point, backends in points.items():
        if point not in POINT_RELEASE and point not in fresh:
            continue
        release = HEAD if against_head else POINT_RELEASE.get(point, point)
        for backend, tables in backends.items():
            if backend == "mongo":
                continue
            for table, layout in tables.items():
                table_type = TYPE_OF_NAME.get(table)
                reference = fresh[release][backend].get(table_type)
                if reference is None:
                    lines = [f"not declared by {release} on {backend}"]
                else:
                    lines = diff(reference, layout)
                result.setdefault(point, {}).setdefault(backend, {})[table] = lines
    return result


def compare_releases(fresh: dict[str, Any]) -> dict[str, Any]:
    """{table type: {backend: {release: [differences release -> head]}}}."""
    result: dict[str, Any] = {}
    for release, backends in fresh.items():
        for backend, tables in backends.items():
            for table_type, layout in tables.items():
                head = fresh[HEAD][backend].get(table_type)
                lines = ["(no longer declared at head)"] if head is None else diff(layout, head)
                result.setdefault(table_type, {}).setdefault(backend, {})[release] = lines
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["fixtures", "upgraded", "releases"])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--fresh", required=True)
    args = parser.parse_args()
    fresh = json.loads(Path(args.fresh).read_text())
    if args.what == "releases":
        for table_type, backends in compare_releases(fresh).items():
            for backend, releases in backends.items():
                for release, lines in releases.items():
                    if release != HEAD:
                        print(f"[{table_type}] {backend} {release}: {'; '.join(lines) or '= head'}")
        return
    points = json.loads(Path(args.file).read_text())
    for point, backends in compare_points(points, fresh, args.what == "upgraded").items():
        for backend, tables in backends.items():
            for table, lines in tables.items():
                print(f"{point} {backend} {table}: {'; '.join(lines) or 'as declared'}")


if __name__ == "__main__":
    main()
