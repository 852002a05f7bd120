"""``copy`` of an Agno 1.x source gives the memories table an upgrade in place gives, the memories
1.x kept in its session blobs included (``move.blob_memories``), against the real servers: the same
rows (ids, text, owner, times). With the table pack's ``v1`` point (``agent_sessions`` whose Memory v2
blobs hold the memories of ``user_memories``) every blob memory is one the table gives (none twice);
an unreadable memory-table row claims its id (its blob copy is not written in its place). With the
fixtures' ``v1`` point (session tables only) the memories come from the blobs alone."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from test_legacy_memories import head_memories, rows_of
from test_tables_detect import load

import agno_migrate
from agno_migrate.convert.memories import memories_in_session_blob
from agno_migrate.move.tables import plan
from agno_migrate.target import Target

PAIRS = [("sqlite", "postgresql"), ("postgresql", "mongodb"), ("mongodb", "sqlite")]


def _same_as_in_place(new_database, src: str, dst: str, spoil=None, pack: bool = True) -> dict:
    source, upgraded, target = new_database(src), new_database(src), new_database(dst)
    for db in (source, upgraded):
        load(db, "v1") if pack else db.load("v1")
        if spoil:
            spoil(db)
    agno_migrate.upgrade(upgraded.url)
    outcome = agno_migrate.copy(source.url, target.url, verify=True)
    assert outcome.verify.equal, outcome.as_dict()
    want = head_memories(upgraded)
    assert head_memories(target) == want
    return want


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_a_memory_table_without_blob_memories_gives_its_rows(new_database, src, dst):
    want = _same_as_in_place(new_database, src, dst)
    probe = new_database(src)
    load(probe, "v1")
    assert set(want) == set(rows_of(probe, "user_memories", "id"))
    sources = [s.table for p in plan(Target.from_url(probe.url), Target.from_url(probe.url)) for s in p.sources]
    assert sources == ["user_memories", "agent_sessions.memory"]


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_the_copy_holds_the_memories_only_blobs_held(new_database, src, dst):
    assert len(_same_as_in_place(new_database, src, dst, pack=False)) == 28


def test_memory_table_rows_win_over_blob_memories(new_database):
    """A 1.x memory table beside session blobs: a row with a blob memory's id (other text) is written,
    not the blob's; a row with a blob memory's owner and text (another id) keeps the blob's out; an
    unreadable row with a blob memory's id claims it (neither the upgrade nor the copy writes the
    blob's copy in its place)."""
    held: dict = {}

    def spoil(db):
        if not held:
            blobs = [
                (table, row)
                for table in ("agent_sessions", "team_sessions")
                if table in sa.inspect(db.engine()).get_table_names()
                for row in rows_of(db, table, "session_id").values()
            ]
            found = [
                m for _, s in blobs if s.get("memory") for m in memories_in_session_blob(s["memory"], s["user_id"])
            ]
            held.update(claimed=found[0], other=found[1], digest=found[2])
        engine = db.engine()
        try:
            with engine.begin() as conn:
                t = sa.Table(
                    "user_memories",
                    sa.MetaData(),
                    *(sa.Column(c, sa.Text) for c in ("id", "user_id", "memory")),
                    *(sa.Column(c, sa.DateTime) for c in ("created_at", "updated_at")),
                )
                t.create(conn)
                mine, when = (
                    held["digest"].row,
                    {"created_at": datetime(2025, 1, 2), "updated_at": datetime(2025, 1, 3)},
                )
                conn.execute(
                    t.insert(),
                    [
                        {
                            "id": held["claimed"].memory_id,
                            "user_id": "u",
                            "memory": "{'memory': __import__('os')}",
                            **when,
                        },
                        {
                            "id": held["other"].memory_id,
                            "user_id": "u",
                            "memory": "{'memory': 'the table text'}",
                            **when,
                        },
                        {
                            "id": "table-own-id",
                            "user_id": mine["user_id"],
                            "memory": repr({"memory": mine["memory"]}),
                            **when,
                        },
                    ],
                )
        finally:
            engine.dispose()

    want = _same_as_in_place(new_database, "sqlite", "mongodb", spoil, pack=False)
    assert held["claimed"].memory_id not in want and held["digest"].memory_id not in want
    assert want[held["other"].memory_id]["memory"] == "the table text" and "table-own-id" in want
    assert len(want) == 28 - 2 + 1
