"""Bad input: each case ends in one clear line on stderr (no traceback), the exit code the README
documents, and nothing changed in the database (its full content compared before and after) —
or, where the tool is meant to take the input (NUL bytes, a 10 MB session, an empty Agno 1.x table,
latin1 bytes on MariaDB), the documented outcome with the source data intact.

Every PostgreSQL and MariaDB URL here carries the suite's password (test_secrets greps for it).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest
import sqlalchemy as sa
from conftest import expected_sessions

from .support import (
    HEAD,
    SECRET_QUOTED,
    cli,
    engine,
    execute,
    full_state,
    holding,
    insert_sessions,
    legacy_state,
    load_point,
    note_case,
    one_line,
    qualified,
    run,
    session,
    stored_run_data,
    succeeded,
    tables_of,
    version_rows,
)

pytestmark = pytest.mark.backends("sqlite", "postgresql", "mysql")  # MongoDB: test_bad_input_mongo.py

NASTY_NAMES = ("x; DROP TABLE y", 'a"b', "a' b`", "agno_sessions)); DELETE FROM agno_sessions; --")


def at_head(db) -> None:
    succeeded(cli("upgrade", url=db.url))


def unmanaged(db, point: str = "2.5.0") -> None:
    """An Agno-written database not managed by agno-migrate yet (the fixture pack's ``point``)."""
    db.load(point)


# --- URLs, names, options: usage errors (exit 2) ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["not a url", "postgresql:///x", f"postgresql://postgres:{SECRET_QUOTED}@127.0.0.1:notaport/x",
     f"mysql://root:{SECRET_QUOTED}@127.0.0.1:3306", f"postgresql:/postgres:{SECRET_QUOTED}@127.0.0.1/x",
     "sqlite:/relative.db", ""],
    ids=["words", "no-host", "bad-port", "mysql-no-database", "one-slash", "sqlite-one-slash", "empty"],
)  # fmt: skip
def test_malformed_url(url, tmp_path):
    note_case("malformed URL")
    one_line(cli("upgrade", url=url, cwd=tmp_path), 2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", [f"oracle://scott:{SECRET_QUOTED}@127.0.0.1/orcl", "foo://x", "mongo://127.0.0.1/x"])
def test_unknown_scheme(url, tmp_path):
    note_case("unknown scheme")
    line = one_line(cli("check", url=url, cwd=tmp_path), 2)
    assert "unknown database URL scheme" in line
    assert list(tmp_path.iterdir()) == []


def test_names_with_quotes_spaces_semicolons_or_sql(rdb, backend, tmp_path):
    note_case("table name with quotes, spaces, semicolons or SQL")
    db = rdb(backend)
    unmanaged(db)
    before = full_state(db)
    for name in NASTY_NAMES:
        for args in (("--session-table", name, "upgrade"), ("--runs-table", name, "check"),
                     ("upgrade", "--legacy-table", name)):  # fmt: skip
            line = one_line(cli(*args, url=db.url, cwd=tmp_path), 2)
            assert "invalid" in line and "name" in line, line
    assert full_state(db) == before


def test_schema_names_with_quotes_spaces_semicolons_or_sql(rdb, backend, tmp_path):
    note_case("schema name with quotes, spaces, semicolons or SQL")
    db = rdb(backend)
    unmanaged(db)
    before = full_state(db)
    for name in NASTY_NAMES + ("ai; DROP SCHEMA public CASCADE",):
        line = one_line(cli("--db-schema", name, "upgrade", url=db.url, cwd=tmp_path), 2)
        assert ("invalid schema name" if backend != "sqlite" else "does not apply to SQLite") in line, line
    assert full_state(db) == before


def test_unknown_versions(rdb, backend, tmp_path):
    note_case("stamp of an unknown version")
    db = rdb(backend)
    at_head(db)
    before = full_state(db)
    for args in (("stamp", "9.9.9"), ("stamp", "2.0.0'; DROP TABLE agno_sessions; --"), ("upgrade", "--to", "9.9.9"),
                 ("downgrade", "--to", "1.0.0"), ("plan", "--to", "latest")):  # fmt: skip
        line = one_line(cli(*args, url=db.url), 2)
        assert "unknown schema version" in line, line
    assert full_state(db) == before


def test_lock_timeout_that_is_not_a_number(tmp_path):
    note_case("--lock-timeout not a number")
    line = one_line(cli("--lock-timeout", "soon", "upgrade", url=f"sqlite:///{tmp_path / 'x.db'}"), 2)
    assert "--lock-timeout" in line
    assert list(tmp_path.iterdir()) == []


# --- reaching the database (exit 5) ----------------------------------------------------------------


def test_unreachable_host(backend, tmp_path):
    note_case("unreachable host")
    url = {
        "postgresql": f"postgresql://postgres:{SECRET_QUOTED}@127.0.0.1:1/agno",
        "mysql": f"mysql://agno:{SECRET_QUOTED}@127.0.0.1:1/agno",
        "sqlite": f"sqlite:///{tmp_path}/no/such/directory/agno.db",  # SQLite's unreachable: no directory
    }[backend]
    for command in ("upgrade", "stamp 2.0.0") if backend == "sqlite" else ("upgrade", "check"):
        line = one_line(cli(*command.split(), url=url, cwd=tmp_path), 5)
        assert "cannot connect" in line
    assert not (tmp_path / "no").exists()  # (reading a missing SQLite file: test_missing_database)


@pytest.mark.backends("postgresql", "mysql")
def test_wrong_password(backend, private_pg, mysql_secret_user, mysql_host, tmp_path):
    """PostgreSQL: the suite's own server (the machine's trusts every local connection); MariaDB:
    the suite's user, which needs its password."""
    note_case("wrong password")
    wrong = "Wr0ng-pw-given"
    if backend == "postgresql":
        url = private_pg.url("postgres", password=wrong)
    else:
        host, port = mysql_host
        url = f"mysql://{mysql_secret_user}:{wrong}@{host}:{port}/test"  # (mysql is a system database: refused)
    for command in ("upgrade", "current"):
        result = cli(command, url=url, cwd=tmp_path)
        line = one_line(result, 5)
        assert "cannot connect" in line and ("password" in line or "Access denied" in line), line
        assert wrong not in result.out + result.err
    right = private_pg.url("postgres") if backend == "postgresql" else url.replace(wrong, SECRET_QUOTED)
    succeeded(cli("current", url=right, cwd=tmp_path))  # the password was the only thing wrong


def test_missing_database(rdb, backend, tmp_path):
    note_case("missing database")
    if backend == "sqlite":  # reading a missing file must not create it
        path = tmp_path / "missing.db"
        for command in ("check", "current", "plan"):
            result = cli(command, url=f"sqlite:///{path}", cwd=tmp_path)
            assert result.code in (0, 1) and "Traceback" not in result.err
        assert not path.exists()
        return
    url = rdb(backend).url.rsplit("/", 1)[0] + "/amt_no_such_database"
    for command in ("upgrade", "check"):
        line = one_line(cli(command, url=url, cwd=tmp_path), 5)
        assert "amt_no_such_database" in line


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("how", ["chattr", "uri"])
def test_read_only_sqlite_file(rdb, backend, how, tmp_path):
    """Root ignores file modes, so the file is made immutable (chattr +i, which root obeys), or
    opened read-only by SQLite itself (a ``file:...?mode=ro`` URL). Exit 10 for the immutable file
    (the database rejected the write), exit 8 for the read-only URL (refused before anything is
    written: the URL says read-only), with "read-only" said; reading still works."""
    note_case("read-only SQLite file")
    db = rdb(backend)
    unmanaged(db)
    before = full_state(db)
    url = db.url
    if how == "chattr":
        made = subprocess.run(["chattr", "+i", str(db.path)], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"this filesystem does not take chattr +i ({made.stderr.strip()}); the uri case covers it")
    else:
        url = f"sqlite:///file:{db.path}?mode=ro&uri=true"
    try:
        for command in ("upgrade", "stamp 2.5.0"):
            line = one_line(cli(*command.split(), url=url, cwd=tmp_path), 10 if how == "chattr" else 8)
            assert "read-only" in line, line
        assert "2.5.0" in one_line(cli("check", url=url, cwd=tmp_path), 1)
    finally:
        if how == "chattr":
            subprocess.run(["chattr", "-i", str(db.path)], check=True)
    assert full_state(db) == before


@pytest.mark.backends("sqlite")
def test_a_file_that_is_not_a_database(backend, tmp_path):
    note_case("SQLite URL naming a file that is not a database")
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 10)
    for command in ("upgrade", "check"):
        line = one_line(cli(command, url=f"sqlite:///{path}", cwd=tmp_path), 10)
        assert "not a database" in line
    assert path.read_bytes() == b"these are my notes, not a database\n" * 10
    one_line(cli("upgrade", url=f"sqlite:///{tmp_path}", cwd=tmp_path), 5)  # a directory


# --- versions the tool does not take (exit 3, 8) ---------------------------------------------------


def test_database_ahead_of_this_tool(rdb, backend, tmp_path):
    note_case("database ahead of this tool (our version table)")
    db = rdb(backend)
    at_head(db)
    execute(db.url, f"INSERT INTO {qualified(db, 'agno_migrate_agno_sessions')} "
                    "(version, revision, action, applied_at, tool_version) VALUES ('9.0.0', 'v9_0_0', 'upgrade', 0, '9.9.9')")  # fmt: skip
    before = full_state(db)
    for args in (
        ("upgrade",),
        ("check",),
        ("current",),
        ("plan",),
        ("downgrade", "--to", "2.0.0"),
        ("--json", "upgrade"),
    ):
        result = cli(*args, url=db.url, cwd=tmp_path)
        if "--json" in args:
            assert result.code == 3 and result.err == "" and json.loads(result.out)["exit_code"] == 3
        else:
            assert "9.0.0" in one_line(result, 3)
    assert full_state(db) == before


def test_agno_stamp_ahead_of_this_tool(rdb, backend, tmp_path):
    note_case("Agno's stamp newer than this tool")
    db = rdb(backend)
    unmanaged(db)
    execute(
        db.url,
        f"UPDATE {qualified(db, 'agno_schema_versions')} SET version = '9.9.0' WHERE table_name = 'agno_sessions'",
    )
    before = full_state(db)
    for command in ("upgrade", "check", "plan"):
        assert "9.9.0" in one_line(cli(command, url=db.url, cwd=tmp_path), 3)
    assert full_state(db) == before


def test_downgrade_to_an_irreversible_version(rdb, backend, tmp_path):
    note_case("downgrade over an irreversible version")
    db = rdb(backend)
    at_head(db)
    before = full_state(db)
    line = one_line(cli("downgrade", "--to", "2.5.0", url=db.url, cwd=tmp_path), 8)
    assert "irreversible" in line and "nothing was changed" in line
    assert "downgrade" in one_line(cli("upgrade", "--to", "2.0.0", url=db.url, cwd=tmp_path), 8)  # below: refused
    assert full_state(db) == before


# --- drift (exit 4) --------------------------------------------------------------------------------

DRIFT_AT_HEAD = {  # on the runs table of a head database: (statement per backend, what check names)
    "column dropped": ({"postgresql": "ALTER TABLE ai.agno_runs DROP COLUMN parent_run_id",
                        "mysql": "ALTER TABLE agno_runs DROP COLUMN parent_run_id",
                        "sqlite": "ALTER TABLE agno_runs DROP COLUMN parent_run_id"}, "agno_runs.parent_run_id is missing"),
    "type changed": ({"postgresql": "ALTER TABLE ai.agno_runs ALTER COLUMN created_at TYPE text",
                      "mysql": "ALTER TABLE agno_runs MODIFY created_at VARCHAR(32) NOT NULL",
                      "sqlite": "agno_runs:created_at BIGINT NOT NULL:created_at TEXT NOT NULL"}, "agno_runs.created_at is varchar"),
    "index missing": ({"postgresql": "DROP INDEX ai.idx_agno_runs_user_id",
                       "mysql": "DROP INDEX idx_agno_runs_user_id ON agno_runs",
                       "sqlite": "DROP INDEX idx_agno_runs_user_id"}, "index idx_agno_runs_user_id on agno_runs is missing"),
}  # fmt: skip
DRIFT_UNMANAGED = {  # on the session table of an Agno 2.5.0 database
    "column dropped": {
        "postgresql": "ALTER TABLE ai.agno_sessions DROP COLUMN summary",
        "mysql": "ALTER TABLE agno_sessions DROP COLUMN summary",
        "sqlite": "ALTER TABLE agno_sessions DROP COLUMN summary",
    },
    "type changed": {
        "postgresql": "ALTER TABLE ai.agno_sessions ALTER COLUMN created_at TYPE text",
        "mysql": "ALTER TABLE agno_sessions MODIFY created_at VARCHAR(32) NOT NULL",
        "sqlite": "agno_sessions:created_at BIGINT NOT NULL:created_at TEXT NOT NULL",
    },
}  # fmt: skip  (an index missing is repaired, not refused: test_damage.py)


DRIFT_SAID = {"column dropped": "agno_sessions.summary is missing", "type changed": "agno_sessions.created_at is"}


def drift(db, statement: str) -> None:
    if db.backend == "sqlite" and ":" in statement:  # SQLite cannot change a column's type: edit the schema
        table, old, new = statement.split(":")
        conn = sqlite3.connect(db.path, isolation_level=None)
        try:
            conn.execute("PRAGMA writable_schema = ON")
            changed = conn.execute("UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ?",
                                   (old, new, table)).rowcount  # fmt: skip
            assert changed == 1
            conn.execute("PRAGMA writable_schema = OFF")
        finally:
            conn.close()
        return
    execute(db.url, statement)


@pytest.mark.parametrize("kind", list(DRIFT_AT_HEAD))
def test_drifted_schema_at_head_fails_check(rdb, backend, kind, tmp_path):
    note_case(f"drifted schema: {kind}")
    db = rdb(backend)
    at_head(db)
    statements, said = DRIFT_AT_HEAD[kind]
    drift(db, statements[backend])
    before = full_state(db)
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert said in line, line
    assert full_state(db) == before


@pytest.mark.parametrize("kind", list(DRIFT_UNMANAGED))
def test_drifted_unmanaged_schema_refuses_upgrade(rdb, backend, kind, tmp_path):
    """An Agno database whose session table was altered by hand matches no schema version: upgrade
    refuses to adopt it (exit 4, naming what differs), changing nothing."""
    note_case(f"drifted unmanaged schema: {kind}")
    db = rdb(backend)
    unmanaged(db)
    drift(db, DRIFT_UNMANAGED[kind][backend])
    before = full_state(db)
    line = one_line(cli("upgrade", url=db.url, cwd=tmp_path), 4)
    assert "does not match Agno 2.5.0" in line and "nothing changed" in line, line
    assert DRIFT_SAID[kind] in line, line
    assert full_state(db) == before


def test_agno_stamp_contradicting_the_physical_schema(rdb, backend, tmp_path):
    """Agno's stamp says 3.0.0 on a 2.5.0 schema (no runs table): check names the drift (exit 4)
    and changes nothing; upgrade says it and lets the physical schema win (README)."""
    note_case("Agno stamp contradicting the physical schema")
    db = rdb(backend)
    unmanaged(db)
    execute(
        db.url,
        f"UPDATE {qualified(db, 'agno_schema_versions')} SET version = '3.0.0' WHERE table_name = 'agno_sessions'",
    )
    before = full_state(db)
    line = one_line(cli("check", url=db.url, cwd=tmp_path), 4)
    assert "3.0.0" in line and "physical schema" in line, line
    assert full_state(db) == before
    done = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    assert any(out.startswith("drift:") and "3.0.0" in out for out in done.out.splitlines()), done.out
    assert version_rows(db.url)[0][2] == "detect" and version_rows(db.url)[0][0] != "3.0.0"
    succeeded(cli("check", url=db.url, cwd=tmp_path))


# --- data the tool meets ---------------------------------------------------------------------------

CORRUPT_RUNS = {"sqlite": '[{"run_id": "corrupt-r1", "content": ', "postgresql": '"a string, not a list of runs"',
                "mysql": '{"run_id": "corrupt-r1"}'}  # fmt: skip


def _runs_blob(db, session_id: str):
    eng = engine(db.url)
    try:
        with eng.connect() as conn:
            return conn.exec_driver_sql(
                f"SELECT runs FROM {qualified(db, 'agno_sessions')} WHERE session_id = '{session_id}'"
            ).scalar()
    finally:
        eng.dispose()


def test_corrupt_json_in_a_session_row(rdb, backend, tmp_path):
    """A runs blob that is not JSON (SQLite; PostgreSQL and MariaDB validate JSON, so there: JSON
    that is not a list of runs): exit 9 naming it, the blob left as it was, every other run copied."""
    note_case("corrupt JSON in a session row")
    db = rdb(backend)
    unmanaged(db)
    cast = "::jsonb" if backend == "postgresql" else ""
    execute(db.url, f"INSERT INTO {qualified(db, 'agno_sessions')} (session_id, session_type, runs, created_at) "
                    f"VALUES ('corrupt-1', 'agent', '{CORRUPT_RUNS[backend]}'{cast}, 1700000000)")  # fmt: skip
    blob = _runs_blob(db, "corrupt-1")
    result = cli("upgrade", url=db.url, cwd=tmp_path)
    line = one_line(result, 9)
    assert "1 session(s) had runs that could not be converted" in line, line
    assert "session corrupt-1:" in result.out
    assert _runs_blob(db, "corrupt-1") == blob
    runs = stored_run_data(db.url)
    assert len(runs) == sum(len(s["runs"]) for s in expected_sessions("2.5.0", backend))
    assert "corrupt-r1" not in runs


def test_nul_bytes(rdb, backend, tmp_path):
    """NUL characters in a session's runs. SQLite and MariaDB keep them. PostgreSQL's JSONB cannot hold
    them: an Agno 2.0 database (JSON columns) holding some takes the 2.3.0 step with them removed and
    counted, every other character kept (an escaped backslash before "u0000" is not a NUL)."""
    note_case("NUL bytes")
    db = rdb(backend)
    unmanaged(db, "2.0.0" if backend == "postgresql" else "2.5.0")
    runs = [
        run("nul-r1", content="before\x00after"),
        run("nul-r2", content="\x00"),
        run("nul-r3", content="\\u0000 stays"),
    ]
    insert_sessions(db.url, [{**session("nul-1", runs), "session_id": "nul-1"}])
    done = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    stored = stored_run_data(db.url)
    assert stored["nul-r3"]["content"] == "\\u0000 stays"
    if backend == "postgresql":
        assert "removed 2 NUL character(s) from 1 session(s)" in done.out, done.out
        assert stored["nul-r1"]["content"] == "beforeafter" and stored["nul-r2"]["content"] == ""
    else:
        assert "NUL" not in done.out, done.out
        assert stored["nul-r1"]["content"] == "before\x00after" and stored["nul-r2"]["content"] == "\x00"
    succeeded(cli("check", url=db.url, cwd=tmp_path))


def test_a_ten_megabyte_session(rdb, backend, tmp_path):
    note_case("a 10 MB session")
    db = rdb(backend)
    unmanaged(db)
    piece = "".join(chr(0x20 + (i * 7) % 90) for i in range(997)) + "€ü😀"
    runs = [run(f"big-r{k}", content=piece * 1000, messages=[{"role": "user", "content": f"{k}"}]) for k in range(10)]
    assert len(json.dumps(runs)) > 10_000_000
    insert_sessions(db.url, [session("big-1", runs)])
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    stored = stored_run_data(db.url)
    for k in range(10):
        got = stored[f"big-r{k}"]
        assert got["content"] == runs[k]["content"] and got["messages"] == runs[k]["messages"], k
    succeeded(cli("check", url=db.url, cwd=tmp_path))


@pytest.mark.backends("sqlite")
def test_non_utf8_bytes_in_a_text_column_sqlite(rdb, backend, tmp_path):
    """SQLite stores any bytes in a TEXT column; a session row holding bytes that are not UTF-8 stops
    the 3.0.0 step: one line (exit 10), and the step's transaction leaves nothing changed."""
    note_case("non-UTF-8 bytes in a TEXT column")
    db = rdb(backend)
    unmanaged(db)
    conn = sqlite3.connect(db.path)
    conn.execute("UPDATE agno_sessions SET user_id = CAST(X'75ff31' AS TEXT) WHERE session_id = "
                 "(SELECT min(session_id) FROM agno_sessions WHERE runs IS NOT NULL)")  # fmt: skip
    conn.commit()
    conn.close()
    before = full_state(db)
    line = one_line(cli("upgrade", url=db.url, cwd=tmp_path), 10)
    assert "UTF-8" in line, line
    assert full_state(db) == before


def _raw_rows(path, table: str) -> list[tuple]:
    """Every row of a SQLite table, as the bytes stored (text that is not UTF-8 included)."""
    conn = sqlite3.connect(path)
    conn.text_factory = bytes
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    finally:
        conn.close()


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("column", ["user_id", "session_id"])
def test_non_utf8_bytes_in_an_agno_1x_row_sqlite(rdb, backend, column, tmp_path):
    """SQLite keeps any bytes as TEXT: an Agno 1.x row holding bytes that are not UTF-8 (in any
    column, its session id included) is listed in the report (exit 9); every other row is imported
    and the legacy table is left as it was."""
    note_case(f"non-UTF-8 bytes in an Agno 1.x row ({column})")
    db = rdb(backend)
    db.load("v1")
    conn = sqlite3.connect(db.path)
    ids = [r[0] for r in conn.execute("SELECT session_id FROM agent_sessions ORDER BY session_id")]
    victim = ids[len(ids) // 2]  # mid-table: the rows after it must still be read
    conn.execute(f"UPDATE agent_sessions SET {column} = CAST(CAST({column} AS BLOB) || X'ff' AS TEXT) "
                 "WHERE session_id = ?", (victim,))  # fmt: skip
    conn.commit()
    conn.close()
    before = _raw_rows(db.path, "agent_sessions")
    line = one_line(cli("upgrade", url=db.url, cwd=tmp_path), 9)
    assert "1 Agno 1.x row(s) could not be read" in line, line
    report = [json.loads(x) for x in (tmp_path / "agno-migrate-report.jsonl").read_text().splitlines()]
    assert len(report) == 1 and "not UTF-8" in report[0]["reason"], report
    assert (report[0]["session_id"] == victim) == (column == "user_id"), report
    conn = sqlite3.connect(db.path)
    imported = {row[0] for row in conn.execute("SELECT session_id FROM agno_sessions WHERE session_type = 'agent'")}
    conn.close()
    assert imported == set(ids) - {victim}
    assert _raw_rows(db.path, "agent_sessions") == before
    # not done: the table stays pending until the row is repaired or its loss accepted (issue 15)
    line = one_line(cli("upgrade", url=db.url, cwd=tmp_path), 9)
    assert "--accept-unreadable agent_sessions" in line, line
    succeeded(cli("upgrade", "--accept-unreadable", "agent_sessions", url=db.url, cwd=tmp_path))
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))  # accepted: nothing left to import


@pytest.mark.backends("mysql")
def test_non_utf8_bytes_in_a_latin1_column_mariadb(rdb, backend, tmp_path):
    """MariaDB refuses bytes that are not UTF-8 in a utf8mb4 column; old Agno 1.x tables may be
    latin1, whose bytes 0x80-0xFF are not UTF-8. The server converts them; they arrive intact."""
    note_case("non-UTF-8 bytes in a TEXT column (latin1, MariaDB)")
    db = rdb(backend)
    db.load("v1")
    execute(
        db.url,
        "UPDATE agent_sessions SET user_id = 'u-1'",  # latin1 cannot hold the fixture's CJK and emoji
        "ALTER TABLE agent_sessions MODIFY user_id VARCHAR(255) CHARACTER SET latin1",
        "UPDATE agent_sessions SET user_id = 'Jürgen café ÿ' WHERE session_id = 'agent-1234-0000001'",
    )
    eng = engine(db.url)
    with eng.connect() as conn:
        raw = conn.exec_driver_sql(
            "SELECT HEX(user_id) FROM agent_sessions WHERE session_id = 'agent-1234-0000001'"
        ).scalar()
    eng.dispose()
    assert raw == "4AFC7267656E20636166E920FF"  # latin1 bytes: not UTF-8
    before = legacy_state(db)
    succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    import agno_migrate

    assert agno_migrate.connect(db.url).get_session("agent-1234-0000001").user_id == "Jürgen café ÿ"
    assert legacy_state(db) == before


def test_an_empty_legacy_table(rdb, backend, tmp_path):
    note_case("an empty Agno 1.x table")
    db = rdb(backend)
    db.load("v1")
    execute(db.url, *[f"DELETE FROM {qualified(db, name)}" for name in ("agent_sessions", "team_sessions",
                                                                       "workflow_sessions", "workflow_v2_sessions")])  # fmt: skip
    done = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    assert f"created agno_sessions at {HEAD}" in done.out and "imported 0 Agno 1.x sessions" in done.out
    succeeded(cli("check", url=db.url, cwd=tmp_path))
    assert {"agent_sessions", "team_sessions", "agno_sessions", "agno_runs"} <= tables_of(db)
    again = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    assert "nothing to do" in again.out and "imported" not in again.out


def test_two_legacy_tables_holding_the_same_session_id(rdb, backend, tmp_path):
    """test_legacy checks the report file; here the command's own output: exit 0, one warning."""
    note_case("two Agno 1.x tables holding the same session id")
    db = rdb(backend)
    db.load("v1")
    eng = engine(db.url)
    schema = "ai" if backend == "postgresql" else None
    with eng.begin() as conn:
        agent = sa.Table("agent_sessions", sa.MetaData(), autoload_with=conn, schema=schema)
        team_id = conn.exec_driver_sql(f"SELECT min(session_id) FROM {qualified(db, 'team_sessions')}").scalar()
        cols = [sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c for c in agent.columns]
        row = dict(conn.execute(sa.select(*cols).limit(1)).mappings().one())
        conn.execute(agent.insert().values(**{**row, "session_id": team_id}))
    eng.dispose()
    before = legacy_state(db)
    done = succeeded(cli("upgrade", url=db.url, cwd=tmp_path))
    warnings = [line for line in done.out.splitlines() if line.startswith("warning:")]
    assert any("1 session id(s) already stored with other content; not overwritten" in w for w in warnings), done.out
    assert done.err == ""
    report = [json.loads(line) for line in (tmp_path / "agno-migrate-report.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["session_id"]) for r in report] == [("collision", team_id)]
    assert legacy_state(db) == before


# --- the lock (exit 6) -----------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["2.0.0", "v1"])
def test_lock_held_by_another_upgrade_past_the_timeout(rdb, backend, point, tmp_path):
    """Another agno-migrate process is mid-step (inside the 3.0.0 copy, or between two batches of
    the Agno 1.x import) and holds the lock: a second upgrade gives up after --lock-timeout with one
    line (exit 6) and changes nothing; the first one then finishes."""
    note_case("a lock held by another process past --lock-timeout")
    db = rdb(backend)
    load_point(db, point, generated=100, copies=1)
    with holding(db.url, cwd=tmp_path):
        before = full_state(db)
        result = cli("--lock-timeout", "1", "upgrade", url=db.url, cwd=tmp_path)
        line = one_line(result, 6)
        assert "lock" in line and "--lock-timeout" in line, line
        assert full_state(db) == before
    succeeded(cli("check", url=db.url, cwd=tmp_path))
