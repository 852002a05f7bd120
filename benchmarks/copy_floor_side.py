"""The physical floor of ``copy`` SQLite -> PostgreSQL (bench_copy.py's side ``floor-pg``): the rows of a head
SQLite file moved into Agno's PostgreSQL layout (jsonb, schema ``ai``) by the raw drivers, with as little Python
as possible.

    python copy_floor_side.py SOURCE.db postgresql+psycopg://.../DB PLAN.json

The target already holds every table of the layout, empty, without its secondary indexes and foreign keys
(bench_copy.py prepares it, untimed, from a copy ``agno-migrate copy`` made once: ``CREATE DATABASE … TEMPLATE``,
``TRUNCATE``, the indexes and keys dropped and listed in PLAN.json). Timed here: every row of every table of
PLAN.json read by sqlite3 and written by one ``COPY`` per table (the stored JSON text as it is, a JSON string
holding JSON peeled once, as Agno's SQLite layers it), in one transaction (its large values compressed by lz4 where
agno-migrate's copy compresses them so), then the indexes and foreign keys built. What ``copy`` does on top (reading
through the upgrade's conversions, the rules for values PostgreSQL cannot hold, checkpoints, stamps, verification)
is not done: the floor says how fast the same data can reach Agno's layout on this machine, not a way to do it.
"""

import json
import sqlite3
import sys

import psycopg
from floor_side import fast_compression


def peeled(value):
    """A JSON string holding JSON (Agno's SQLite tables store some values so): the JSON it holds."""
    if isinstance(value, str) and value[:1] == '"':
        inner = json.loads(value)
        if isinstance(inner, str) and inner[:1] in "[{":
            return inner
    return value


def main(source: str, target: str, plan_file: str) -> None:
    plan = json.loads(open(plan_file).read())
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    with psycopg.connect(target.replace("+psycopg", "")) as conn, conn.cursor() as cur:
        fast_compression(cur.execute)  # the large values compressed as agno-migrate's copy does: the same work
        for table, columns, json_columns in plan["tables"]:
            peel = [i for i, c in enumerate(columns) if c in json_columns]
            names = ", ".join(f'"{c}"' for c in columns)
            rows = src.execute(f'SELECT {names} FROM "{table}"')
            with cur.copy(f'COPY {plan["schema"]}."{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    if peel:
                        row = list(row)
                        for i in peel:
                            row[i] = peeled(row[i])
                    copy.write_row(row)
        for statement in plan["after"]:
            cur.execute(statement)
    src.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
