"""What the copy and verify tests share: where a fixture point exists, how the real Agno reads a
database, and a digest of everything a database holds (to see a source left unchanged)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import shared_tools
from agno_side import env as agno_env
from conftest import FIXTURES, POINTS, expected_file, expected_sessions

from agno_migrate.target import Target

BACKENDS = ("sqlite", "postgresql", "mysql", "mongodb")


def has_fixture(backend: str, point: str) -> bool:
    if backend == "mongodb":
        return (FIXTURES / point / "mongo").is_dir()
    return point == "v1" or point in POINTS[backend]


def agno_reads(db, point: str, source_backend: str, tmp_path: Path) -> None:
    """The real Agno 3.1.10 reads every session and run of ``db`` (a conftest Database) as the expected
    file of the source's fixture says (tests/agno_side/agno_verify.py, as test_lineage does); where
    ../shared/tools sits beside this checkout, its verify_with_agno.sh agrees."""
    expected = expected_file(point, source_backend, tmp_path)
    if db.backend == "sqlite":
        where, schema = str(db.path), None
    else:
        where = db.url
        schema = {"postgresql": "ai", "mongodb": db.db_name}.get(db.backend) or Target.from_url(db.url).schema
    ignore = ("json_encoding",) if db.backend == "mysql" else ()
    result = agno_env.verify(where, expected, schema=schema, ignore=ignore)
    n = len(expected_sessions(point, source_backend))
    assert result.ok and result.summary == f"verified {n}/{n} sessions, 0 mismatches", result.output
    options = (["--db-schema", schema] if schema else []) + (["--skip", ",".join(ignore)] if ignore else [])
    shared_tools.cross_check(where, expected, *options)


def content_digest(db) -> str:
    """A digest of every table's (collection's) definition and rows in ``db`` (a conftest Database)."""
    h = hashlib.sha256()
    if db.backend == "sqlite":
        h.update(db.path.read_bytes())
    elif db.backend == "mongodb":
        from bson import json_util

        with db.mongo() as mdb:
            for name in sorted(mdb.list_collection_names()):
                h.update(name.encode())
                h.update(json.dumps(mdb[name].index_information(), sort_keys=True, default=str).encode())
                for doc in mdb[name].find().sort("_id", 1):
                    h.update(json_util.dumps(doc, sort_keys=True).encode())
    else:
        import sqlalchemy as sa

        engine = db.engine()
        try:
            with engine.connect() as conn:
                insp = sa.inspect(conn)
                schemas = ["ai"] if db.backend == "postgresql" else [None]
                for schema in schemas:
                    for name in sorted(insp.get_table_names(schema=schema)):
                        h.update(repr((name, insp.get_columns(name, schema=schema))).encode())
                        h.update(repr(sorted(i["name"] for i in insp.get_indexes(name, schema=schema))).encode())
                        table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
                        cols = [sa.cast(c, sa.Text) for c in table.columns]
                        for row in conn.execute(sa.select(*cols).order_by(*cols)):
                            h.update(repr(tuple(row)).encode())
        finally:
            engine.dispose()
    return h.hexdigest()
