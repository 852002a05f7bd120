"""A user's own columns and indexes on Agno's tables follow one rule on every table (session, runs
and every other Agno table; ``tables.detect.extra_column`` / ``extra_index``): what Agno does not
need — a nullable column, a column with a default, a plain index — is an addition: reported
("additions: ... — kept"), not drift, so ``check`` passes at head, and every upgrade keeps it with its
data. What Agno's writes could fail on stays drift (exit 4), saying why: a NOT NULL column without a
default (Agno's inserts do not set it), a unique index of the user's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_tables_detect import load as load_tables

import agno_migrate
from agno_migrate.errors import SchemaDrift

from .mongo_support import opened
from .support import cli, engine, execute, full_state, note_case, one_line, qualified, schema_of, succeeded

NOT_NULL = "Agno's inserts, which do not set it, would fail"


def add_user_parts(db, table: str, tag: str) -> None:
    """A nullable column ``{tag}_note`` filled on every row with its index, and a NOT NULL column with
    a default ``{tag}_tenant``, on ``table``."""
    t = qualified(db, table)
    execute(
        db.url,
        f"ALTER TABLE {t} ADD COLUMN {tag}_note VARCHAR(64)",
        f"UPDATE {t} SET {tag}_note = 'kept'",
        f"CREATE INDEX {tag}_note_idx ON {t} ({tag}_note)",
        f"ALTER TABLE {t} ADD COLUMN {tag}_tenant INTEGER NOT NULL DEFAULT 7",
    )


def user_parts(db, table: str, tag: str) -> tuple[int, int, bool]:
    """(rows whose note is still 'kept', rows in all, whether the note's index is there)."""
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            t = qualified(db, table)
            kept = conn.exec_driver_sql(f"SELECT count(*) FROM {t} WHERE {tag}_note = 'kept' AND {tag}_tenant = 7")
            total = conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
            names = {i["name"] for i in sa.inspect(conn).get_indexes(table, schema=schema_of(db))}
            return kept.scalar(), total, f"{tag}_note_idx" in names
    finally:
        eng.dispose()


def upgraded(db, cwd):
    """``db`` holding the fixture pack's Agno 2.5.0 database, upgraded to head."""
    db.load("2.5.0")
    succeeded(cli("upgrade", url=db.url, cwd=cwd))
    return db


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_additions_at_head_are_reported_and_pass_check(rdb, backend, tmp_path):
    note_case("a user's column and index on the session and runs tables at head")
    db = upgraded(rdb(backend), tmp_path)
    add_user_parts(db, "agno_sessions", "s")
    add_user_parts(db, "agno_runs", "r")
    before = full_state(db)

    out = succeeded(cli("check", url=db.url, cwd=tmp_path)).out
    line = next(line for line in out.splitlines() if line.startswith("additions: "))
    for part in (
        "agno_sessions: column s_note added",
        "agno_sessions: index s_note_idx (s_note) added",
        "agno_runs: column r_tenant added",
        "NOT NULL with a default",
        "agno_runs: index r_note_idx",
    ):
        assert part in line, line  # fmt: skip
    assert line.endswith("— kept"), line
    assert "additions: " in succeeded(cli("current", url=db.url, cwd=tmp_path)).out
    status = agno_migrate.check(db.url)
    assert status.drift == [] and len(status.additions) == 6, status.additions
    assert "nothing to do" in succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
    assert full_state(db) == before  # kept as they are
    succeeded(cli("stamp", "3.0.1", url=db.url, cwd=tmp_path))
    succeeded(cli("check", url=db.url, cwd=tmp_path))


@pytest.mark.parametrize("point", ["2.0.0", "2.5.0"])
@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_an_upgrade_from_an_older_point_keeps_the_users_columns_their_data_and_indexes(rdb, backend, point, tmp_path):
    if point == "2.0.0" and backend == "mysql":  # no MariaDB database of Agno 2.0 (Agno 2.0.11 could not write
        point = "2.6.0"  # one): MariaDB's other older point instead, never a skip
    note_case(f"a user's column and index kept by the upgrade from {point}")
    db = rdb(backend)
    db.load(point)
    add_user_parts(db, "agno_sessions", "s")
    rows = user_parts(db, "agno_sessions", "s")
    assert rows[0] == rows[1] > 0 and rows[2]
    out = succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
    assert "additions: " in out and "agno_sessions: column s_note added" in out, out
    assert user_parts(db, "agno_sessions", "s") == rows
    succeeded(cli("check", url=db.url, cwd=tmp_path))
    add_user_parts(db, "agno_runs", "r")  # and on the runs table the upgrade made
    assert agno_migrate.check(db.url).drift == []


@pytest.mark.backends("postgresql", "mysql")
def test_a_not_null_column_without_default_stays_drift_and_says_why(rdb, backend, tmp_path):
    """Agno's inserts never name a user's column: one NOT NULL without a default would make every
    insert of a session fail. check exits 4 saying so; an unmanaged database is refused unchanged.
    (SQLite cannot add such a column to a table that has rows.)"""
    note_case("a user's NOT NULL column without a default on the session table")
    for managed in (True, False):
        db = rdb(backend)
        db.load("2.5.0")
        if managed:
            succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
        t = qualified(db, "agno_sessions")
        execute(db.url, f"ALTER TABLE {t} ADD COLUMN tenant INTEGER", f"UPDATE {t} SET tenant = 1",
                f"ALTER TABLE {t} {'ALTER COLUMN tenant SET NOT NULL' if backend == 'postgresql' else 'MODIFY tenant INTEGER NOT NULL'}")  # fmt: skip
        before = full_state(db)
        line = one_line(cli("check" if managed else "upgrade", url=db.url, cwd=tmp_path), 4)
        assert "column tenant is NOT NULL without a default" in line and NOT_NULL in line, line
        with pytest.raises(SchemaDrift, match=NOT_NULL):
            agno_migrate.check(db.url) if managed else agno_migrate.upgrade(db.url)
        assert full_state(db) == before


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_a_unique_index_of_the_users_stays_drift(rdb, backend, tmp_path):
    note_case("a user's unique index on the runs table")
    db = upgraded(rdb(backend), tmp_path)
    execute(db.url, f"CREATE UNIQUE INDEX my_uq ON {qualified(db, 'agno_runs')} (session_id, run_id)")
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert "unique key my_uq (session_id, run_id) is not in Agno's layout: Agno's writes could fail" in line, line


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_other_agno_tables_keep_the_users_additions_through_their_upgrade(rdb, backend, tmp_path):
    """The same rule on the other Agno tables: a table behind head (from the table pack's Agno 2.3)
    with a user's column and index is brought to head with both, and check passes reporting them."""
    note_case("a user's column and index on another Agno table, through its upgrade")
    db = rdb(backend)
    load_tables(db, "2.3")
    current = agno_migrate.current(db.url)
    behind = [t for t in current.tables if t.behind]
    assert behind, [(t.name, t.version, t.head) for t in current.tables]
    table = behind[0].name
    add_user_parts(db, table, "u")
    rows = user_parts(db, table, "u")
    out = succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
    assert f"{table} ({behind[0].family}) was brought from" in out, out
    assert user_parts(db, table, "u") == rows
    out = succeeded(cli("check", url=db.url, cwd=tmp_path)).out
    assert f"{table}: column u_note added" in out and f"{table}: index u_note_idx (u_note) added" in out, out


@pytest.mark.backends("mongodb")
def test_mongodb_a_users_index_is_an_addition_a_unique_one_drift(rdb, backend, tmp_path):
    note_case("a user's indexes on the MongoDB session and memories collections")
    db = rdb(backend)
    load_tables(db, "3.1")
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    with opened(db.url) as (mdb, target):
        mdb[target.session_table].create_index("my_field", name="my_field_1")
        mdb["agno_memories"].create_index("my_topic", name="my_topic_1")
    out = succeeded(cli("check", url=db.url, cwd=tmp_path)).out
    assert "agno_sessions: index my_field_1 (my_field) added" in out and "agno_memories: index my_topic_1" in out, out
    assert "nothing to do" in succeeded(cli("upgrade", url=db.url, cwd=tmp_path)).out
    with opened(db.url) as (mdb, target):
        assert "my_field_1" in mdb[target.session_table].index_information()
        mdb[target.session_table].create_index([("session_id", 1), ("my_field", 1)], name="mine_uq", unique=True)
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert "unique key mine_uq (session_id, my_field) is not in Agno's layout" in line, line
