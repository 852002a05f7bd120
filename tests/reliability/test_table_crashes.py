"""Crashes inside the steps of the other Agno tables (memories, evals, knowledge, metrics, schedules,
...): the upgrading process is SIGKILLed right after a statement that changes one of those tables,
then ``upgrade`` is run again. The end state equals an uninterrupted run: every other table at head
with the same rows and Agno's stamps, ``check`` passes.

Where DDL commits statement by statement (MariaDB; MongoDB's index builds), the kill leaves a table part-way between its
old layout and head; detection calls it interrupted (not drift) and the idempotent steps finish it.
Kill points: the first, the middle and the last statement that changes another Agno table in an
uninterrupted run (every such statement with --stress).
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from .conftest import stressed
from .support import cli, succeeded, victim

POINT = {
    "sqlite": "2.5",
    "postgresql": "2.5",
    "mysql": "2.3",
    "mongodb": "2.9",
}  # MariaDB has no 2.5 schedules: 2.3's tables
SESSION_TABLES = {"agno_sessions", "agno_runs", "agno_migrate_version", "agno_schema_versions"}
CHANGES = ("ALTER", "CREATE", "DROP", "UPDATE", "INSERT", "DELETE", "CREATEINDEXES", "DROPINDEXES")


def _load(db, point: str) -> None:
    from pathlib import Path

    db.load(point, root=Path(__file__).parents[1] / "fixtures-tables")


def _other_table_statements(seen: list[str], names: set[str]) -> list[int]:
    """1-based positions in ``seen`` of the statements that change one of ``names``."""
    out = []
    for position, text in enumerate(seen, 1):
        words = text.replace('"', " ").replace("`", " ").replace(".", " ").replace("(", " ").split()
        if words and words[0].upper() in CHANGES and names & set(words):
            out.append(position)
    return out


def _state(db) -> dict:
    """Every other Agno table's detection, rows and Agno stamp."""
    status = json.loads(succeeded(cli("--json", "current", url=db.url)).out)
    tables = {t["name"]: (t["version"], t["at_head"], t["drift"]) for t in status["agno_tables"]}
    if db.backend == "mongodb":
        from bson import json_util

        with db.mongo() as mdb:
            rows = {n: sorted(json_util.dumps(d, sort_keys=True) for d in mdb[n].find({}, {"_id": 0})) for n in tables}
            stamps = {d["table_name"]: d["version"] for d in mdb["agno_schema_versions"].find()}
        return {"tables": tables, "rows": rows, "stamps": stamps}
    schema = "ai" if db.backend == "postgresql" else None
    rows = {}
    with db.engine().connect() as conn:
        for name in tables:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
            rows[name] = sorted(repr(sorted(r._mapping.items())) for r in conn.execute(sa.select(table)))
        versions = sa.Table("agno_schema_versions", sa.MetaData(), autoload_with=conn, schema=schema)
        stamps = dict(conn.execute(sa.select(versions.c.table_name, versions.c.version)).all())
    return {"tables": tables, "rows": rows, "stamps": stamps}


def test_killed_in_another_tables_step_finishes_on_rerun(new_database, backend, tmp_path, request):
    point = POINT[backend]
    reference = new_database(backend)
    _load(reference, point)
    log = tmp_path / "seen.json"
    assert victim("cli", reference.url, log_path=str(log)).returncode == 0
    want = _state(reference)
    assert all(at_head for _, at_head, _ in want["tables"].values())
    positions = _other_table_statements(json.loads(log.read_text()), set(want["tables"]) - SESSION_TABLES)
    assert len(positions) >= 3, positions
    if not stressed(request.config):
        positions = [positions[0], positions[len(positions) // 2], positions[-1]]
    for kill_at in positions:
        db = new_database(backend)
        _load(db, point)
        killed = victim("cli", db.url, "any", kill_at, "after")
        assert killed.returncode == -9, (kill_at, killed.stdout, killed.stderr)
        succeeded(cli("upgrade", url=db.url))
        got = _state(db)
        assert got["tables"] == want["tables"], kill_at
        assert got["rows"] == want["rows"], kill_at
        assert {k: v for k, v in got["stamps"].items()} == want["stamps"], kill_at
        succeeded(cli("check", url=db.url))
